"""Evidence export: one message, or every message about one application, as a zip that a third
party checks with independent tools only (xmlsec1, openssl, sha256sum, python3's standard
library), without this project or our database.

Layout (documented in the README.txt inside, and in ``docs/message-log.md``)::

    README.txt                   what is inside and the exact commands that check it
    verify_inclusion.py          20 lines, standard library: entry → seal tree head
    messages/<id>-<in|out>.xml         the request / answer exactly as received / sent
    messages/<id>-<in|out>.leaf.json   the entry's leaf data (what the seal's tree commits to)
    messages/<id>-<in|out>.proof.json  the inclusion proof (audit path) in its seal
    messages/<id>-<in|out>.signer.pem  the certificate that signed it (BinarySecurityToken)
    seals/seal-<n>.xml, .tst     the signed seal and its RFC 3161 time-stamp token (DER)
    certs/national-ca.pem, ca-<k>.pem  the configured trust anchors (root and issuing CAs)
    certs/crls.pem               the CRLs configured when the seals were made (kept with them)
    certs/tsa-ca.pem             the TSA's trust anchor(s)
"""

from __future__ import annotations

import base64
import io
import json
import zipfile
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from gateway.evidence.errors import EvidenceError
from gateway.evidence.merkle import inclusion_path, leaf_data
from gateway.evidence.seal import read_seal
from persistence.message_log import Leaf, MessageLog, StoredEntry, StoredSeal
from signing import ns
from signing.errors import SigningError
from signing.parser import ParserLimits, parse_xml

INCLUSION_SCRIPT = Path(__file__).with_name("verify_inclusion.py")
_LIMITS = ParserLimits(max_bytes=50_000_000, max_depth=256, max_elements=1_000_000)
_WSU_ID = "{http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd}Id"


class NotSealedYet(EvidenceError):
    code = "Server.MessageLog.NotSealed"


class EvidenceExporter:
    def __init__(
        self,
        log: MessageLog,
        *,
        trust_anchors: Sequence[Path],
        crls: Sequence[Path],
        tsa_trust_anchors: Sequence[Path],
    ) -> None:
        self.log = log
        self.crls = list(crls)
        self.tsa_trust_anchors = list(tsa_trust_anchors)
        # One PEM file per CA: xmlsec1's --trusted-pem reads one certificate per file.
        self.anchors = [
            cert.public_bytes(Encoding.PEM)
            for path in trust_anchors
            for cert in x509.load_pem_x509_certificates(Path(path).read_bytes())
        ]

    def for_message(self, message_id: str) -> bytes:
        """The evidence of one X-Road message id (its request and answer)."""
        rows = self.log.entries_of_message(message_id)
        return self._zip(f"message {message_id}", rows)

    def for_application(self, application_id: str) -> bytes:
        """The evidence of every sealed exchange that mentions ``application_id``."""
        rows = self.log.entries_of_application(application_id)
        return self._zip(f"application {application_id}",
                         [(e, leaf) for e, leaf in rows])

    # ------------------------------------------------------------------------------------

    def _zip(self, subject: str, rows: Sequence[tuple[StoredEntry, Leaf | None]]) -> bytes:
        unsealed = [e.id for e, leaf in rows if leaf is None]
        if unsealed:
            raise NotSealedYet(f"entries {unsealed} of {subject} are not sealed yet "
                               "(the sealer runs every few seconds; or: dsmf-gateway log seal)")
        buffer = io.BytesIO()
        seals: dict[int, StoredSeal] = {}
        tree_cache: dict[int, list[str]] = {}
        steps: list[str] = []
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            self._certs(archive)
            archive.write(INCLUSION_SCRIPT, "verify_inclusion.py")
            for entry, leaf in rows:
                assert leaf is not None
                if leaf.seal_number not in seals:
                    seals[leaf.seal_number] = self.log.seal(leaf.seal_number)
                    tree_cache[leaf.seal_number] = self.log.leaf_hashes(leaf.seal_number)
                steps += self._entry(archive, entry, leaf, seals[leaf.seal_number],
                                     tree_cache[leaf.seal_number])
            archive.writestr("certs/crls.pem", self._crls_of(seals.values()))
            for number, seal in sorted(seals.items()):
                archive.writestr(f"seals/seal-{number}.xml", seal.seal_xml)
                archive.writestr(f"seals/seal-{number}.tst", seal.tsa_token)
                steps += self._seal_steps(seal)
            archive.writestr("README.txt", _readme(subject, steps))
        return buffer.getvalue()

    def _certs(self, archive: zipfile.ZipFile) -> None:
        for k, pem in enumerate(self.anchors, 1):
            archive.writestr(f"certs/ca-{k}.pem", pem)
        archive.writestr("certs/national-ca.pem", b"".join(self.anchors))
        archive.writestr("certs/tsa-ca.pem",
                         b"".join(Path(p).read_bytes() for p in self.tsa_trust_anchors))

    def _crls_of(self, seals: Iterable[StoredSeal]) -> bytes:
        """The CRLs the seals name (archived when they were made), else the configured ones."""
        digests: list[str] = []
        for seal in seals:
            for digest in read_seal(parse_xml(seal.seal_xml, _LIMITS)).crls:
                if digest not in digests:
                    digests.append(digest)
        if not digests:
            return b"".join(Path(p).read_bytes() for p in self.crls)
        archived = self.log.crls(digests)
        return b"".join(archived[d] for d in digests if d in archived)

    def _entry(
        self, archive: zipfile.ZipFile, entry: StoredEntry, leaf: Leaf, seal: StoredSeal,
        tree: list[str],
    ) -> list[str]:
        base = f"messages/{entry.id}-{entry.direction.lower()}"
        proof = {"seal": seal.number, "leaf_index": leaf.leaf_index, "tree_size": len(tree),
                 "leaf_hash": leaf.leaf_hash,
                 "path": [list(p) for p in inclusion_path(tree, leaf.leaf_index)]}
        archive.writestr(f"{base}.leaf.json", leaf_data(entry))
        archive.writestr(f"{base}.proof.json", json.dumps(proof, indent=1) + "\n")
        title = (f"{entry.direction} entry {entry.id}: {entry.operation or '-'}, X-Road id "
                 f"{entry.message_id or '-'}, logged {entry.at.astimezone(UTC).isoformat()}")
        if entry.erased_at is not None:
            return [
                f"# {title}",
                f"# payload erased {entry.erased_at.date().isoformat()} (retention); "
                f"its SHA-256 was {entry.payload_sha256}",
                f"$ python3 verify_inclusion.py {base}.leaf.json {base}.proof.json "
                f"seals/seal-{seal.number}.xml",
            ]
        archive.writestr(f"{base}.xml", entry.payload)
        steps = [
            f"# {title}",
            f"# sha256sum must print {entry.payload_sha256}",
            f"$ sha256sum {base}.xml",
            f"$ python3 verify_inclusion.py {base}.leaf.json {base}.proof.json "
            f"seals/seal-{seal.number}.xml {base}.xml",
        ]
        signed = _signature_parts(entry.payload)
        if signed is None:
            return [*steps, "# (this message carries no XML signature)"]
        certificate, id_elements = signed
        archive.writestr(f"{base}.signer.pem", certificate.public_bytes(Encoding.PEM))
        id_args = " ".join(f"--id-attr:Id {name}" for name in id_elements)
        at = int(entry.at.timestamp())
        return [
            *steps,
            f"$ xmlsec1 --verify {id_args} --pubkey-cert-pem {base}.signer.pem {base}.xml",
            f"$ openssl verify -attime {at} -CAfile certs/national-ca.pem -crl_check "
            f"-CRLfile certs/crls.pem {base}.signer.pem",
        ]

    def _seal_steps(self, seal: StoredSeal) -> list[str]:
        trusted = " ".join(f"--trusted-pem certs/ca-{k}.pem"
                           for k in range(1, len(self.anchors) + 1))
        when = seal.tsa_time.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        return [
            f"# seal {seal.number}: {seal.entry_count} entries, time-stamped "
            f"{seal.tsa_time.astimezone(UTC).isoformat()}",
            f"$ openssl ts -verify -data seals/seal-{seal.number}.xml "
            f"-in seals/seal-{seal.number}.tst -token_in -CAfile certs/tsa-ca.pem",
            f"$ xmlsec1 --verify {trusted} --verification-gmt-time '{when}' "
            f"seals/seal-{seal.number}.xml",
        ]


