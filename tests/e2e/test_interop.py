"""Interoperability with xmlsec1 (Debian's xmlsec1), another XML-DSig implementation:
it verifies the gateway's signed responses, and a request it signs is accepted by the gateway."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

from cryptography import x509
from lxml import etree

from signing.parser import serialize
from signing.wsse import sign_envelope
from tests.conftest import missing_requirement
from tests.e2e.conftest import Stack, find_person_payload, request_envelope

DS = "http://www.w3.org/2000/09/xmldsig#"
WSU_ID = "{http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd}Id"


def xmlsec1() -> str:
    path = shutil.which("xmlsec1")
    if path is None:
        missing_requirement("xmlsec1 is not installed (Debian package xmlsec1)")
    return path


def id_args(envelope: etree._Element) -> list[str]:
    args: list[str] = []
    for local in sorted({etree.QName(el).localname for el in envelope.iter() if el.get(WSU_ID)}):
        args += ["--id-attr:Id", local]
    return args


def run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=False, timeout=60)


def test_xmlsec1_verifies_the_gateway_response(stack: Stack, tmp_path: Path) -> None:
    tool = xmlsec1()
    envelope = sign_envelope(
        request_envelope("FindPerson", find_person_payload("5GH3J7K"),
                         message_id=str(uuid.uuid4())),
        stack.pki.signer("director"),
    )
    response = stack.post(envelope)
    assert response.status_code == 200
    answer = tmp_path / "response.xml"
    answer.write_bytes(response.content)
    # The certificate in the answer's BinarySecurityToken chains to the test CA ...
    root = etree.fromstring(response.content)
    token = root.find(".//{*}BinarySecurityToken")
    assert token is not None and token.text
    cert_pem = tmp_path / "gateway.pem"
    cert_pem.write_text("-----BEGIN CERTIFICATE-----\n" + token.text.strip()
                        + "\n-----END CERTIFICATE-----\n")
    certificate = x509.load_pem_x509_certificate(cert_pem.read_bytes())
    assert stack.pki.trust_store().validate(certificate).anchor in (
        stack.pki.root, stack.pki.issuing)
    # ... and xmlsec1 verifies the signature over Body, Timestamp and X-Road headers with it.
    result = run([tool, "--verify", *id_args(root), "--pubkey-cert-pem", str(cert_pem),
                  str(answer)])
    assert result.returncode == 0, result.stderr
    assert "SignedInfo References (ok/all)" in result.stderr


def test_request_signed_by_xmlsec1_is_accepted(stack: Stack, tmp_path: Path) -> None:
    tool = xmlsec1()
    signer = stack.pki.signer("director")
    # A template: our Security header layout with empty digests and value for xmlsec1 to fill.
    template = sign_envelope(
        request_envelope("FindPerson", find_person_payload("5GH3J7K"),
                         message_id=str(uuid.uuid4())),
        signer,
    )
    for el in template.iter(f"{{{DS}}}DigestValue", f"{{{DS}}}SignatureValue"):
        el.text = ""
    source = tmp_path / "template.xml"
    source.write_bytes(serialize(template))
    key = tmp_path / "key.pem"
    key.write_bytes(stack.pki.identity("director").key_path.read_bytes())
    out = tmp_path / "signed.xml"
    result = run([tool, "--sign", *id_args(template), "--privkey-pem", str(key),
                  "--output", str(out), str(source)])
    assert result.returncode == 0, result.stderr
    response = stack.post(out.read_bytes())
    assert response.status_code == 200, response.text[:500]
    assert "Nəsibova" in response.content.decode()


