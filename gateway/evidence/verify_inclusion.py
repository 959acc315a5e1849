#!/usr/bin/env python3
"""Is this logged message in this seal? Standard library only; shipped in every evidence export.

    python3 verify_inclusion.py ENTRY.leaf.json ENTRY.proof.json SEAL.xml [ENTRY.xml]

Leaf = SHA-256(0x00 || leaf.json bytes); each proof step: SHA-256(0x01 || left || right)
(RFC 6962); the result must be the seal's TreeHead. With ENTRY.xml, its SHA-256 must be the
leaf's payload_sha256 (the same as ``sha256sum ENTRY.xml``).
"""
import hashlib
import json
import re
import sys

leaf = open(sys.argv[1], "rb").read()
proof = json.load(open(sys.argv[2], encoding="utf-8"))
seal = open(sys.argv[3], encoding="utf-8").read()  # signed by the gateway: check with xmlsec1
number, head = (re.search(f"<{tag}>([^<]*)</{tag}>", seal) for tag in ("Number", "TreeHead"))
if len(sys.argv) > 4:
    digest = hashlib.sha256(open(sys.argv[4], "rb").read()).hexdigest()
    if digest != json.loads(leaf)["payload_sha256"]:
        sys.exit(f"FAILED: {sys.argv[4]} is not the logged payload")
node = hashlib.sha256(b"\x00" + leaf).digest()
for side, sibling in proof["path"]:
    other = bytes.fromhex(sibling)
    node = hashlib.sha256(b"\x01" + (other + node if side == "L" else node + other)).digest()
if not number or number[1] != str(proof["seal"]) or not head or node.hex() != head[1]:
    sys.exit("FAILED: the entry is not in this seal's tree")
print(f"OK: entry {json.loads(leaf)['id']} is leaf {proof['leaf_index']} of seal {proof['seal']}")