def _signature_parts(payload: bytes) -> tuple[x509.Certificate, list[str]] | None:
    """The signer's certificate (BinarySecurityToken) and the elements carrying wsu:Id."""
    try:
        root = parse_xml(payload, _LIMITS)
    except SigningError:
        return None
    if next(root.iter(ns.DS_SIGNATURE), None) is None:
        return None
    token = next(root.iter(f"{{{ns.WSSE}}}BinarySecurityToken"), None)
    if token is None or not (token.text or "").strip():
        return None
    try:
        certificate = x509.load_der_x509_certificate(base64.b64decode(token.text or ""))
    except ValueError:
        return None
    names = sorted({etree.QName(el).localname for el in root.iter()
                    if isinstance(el.tag, str) and el.get(_WSU_ID)})
    return certificate, names


def _readme(subject: str, steps: list[str]) -> str:
    made = datetime.now(UTC).replace(microsecond=0).isoformat()
    lines = [
        f"Evidence from the DSMF insured-registration gateway's message log: {subject}.",
        f"Exported {made}.",
        "",
        "What is inside",
        "  messages/   each request and answer exactly as received or sent (.xml), the entry's",
        "              leaf data (.leaf.json), its inclusion proof (.proof.json) and the",
        "              certificate that signed it (.signer.pem)",
        "  seals/      the seal of each batch (.xml, signed by the gateway) and its RFC 3161",
        "              time-stamp token (.tst, DER)",
        "  certs/      the national CA certificates, the CRLs configured when the seals",
        "              were made (kept with them), and the TSA's CA",
        "  verify_inclusion.py  20 lines of standard-library Python: leaf -> tree head",
        "",
        "How the pieces fit",
        "  sha256(message bytes) is the entry's payload_sha256 in its .leaf.json. The leaf is",
        "  SHA-256(0x00 || .leaf.json bytes); the proof's siblings fold it up with",
        "  SHA-256(0x01 || left || right) (RFC 6962) to the seal's TreeHead. The seal is signed",
        "  by the gateway (XML-DSig) and the TSA's token stamps the seal file's SHA-256 at the",
        "  token's time. Each seal names the SHA-256 of the previous seal and of its token",
        "  (PreviousSeal, PreviousTimestamp), so seals form one chain.",
        "",
        "Check it (run in this directory; each command must succeed; lines with $ are the",
        "commands, lines with # explain them). Tools: sha256sum (coreutils), python3 (no",
        "packages), xmlsec1 (1.2.x with OpenSSL), openssl (1.1 or 3.x).",
        "  openssl verify -attime checks the signer's certificate at the time the message was",
        "  logged, with the CRLs in force when it was sealed (certs/crls.pem).",
        "",
    ]
    lines += [f"  {step}" for step in steps]
    return "\n".join(lines) + "\n"
