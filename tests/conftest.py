"""Shared pytest fixtures.

scripts/test (and so .ci/run) prepares the environment these fixtures read:

* ``DSMF_TEST_POSTGRES_URL`` -- SQLAlchemy URL of a throwaway PostgreSQL cluster
  (superuser, trust auth, loopback only); tests get a fresh database on it.
* ``DSMF_SOFTHSM2_MODULE`` -- path of SoftHSM2's PKCS#11 module.
* ``DSMF_TEST_REQUIRE_ALL=1`` (set in CI) -- a missing tool or server fails the
  test instead of skipping it, so CI cannot go green by skipping.

Use :func:`missing_requirement` whenever a test cannot run for lack of
something external, so it honours ``DSMF_TEST_REQUIRE_ALL``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

# ---------------------------------------------------------------------------
# Skip-or-fail for missing external requirements
# ---------------------------------------------------------------------------


def require_all() -> bool:
    """True when every external requirement must be present (CI)."""
    return os.environ.get("DSMF_TEST_REQUIRE_ALL") == "1"


def missing_requirement(reason: str) -> NoReturn:
    """Skip the current test for ``reason``, or fail it under DSMF_TEST_REQUIRE_ALL=1."""
    if require_all():
        pytest.fail(f"{reason} (DSMF_TEST_REQUIRE_ALL=1, so this is an error, not a skip)")
    pytest.skip(f"{reason} (scripts/test sets up what the suite needs)")


# ---------------------------------------------------------------------------
# Databases: every test using `database_url` runs on SQLite and on PostgreSQL
# ---------------------------------------------------------------------------


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.postgres),
    ]
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """SQLAlchemy URL of an empty database that belongs to this test alone.

    sqlite     -> a file in tmp_path (``sqlite:////tmp/.../gw.db``)
    postgresql -> a new database ``t_<random>`` on the cluster named by
                  DSMF_TEST_POSTGRES_URL, dropped (WITH (FORCE)) afterwards.
    Deselect the PostgreSQL variant with ``-m "not postgres"``.
    """
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'gw.db'}"
        return
    yield from _fresh_postgres_database()


def _fresh_postgres_database() -> Iterator[str]:
    import psycopg

    from persistence.db import scratch_postgres_database

    base = os.environ.get("DSMF_TEST_POSTGRES_URL")
    if not base:
        missing_requirement("DSMF_TEST_POSTGRES_URL is not set (no PostgreSQL server for tests)")
    scratch = scratch_postgres_database(base, prefix="t")
    try:
        url = scratch.__enter__()
    except psycopg.OperationalError as exc:
        missing_requirement(f"PostgreSQL for the tests is unreachable: {exc}")
    try:
        yield url
    finally:
        scratch.__exit__(None, None, None)


# ---------------------------------------------------------------------------
# SoftHSM2 (PKCS#11)
# ---------------------------------------------------------------------------

_SOFTHSM_PATHS = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib64/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)


@pytest.fixture(scope="session")
def softhsm_module() -> str:
    """Path of SoftHSM2's PKCS#11 module (DSMF_SOFTHSM2_MODULE or a usual path)."""
    configured = os.environ.get("DSMF_SOFTHSM2_MODULE")
    if configured:
        if Path(configured).is_file():
            return configured
        missing_requirement(f"DSMF_SOFTHSM2_MODULE={configured} does not exist")
    for candidate in _SOFTHSM_PATHS:
        if Path(candidate).is_file():
            return candidate
    missing_requirement("SoftHSM2 module libsofthsm2.so not found (Debian package softhsm2)")
