"""signxml signs unchanged with any Signer -- here a SoftHSM2 key -- and both signxml and xmlsec1
verify the result (DESIGN §3)."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from lxml import etree
from signxml import SignatureConfiguration, XMLSigner, XMLVerifier, algorithms
from signxml.algorithms import SignatureConstructionMethod

from signing.algorithms import DigestMethod, SignatureMethod
from signing.errors import ConfigurationError, KeyAccessError
from signing.keyadapter import SignerEcKey, SignerRsaKey, as_private_key
from signing.pkcs11 import Pkcs11Signer
from signing.signer import Signer
from signing.testpki import TestPki
from tests.signing.conftest import SoftHsmToken

EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
DOCUMENT = (
    '<Registration xmlns="urn:dsmf:test">'
    '<Insurer voen="1403567891">Xəzər Tikinti MMC</Insurer>'
    '<Person fin="7MX2C9R">Quliyev Ülvi</Person>'
    "</Registration>"
).encode()


def sign_document(signer: Signer, method: SignatureMethod) -> etree._Element:
    xml_signer = XMLSigner(
        method=SignatureConstructionMethod.enveloped,
        signature_algorithm=method.value,
        digest_algorithm=DigestMethod.SHA256.value,
        c14n_algorithm=EXC_C14N,
    )
    return xml_signer.sign(
        etree.fromstring(DOCUMENT),
        key=as_private_key(signer),
        cert=[signer.certificate, *signer.chain],
    )


def accepting(method: SignatureMethod) -> SignatureConfiguration:
    return SignatureConfiguration(
        signature_methods=frozenset({algorithms.SignatureMethod(method.value)}),
        digest_algorithms=frozenset({algorithms.DigestAlgorithm(DigestMethod.SHA256.value)}),
    )


def non_repudiation_ok() -> x509.verification.ExtensionPolicy:
    """signxml's default end-entity policy wants digitalSignature; qualified person
    certificates carry only nonRepudiation (DESIGN §2)."""

    def usage(policy: object, cert: x509.Certificate, ku: x509.KeyUsage) -> None:
        if not (ku.digital_signature or ku.content_commitment):
            raise ValueError("no signing key usage")

    return x509.verification.ExtensionPolicy.permit_all().require_present(
        x509.KeyUsage, x509.verification.Criticality.AGNOSTIC, usage
    )


def verify_everywhere(
    signed: etree._Element, signer: Signer, method: SignatureMethod, pki: TestPki,
    xmlsec1: str | None, tmp_path: Path,
) -> None:
    # 1. signxml, against the pre-shared certificate
    result = XMLVerifier().verify(
        copy.deepcopy(signed), x509_cert=signer.certificate, expect_config=accepting(method)
    )
    assert etree.QName(result.signed_xml).localname == "Registration"
    # 2. signxml, building the chain from KeyInfo to our CAs (not the public CA bundle)
    bundle = tmp_path / "cas.pem"
    bundle.write_bytes(b"".join(p.read_bytes() for p in pki.trust_anchor_paths))
    XMLVerifier().verify(
        copy.deepcopy(signed), ca_pem_file=str(bundle), ee_policy=non_repudiation_ok(),
        expect_config=accepting(method),
    )
    # 3. xmlsec1 (1.2.x has no RSA-PSS): trust root + issuing CA, chain from X509Data
    if xmlsec1 is None:
        return
    message = tmp_path / "signed.xml"
    message.write_bytes(etree.tostring(signed, xml_declaration=True, encoding="UTF-8"))
    trusted = [arg for p in pki.trust_anchor_paths for arg in ("--trusted-pem", str(p))]
    run = subprocess.run([xmlsec1, "--verify", *trusted, str(message)],
                         capture_output=True, text=True, check=False, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "OK" in run.stderr
    # ... and a tampered copy fails there too.
    tampered = etree.tostring(signed).replace(b"7MX2C9R", b"7MX2C9S")
    message.write_bytes(tampered)
    run = subprocess.run([xmlsec1, "--verify", *trusted, str(message)],
                         capture_output=True, text=True, check=False, timeout=60)
    assert run.returncode != 0


@pytest.mark.softhsm
@pytest.mark.parametrize(
    ("token", "method"),
    [
        ("director", SignatureMethod.RSA_SHA256),
        ("director", SignatureMethod.RSA_SHA512),
        ("director", SignatureMethod.RSA_PSS_SHA256),
        ("gateway", SignatureMethod.ECDSA_SHA256),
        ("gateway", SignatureMethod.ECDSA_SHA384),
    ],
    ids=lambda v: v.name if isinstance(v, SignatureMethod) else v,
)
def test_signxml_signs_with_a_softhsm_key(
    softhsm_tokens: dict[str, SoftHsmToken], pki: TestPki, xmlsec1: str, tmp_path: Path,
    token: str, method: SignatureMethod,
) -> None:
    config, pin = softhsm_tokens[token]
    identity = pki.identities[config.key_label]
    with Pkcs11Signer(config, pin=pin) as card:
        # The chain for KeyInfo is not on the token: give it like an ERP would.
        signer = _WithChain(card, [pki.issuing])
        signed = sign_document(signer, method)
    assert signer.certificate == identity.certificate
    verify_everywhere(signed, signer, method, pki, None if method.is_pss else xmlsec1, tmp_path)


@pytest.mark.parametrize(
    ("name", "method"),
    [("director", SignatureMethod.RSA_PSS_SHA512), ("gateway", SignatureMethod.ECDSA_SHA512)],
    ids=lambda v: v.name if isinstance(v, SignatureMethod) else v,
)
def test_signxml_signs_with_a_software_signer(
    pki: TestPki, tmp_path: Path, name: str, method: SignatureMethod
) -> None:
    signer = pki.signer(name)
    signed = sign_document(signer, method)
    verify_everywhere(signed, signer, method, pki, None, tmp_path)


def test_signxml_writes_key_value_through_the_adapter(pki: TestPki) -> None:
    """Without a certificate signxml writes a KeyValue from public_key() / curve."""
    for name, method in (("gateway", SignatureMethod.ECDSA_SHA256),
                         ("director", SignatureMethod.RSA_SHA256)):
        signer = pki.signer(name)
        signed = XMLSigner(
            method=SignatureConstructionMethod.enveloped, signature_algorithm=method.value,
            digest_algorithm=DigestMethod.SHA256.value, c14n_algorithm=EXC_C14N,
        ).sign(etree.fromstring(DOCUMENT), key=as_private_key(signer))
        assert signed.find(".//{http://www.w3.org/2000/09/xmldsig#}KeyValue") is not None
        XMLVerifier().verify(signed, x509_cert=signer.certificate, expect_config=accepting(method))


def test_adapter_types(pki: TestPki) -> None:
    rsa_key = as_private_key(pki.signer("director"))
    ec_key = as_private_key(pki.signer("gateway"))
    assert isinstance(rsa_key, rsa.RSAPrivateKey) and isinstance(rsa_key, SignerRsaKey)
    assert isinstance(ec_key, ec.EllipticCurvePrivateKey) and isinstance(ec_key, SignerEcKey)
    assert rsa_key.key_size == 2048
    assert ec_key.key_size == 256 and ec_key.curve.name == "secp256r1"
    assert rsa_key.public_key() == pki.identities["director"].certificate.public_key()
    assert copy.deepcopy(rsa_key) is rsa_key


def test_adapter_signatures_verify_like_cryptography_keys(pki: TestPki) -> None:
    data = b"payload"
    ec_key = as_private_key(pki.signer("gateway"))
    assert isinstance(ec_key, ec.EllipticCurvePrivateKey)
    der = ec_key.sign(data, ec.ECDSA(hashes.SHA384()))
    ec_key.public_key().verify(der, data, ec.ECDSA(hashes.SHA384()))
    rsa_key = as_private_key(pki.signer("director"))
    assert isinstance(rsa_key, rsa.RSAPrivateKey)
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
    rsa_key.public_key().verify(rsa_key.sign(data, pss, hashes.SHA256()), data, pss,
                                hashes.SHA256())


def test_adapter_refuses_what_it_cannot_do(pki: TestPki) -> None:
    rsa_key = as_private_key(pki.signer("director"))
    assert isinstance(rsa_key, rsa.RSAPrivateKey)
    with pytest.raises(KeyAccessError):
        rsa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
    with pytest.raises(KeyAccessError):
        rsa_key.private_numbers()
    with pytest.raises(ConfigurationError):
        rsa_key.sign(b"x", padding.PKCS1v15(), hashes.SHA1())  # noqa: S303
    with pytest.raises(ConfigurationError):
        rsa_key.sign(b"x" * 32, padding.PKCS1v15(), Prehashed(hashes.SHA256()))
    with pytest.raises(ConfigurationError):
        rsa_key.sign(b"x", padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=0),
                     hashes.SHA256())
    ec_key = as_private_key(pki.signer("gateway"))
    assert isinstance(ec_key, ec.EllipticCurvePrivateKey)
    with pytest.raises(KeyAccessError):
        ec_key.exchange(ec.ECDH(), ec_key.public_key())


class _WithChain:
    """A Signer that adds issuing CAs to another one (cards often hold only the leaf)."""

    def __init__(self, inner: Signer, chain: list[x509.Certificate]) -> None:
        self.inner = inner
        self.chain = chain

    @property
    def certificate(self) -> x509.Certificate:
        return self.inner.certificate

    def sign(self, data: bytes, method: SignatureMethod) -> bytes:
        return self.inner.sign(data, method)

    def public_key(self):  # type: ignore[no-untyped-def]
        return self.inner.public_key()
