"""The operations of the contract, one module per area of the manual.

Each module exposes ``operations(services) -> dict[name, callable(scope, request)]``; the callable
turns the spyne request into domain values, calls one service-layer handler with the verified
actor, and turns the result back. Operations not built yet answer ``Server.NotImplemented``.
"""

from __future__ import annotations

from typing import Any

from gateway.domain.errors import NotImplementedOperation
from gateway.soap.endpoint import Operation, RequestScope
from gateway.soap.operations import (
    authorities,
    batch,
    insurer,
    meta,
    mobile,
    notifications,
    registration,
    registry,
)
from gateway.soap.service import OPERATIONS

AREAS = (meta, insurer, authorities, registration, registry, notifications, batch, mobile)


def _not_implemented(name: str) -> Operation:
    def call(scope: RequestScope, request: Any) -> Any:
        raise NotImplementedOperation(f"{name} is not available yet")

    return call


def build_operations(services: Any) -> dict[str, Operation]:
    table: dict[str, Operation] = {name: _not_implemented(name) for name in OPERATIONS}
    for area in AREAS:
        table.update(area.operations(services))
    unknown = set(table) - set(OPERATIONS)
    if unknown:
        raise RuntimeError(f"operations not in the contract: {sorted(unknown)}")
    return table
