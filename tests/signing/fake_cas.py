"""A request that makes a path builder work: a leaf issued by an unknown "CA", sent with several
attacker-made P-521 CA certificates that all share one name and one key, so each can be taken
for the issuer of the leaf and of every other one (issue #16, finding 5).

Used by the signing and end-to-end tests and by ``bench/bench_trust_path.py``.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from lxml import etree

from signing import ns
from signing.software import SoftwareSigner
from signing.wsse import sign_envelope

FAKE_CA_NAME = x509.Name([
    x509.NameAttribute(NameOID.COUNTRY_NAME, "AZ"),
    x509.NameAttribute(NameOID.COMMON_NAME, "AZ Qualified Issuing CA 1"),  # looks national
])


def fake_ca_identity(count: int) -> tuple[SoftwareSigner, list[x509.Certificate]]:
    """A signer whose certificate was issued by the fake CA, and ``count`` fake CA
    certificates (self-issued names, one P-521 key: every one 'signs' every other)."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP521R1())
    fakes = [
        x509.CertificateBuilder().subject_name(FAKE_CA_NAME).issuer_name(FAKE_CA_NAME)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .sign(ca_key, hashes.SHA512())
        for _ in range(count)
    ]
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([
            x509.NameAttribute(NameOID.COMMON_NAME, "Məmmədov Rəşad"),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, "PNOAZ-6ZK4T2P"),
            x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, "TINAZ-1403567891"),
        ]))
        .issuer_name(FAKE_CA_NAME).public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=True, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        .sign(ca_key, hashes.SHA512())
    )
    return SoftwareSigner(leaf_key, leaf), fakes


def fake_ca_request(
    base: Callable[[], etree._Element], signer: SoftwareSigner, fakes: list[x509.Certificate]
) -> etree._Element:
    """``base()`` signed by ``signer`` with every fake CA as a further BinarySecurityToken
    (signers of ours leave self-issued certificates out; an attacker does not)."""
    envelope = sign_envelope(base(), signer)
    security = envelope.find(f".//{{{ns.WSSE}}}Security")
    assert security is not None
    leaf_token = security.find(f"{{{ns.WSSE}}}BinarySecurityToken")
    assert leaf_token is not None
    position = security.index(leaf_token) + 1
    for index, fake in enumerate(fakes):
        token = etree.Element(f"{{{ns.WSSE}}}BinarySecurityToken", nsmap={"wsse": ns.WSSE})
        token.set("EncodingType", ns.BASE64_BINARY)
        token.set("ValueType", ns.X509V3)
        token.set(f"{{{ns.WSU}}}Id", f"fake-ca-{index}")
        token.text = base64.b64encode(fake.public_bytes(serialization.Encoding.DER)).decode()
        security.insert(position + index, token)
    return envelope
