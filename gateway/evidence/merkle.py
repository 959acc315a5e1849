"""What is hashed, exactly (the shipped ``verify_inclusion.py`` repeats it in 20 lines).

An entry's **leaf data** is the canonical JSON (sorted keys, no spaces, UTF-8, non-ASCII as is)
of its ``id``, ``at`` (UTC, ISO 8601 with microseconds), ``direction``, ``message_id``,
``correlation_id``, ``actor_fin``, ``voen``, ``operation`` and ``payload_sha256`` (hex of
SHA-256 over the bytes as on the wire). The payload itself is not in the leaf, so erasing it
(retention) leaves the leaf, the tree and the seal intact.

A batch's **tree head** is the RFC 6962 / RFC 9162 Merkle Tree Hash over the leaf data, in
entry-id order::

    MTH({})     = SHA-256()
    MTH({d})    = SHA-256(0x00 || d)
    MTH(D[n])   = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n])),  k the largest power of 2 < n

An **inclusion proof** is the audit path: the sibling hashes from the leaf up, each marked
``L`` (the sibling is on the left) or ``R``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC

from persistence.message_log import StoredEntry

EMPTY_TREE_HEAD = hashlib.sha256(b"").hexdigest()


def leaf_data(entry: StoredEntry) -> bytes:
    document = {
        "id": entry.id,
        "at": entry.at.astimezone(UTC).isoformat(timespec="microseconds"),
        "direction": entry.direction,
        "message_id": entry.message_id,
        "correlation_id": entry.correlation_id,
        "actor_fin": entry.actor_fin,
        "voen": entry.voen,
        "operation": entry.operation,
        "payload_sha256": entry.payload_sha256,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def leaf_hash(data: bytes) -> str:
    return hashlib.sha256(b"\x00" + data).hexdigest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _head(leaves: Sequence[bytes]) -> bytes:
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return _node(_head(leaves[:k]), _head(leaves[k:]))


def tree_head(leaf_hashes: Sequence[str]) -> str:
    """The Merkle tree head over leaf hashes (hex), in order."""
    if not leaf_hashes:
        return EMPTY_TREE_HEAD
    return _head([bytes.fromhex(h) for h in leaf_hashes]).hex()


def inclusion_path(leaf_hashes: Sequence[str], index: int) -> list[tuple[str, str]]:
    """The audit path of leaf ``index``: ``(side, hex)`` pairs from the leaf up."""
    if not 0 <= index < len(leaf_hashes):
        raise IndexError(f"leaf {index} of {len(leaf_hashes)}")
    leaves = [bytes.fromhex(h) for h in leaf_hashes]
    path: list[tuple[str, str]] = []

    def walk(nodes: Sequence[bytes], i: int) -> None:
        if len(nodes) == 1:
            return
        k = _split(len(nodes))
        if i < k:
            walk(nodes[:k], i)
            path.append(("R", _head(nodes[k:]).hex()))
        else:
            walk(nodes[k:], i - k)
            path.append(("L", _head(nodes[:k]).hex()))

    walk(leaves, index)
    return path


def fold(leaf: str, path: Sequence[tuple[str, str]]) -> str:
    """The tree head an audit path leads to from ``leaf``."""
    node = bytes.fromhex(leaf)
    for side, sibling in path:
        other = bytes.fromhex(sibling)
        node = _node(other, node) if side == "L" else _node(node, other)
    return node.hex()
