"""A realistic test PKI, generated when needed (static certificates expire).

``build_test_pki(dir)`` writes a national-style hierarchy -- root CA → qualified issuing CA → end
entities -- plus a foreign root that is *not* trusted, one CRL of the issuing CA, and for every
identity a PEM key, PEM certificate and PKCS#12 bundle (password ``b"test"``). The people and
their FIN/VÖEN are fixed (:data:`IDENTITY_SPECS`): the upstream simulators and the demo data use
the same people. ``load_test_pki(dir)`` reads it back; ``init_demo_pki(dir)`` is what
``dsmf-gateway pki init DIR`` calls (idempotent). Everything here is **test data**: private keys
are unencrypted on disk.

Certificate profile (modelled on ETSI EN 319 412-1/-2): subject CN ``"Surname Name"``,
givenName, surname, serialNumber ``PNOAZ-<FIN>``, organizationName, organizationIdentifier
``TINAZ-<VÖEN>``, C=AZ; keyUsage nonRepudiation (qualified person certificates) or
digitalSignature (system and gateway certificates); certificatePolicies with
:data:`~signing.identity.QUALIFIED_PERSON_POLICY_OID` for people and
:data:`~signing.identity.SEAL_AUTHORITY_POLICY_OID` for seal holders; SKI/AKI; basicConstraints.

Directory layout::

    manifest.json                  what was built, when; written last (a build without it is
                                   incomplete and is rebuilt by init_demo_pki)
    ca/root-ca.pem, .key           trust anchor 1
    ca/issuing-ca.pem, .key        trust anchor 2 (issues everything below)
    ca/foreign-root-ca.pem, .key   NOT a trust anchor (issues 'foreign')
    crl/issuing-ca.crl.pem         CRL of the issuing CA, listing 'revoked'
    crl/root-ca.crl.pem            CRL of the root (empty)
    identities/<name>/key.pem, cert.pem, bundle.p12

SoftHSM2: :func:`load_into_softhsm` puts an identity's key and certificate on a fresh token.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from signing.errors import ConfigurationError, KeyAccessError
from signing.identity import (
    QUALIFIED_PERSON_POLICY_OID,
    SEAL_AUTHORITY_POLICY_OID,
    SYSTEM_CERTIFICATE_POLICY_OID,
    card_number_of,
)
from signing.software import SoftwareSigner

if TYPE_CHECKING:
    from signing.trust import TrustStore

#: Password of every PKCS#12 bundle of the test PKI.
P12_PASSWORD = b"test"
MANIFEST_NAME = "manifest.json"
_FORMAT = 1

CaKey = rsa.RSAPrivateKey
EeKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


class Credential(StrEnum):
    """How the holder signs in real life (the simulators and demo data use it)."""

    CARD = "card"  # e-imza smart card (PKCS#11)
    ASAN = "asan"  # Asan İmza mobile signature
    SYSTEM = "system"  # an organisation's system certificate
    GATEWAY = "gateway"  # the gateway's own response-signing key


class Defect(StrEnum):
    """What is deliberately wrong with a 'bad' test certificate."""

    EXPIRED = "expired"  # notAfter in the past
    NOT_YET_VALID = "not_yet_valid"  # notBefore in the future
    REVOKED = "revoked"  # on the issuing CA's CRL
    WRONG_USAGE = "wrong_usage"  # keyUsage keyEncipherment only
    FOREIGN = "foreign"  # issued by a root that is not a trust anchor
    RSA1024 = "rsa1024"  # RSA-1024 key


@dataclass(frozen=True)
class IdentitySpec:
    """A declared test identity (pyHanko-style: the PKI is built from a declaration)."""

    name: str
    common_name: str
    surname: str | None
    given_name: str | None
    patronymic: str | None
    fin: str | None
    voen: str | None
    organization: str | None
    seal: bool
    credential: Credential
    defect: Defect | None = None


_XEZER = ("1403567891", "Xəzər Tikinti MMC")
_GENCE = ("1700345671", "Gəncə Tekstil ASC")


def _person(
    name: str, surname: str, given: str, patronymic: str, fin: str, org: tuple[str, str],
    *, seal: bool = False, credential: Credential = Credential.CARD, defect: Defect | None = None,
) -> IdentitySpec:
    return IdentitySpec(
        name=name, common_name=f"{surname} {given}", surname=surname, given_name=given,
        patronymic=patronymic, fin=fin, voen=org[0], organization=org[1], seal=seal,
        credential=credential, defect=defect,
    )


#: The fixed cast. Names, FINs and VÖENs are shared with the simulators and the demo data.
IDENTITY_SPECS: tuple[IdentitySpec, ...] = (
    _person("director", "Əliyev", "Rəşad", "Vaqif oğlu", "6ZK4T2P", _XEZER, seal=True),
    _person("deputy", "Hüseynova", "Gülnarə", "Şahin qızı", "3HN8B5Q", _XEZER),
    _person("employee", "Quliyev", "Ülvi", "İlqar oğlu", "7MX2C9R", _XEZER),
    _person("director_b", "İsmayılov", "Ömər", "Şükür oğlu", "2RT5Y8U", _GENCE, seal=True),
    _person("asan", "Məmmədova", "Çiçək", "Ağasəf qızı", "4PD6W1S", _GENCE, seal=True,
            credential=Credential.ASAN),
    _person("asan_deputy", "Bağırov", "Tural", "Ağa oğlu", "8LV4N2X", _XEZER,
            credential=Credential.ASAN),
    IdentitySpec(
        name="system", common_name="e-Gov Portal", surname=None, given_name=None,
        patronymic=None, fin=None, voen="1500000001", organization="e-Gov Portal", seal=False,
        credential=Credential.SYSTEM,
    ),
    IdentitySpec(
        name="gateway", common_name="DSMF Insured Registration Gateway", surname=None,
        given_name=None, patronymic=None, fin=None, voen=None,
        organization="Dövlət Sosial Müdafiə Fondu", seal=False, credential=Credential.GATEWAY,
    ),
    # The demo gateway's answer key: RSA, which every mainstream verifier checks (xml-crypto,
    # under node-soap, has no ECDSA). "gateway" above stays ECDSA P-256 for the tests of EC keys.
    IdentitySpec(
        name="gateway_rsa", common_name="DSMF Insured Registration Gateway", surname=None,
        given_name=None, patronymic=None, fin=None, voen=None,
        organization="Dövlət Sosial Müdafiə Fondu", seal=False, credential=Credential.GATEWAY,
    ),
    _person("expired", "Kərimov", "Elvin", "Rauf oğlu", "1EX9P4D", _XEZER,
            defect=Defect.EXPIRED),
    _person("not_yet_valid", "Nəsirova", "Aysel", "Tofiq qızı", "5NY7V3K", _XEZER,
            defect=Defect.NOT_YET_VALID),
    _person("revoked", "Rzayev", "Kamran", "Elçin oğlu", "9RV2K6M", _XEZER,
            defect=Defect.REVOKED),
    _person("wrong_usage", "Həsənova", "Lalə", "Vüqar qızı", "2WU8K5L", _XEZER,
            defect=Defect.WRONG_USAGE),
    _person("foreign", "Abbasov", "Murad", "Namiq oğlu", "6FR3G7H", _XEZER,
            defect=Defect.FOREIGN),
    _person("rsa1024", "Sadıqova", "Nərmin", "Fuad qızı", "3KB1Z4Q", _XEZER,
            defect=Defect.RSA1024),
)

#: Identities whose key is ECDSA P-256 (all others: RSA).
_EC_IDENTITIES = frozenset({"gateway"})

#: Identities that must validate; the others each fail in their own way.
GOOD_IDENTITIES = tuple(s.name for s in IDENTITY_SPECS if s.defect is None)
BAD_IDENTITIES = tuple(s.name for s in IDENTITY_SPECS if s.defect is not None)


@dataclass(frozen=True)
class IssuedIdentity:
    """One identity as issued: its certificate and where its key material lives."""

    name: str
    certificate: x509.Certificate
    key_path: Path
    cert_path: Path
    p12_path: Path
    chain_paths: tuple[Path, ...]
    fin: str | None
    voen: str | None
    seal: bool
    card_number: str
    organization: str | None = None
    surname: str | None = None
    given_name: str | None = None
    patronymic: str | None = None
    credential: Credential = Credential.CARD
    defect: Defect | None = None

    @property
    def common_name(self) -> str:
        attrs = self.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(attrs[0].value) if attrs else ""

    def signer(self) -> SoftwareSigner:
        return SoftwareSigner.from_pem(self.key_path, self.cert_path, self.chain_paths)


@dataclass(frozen=True)
class TestPki:
    """A built test PKI (see the module docstring for the layout)."""

    __test__ = False  # not a pytest test class, despite the name

    directory: Path
    root: x509.Certificate
    issuing: x509.Certificate
    foreign_root: x509.Certificate
    crl_path: Path
    trust_anchor_paths: tuple[Path, ...]
    identities: Mapping[str, IssuedIdentity]
    foreign_root_path: Path = field(default=Path())
    #: The root CA's CRL (an ARL, empty): needed when only the root is an anchor and the
    #: issuing CA arrives in the message, so its revocation can be checked too.
    root_crl_path: Path = field(default=Path())
    created: datetime = field(default=datetime.min.replace(tzinfo=UTC))

    def identity(self, name: str) -> IssuedIdentity:
        try:
            return self.identities[name]
        except KeyError:
            raise KeyError(f"no identity {name!r} in the test PKI "
                           f"(have: {', '.join(self.identities)})") from None

    def signer(self, name: str) -> SoftwareSigner:
        """A software signer for identity ``name`` (its chain included)."""
        return self.identity(name).signer()

    @property
    def crl(self) -> x509.CertificateRevocationList:
        return x509.load_pem_x509_crl(self.crl_path.read_bytes())

    def trust_store(self, **options: Any) -> TrustStore:
        """A :class:`~signing.trust.TrustStore` trusting root + issuing CA, with the CRL."""
        from signing.trust import TrustStore

        return TrustStore.from_paths(self.trust_anchor_paths, self.crl_paths, **options)

    @property
    def crl_paths(self) -> tuple[Path, ...]:
        """Every CRL of the PKI: the issuing CA's and the root's."""
        return (self.crl_path, self.root_crl_path)


# --------------------------------------------------------------------------------------------
# building
# --------------------------------------------------------------------------------------------

_ROOT_NAME = x509.Name([
    x509.NameAttribute(NameOID.COUNTRY_NAME, "AZ"),
    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test Milli Sertifikat Xidmətləri Mərkəzi"),
    x509.NameAttribute(NameOID.COMMON_NAME, "AZ Test Root CA"),
])
_ISSUING_NAME = x509.Name([
    x509.NameAttribute(NameOID.COUNTRY_NAME, "AZ"),
    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test Milli Sertifikat Xidmətləri Mərkəzi"),
    x509.NameAttribute(NameOID.COMMON_NAME, "AZ Test Qualified Issuing CA 1"),
])
_FOREIGN_NAME = x509.Name([
    x509.NameAttribute(NameOID.COUNTRY_NAME, "XX"),
    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Elsewhere Trust Services"),
    x509.NameAttribute(NameOID.COMMON_NAME, "Foreign Test Root CA"),
])

_GOOD_LIFETIME = timedelta(days=730)
_CRL_LIFETIME = timedelta(days=30)
#: init_demo_pki rebuilds (or re-signs the CRL) when less than this is left.
_REUSE_MARGIN = timedelta(days=1)


def build_test_pki(directory: Path, *, now: datetime | None = None) -> TestPki:
    """Generate the whole test PKI into ``directory`` (created if needed) and return it.

    ``now`` fixes the clock (certificates are valid around it); default: the current time.
    Existing files of a previous build are overwritten.
    """
    now = _utc(now or datetime.now(UTC)).replace(microsecond=0)
    directory = Path(directory)
    (directory / "ca").mkdir(parents=True, exist_ok=True)
    (directory / "crl").mkdir(exist_ok=True)
    (directory / "identities").mkdir(exist_ok=True)
    manifest_path = directory / MANIFEST_NAME
    manifest_path.unlink(missing_ok=True)  # incomplete until written again

    root_key = _rsa(2048)
    root = _ca_cert(_ROOT_NAME, root_key, _ROOT_NAME, root_key, None,
                    now - timedelta(days=1095), now + timedelta(days=3650), path_length=1)
    issuing_key = _rsa(2048)
    issuing = _ca_cert(_ISSUING_NAME, issuing_key, _ROOT_NAME, root_key, root,
                       now - timedelta(days=730), now + timedelta(days=1825), path_length=0)
    foreign_key = _rsa(2048)
    foreign = _ca_cert(_FOREIGN_NAME, foreign_key, _FOREIGN_NAME, foreign_key, None,
                       now - timedelta(days=365), now + timedelta(days=3650), path_length=0)

    ca_dir = directory / "ca"
    for stem, ca_cert, ca_key in (
        ("root-ca", root, root_key),
        ("issuing-ca", issuing, issuing_key),
        ("foreign-root-ca", foreign, foreign_key),
    ):
        _write_cert(ca_dir / f"{stem}.pem", ca_cert)
        _write_key(ca_dir / f"{stem}.key", ca_key)

    identities_manifest: dict[str, dict[str, Any]] = {}
    revoked_serial: int | None = None
    for spec in IDENTITY_SPECS:
        if spec.defect is Defect.FOREIGN:
            issuer_cert, issuer_key = foreign, foreign_key
        else:
            issuer_cert, issuer_key = issuing, issuing_key
        key: EeKey
        if spec.name in _EC_IDENTITIES:
            key = ec.generate_private_key(ec.SECP256R1())
        else:
            key = _rsa(1024 if spec.defect is Defect.RSA1024 else 2048)
        cert = _ee_cert(spec, key, issuer_cert, issuer_key, now)
        if spec.defect is Defect.REVOKED:
            revoked_serial = cert.serial_number
        chain = (issuer_cert,) if issuer_cert is foreign else (issuing, root)
        _write_identity(directory / "identities" / spec.name, spec, key, cert, chain)
        identities_manifest[spec.name] = _spec_to_json(spec)

    assert revoked_serial is not None
    crl_path = directory / "crl" / "issuing-ca.crl.pem"
    _write_crl(crl_path, issuing, issuing_key, [revoked_serial], now, crl_number=1)
    _write_crl(directory / "crl" / "root-ca.crl.pem", root, root_key, [], now, crl_number=1)

    manifest = {
        "format": _FORMAT,
        "created": now.isoformat(),
        "crl_number": 1,
        "revoked_serials": [format(revoked_serial, "X")],
        "identities": identities_manifest,
    }
    # Written last: its presence means the build is complete.
    manifest_path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", "utf-8")
    return load_test_pki(directory)


def load_test_pki(directory: Path) -> TestPki:
    """Read back a PKI written by :func:`build_test_pki` (ConfigurationError if incomplete)."""
    directory = Path(directory)
    manifest = _read_manifest(directory)
    ca_dir = directory / "ca"
    try:
        root = _load_cert(ca_dir / "root-ca.pem")
        issuing = _load_cert(ca_dir / "issuing-ca.pem")
        foreign = _load_cert(ca_dir / "foreign-root-ca.pem")
        identities: dict[str, IssuedIdentity] = {}
        for name, entry in manifest["identities"].items():
            spec = _spec_from_json(name, entry)
            folder = directory / "identities" / name
            cert = _load_cert(folder / "cert.pem")
            chain_paths = (
                (ca_dir / "foreign-root-ca.pem",) if spec.defect is Defect.FOREIGN
                else (ca_dir / "issuing-ca.pem", ca_dir / "root-ca.pem")
            )
            identities[name] = IssuedIdentity(
                name=name, certificate=cert, key_path=folder / "key.pem",
                cert_path=folder / "cert.pem", p12_path=folder / "bundle.p12",
                chain_paths=chain_paths, fin=spec.fin, voen=spec.voen, seal=spec.seal,
                card_number=card_number_of(cert), organization=spec.organization,
                surname=spec.surname, given_name=spec.given_name, patronymic=spec.patronymic,
                credential=spec.credential, defect=spec.defect,
            )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigurationError(
            f"test PKI in {directory} is incomplete or corrupt: {exc}"
        ) from exc
    return TestPki(
        directory=directory,
        root=root,
        issuing=issuing,
        foreign_root=foreign,
        crl_path=directory / "crl" / "issuing-ca.crl.pem",
        trust_anchor_paths=(ca_dir / "root-ca.pem", ca_dir / "issuing-ca.pem"),
        identities=MappingProxyType(identities),
        foreign_root_path=ca_dir / "foreign-root-ca.pem",
        root_crl_path=directory / "crl" / "root-ca.crl.pem",
        created=datetime.fromisoformat(manifest["created"]),
    )


def init_demo_pki(directory: Path, *, now: datetime | None = None) -> TestPki:
    """The demo PKI for ``dsmf-gateway pki init DIR`` and ``scripts/serve``; idempotent.

    Reuses a complete PKI in ``directory`` while its certificates still behave as declared (good
    ones valid, 'expired' expired, 'not_yet_valid' not yet valid) for at least a day. A CRL about
    to expire is re-signed with the same entries (certificate serials -- the card numbers the
    demo data is bound to -- stay the same). Anything else is rebuilt. Refuses to write into a
    non-empty directory that holds no test PKI.
    """
    now = _utc(now or datetime.now(UTC)).replace(microsecond=0)
    directory = Path(directory)
    if (directory / MANIFEST_NAME).is_file():
        try:
            pki = load_test_pki(directory)
        except ConfigurationError:
            pki = None
        if pki is not None and _certificates_usable(pki, now):
            if pki.crl.next_update_utc is None or pki.crl.next_update_utc < now + _REUSE_MARGIN:
                refresh_crl(pki, now=now)
            return pki
    elif directory.exists() and any(directory.iterdir()):
        raise ConfigurationError(
            f"{directory} is not empty and holds no test PKI ({MANIFEST_NAME} missing); "
            "choose an empty or new directory"
        )
    return build_test_pki(directory, now=now)


def refresh_crl(pki: TestPki, *, now: datetime | None = None) -> Path:
    """Re-sign the CAs' CRLs (same revoked serials, next CRL number, fresh dates)."""
    now = _utc(now or datetime.now(UTC)).replace(microsecond=0)
    manifest = _read_manifest(pki.directory)
    issuing_key = _load_ca_key(pki.directory / "ca" / "issuing-ca.key")
    root_key = _load_ca_key(pki.directory / "ca" / "root-ca.key")
    number = int(manifest.get("crl_number", 1)) + 1
    serials = [int(s, 16) for s in manifest["revoked_serials"]]
    _write_crl(pki.crl_path, pki.issuing, issuing_key, serials, now, crl_number=number)
    _write_crl(pki.root_crl_path, pki.root, root_key, [], now, crl_number=number)
    manifest["crl_number"] = number
    (pki.directory / MANIFEST_NAME).write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", "utf-8"
    )
    return pki.crl_path


def write_crl(
    pki: TestPki,
    path: Path,
    serials: Sequence[int],
    *,
    crl_number: int,
    delta_of: int | None = None,
    scope: x509.IssuingDistributionPoint | None = None,
    extensions: Sequence[tuple[x509.ExtensionType, bool]] = (),
    entry_extensions: Sequence[tuple[x509.ExtensionType, bool]] = (),
    reason: x509.ReasonFlags | None = x509.ReasonFlags.key_compromise,
    now: datetime | None = None,
    last_update: datetime | None = None,
    next_update: datetime | None = None,
) -> Path:
    """A CRL of the issuing CA signed with its real key, for revocation tests and demos: a
    complete CRL, or a delta CRL (``delta_of`` = BaseCRLNumber, critical as RFC 5280 says), with
    an IssuingDistributionPoint ``scope`` and any further ``(extension, critical)`` pairs."""
    now = _utc(now or datetime.now(UTC)).replace(microsecond=0)
    key = _load_ca_key(pki.directory / "ca" / "issuing-ca.key")
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(pki.issuing.subject)
        .last_update(last_update or now - timedelta(minutes=5))
        .next_update(next_update or now + timedelta(days=1))
        .add_extension(x509.CRLNumber(crl_number), critical=False)
        .add_extension(_aki(key), critical=False)
    )
    if delta_of is not None:
        builder = builder.add_extension(x509.DeltaCRLIndicator(delta_of), critical=True)
    if scope is not None:
        builder = builder.add_extension(scope, critical=True)
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    for serial in serials:
        entry = (x509.RevokedCertificateBuilder().serial_number(serial)
                 .revocation_date(now - timedelta(days=1)))
        if reason is not None:
            entry = entry.add_extension(x509.CRLReason(reason), critical=False)
        for extension, critical in entry_extensions:
            entry = entry.add_extension(extension, critical=critical)
        builder = builder.add_revoked_certificate(entry.build())
    crl = builder.sign(key, hashes.SHA256())
    _atomic_write(path, crl.public_bytes(serialization.Encoding.PEM))
    return path


def _certificates_usable(pki: TestPki, now: datetime) -> bool:
    later = now + _REUSE_MARGIN
    for cert in (pki.root, pki.issuing, pki.foreign_root):
        if not (cert.not_valid_before_utc <= now and later < cert.not_valid_after_utc):
            return False
    for spec in IDENTITY_SPECS:
        issued = pki.identities.get(spec.name)
        if issued is None:
            return False
        cert = issued.certificate
        if spec.defect is Defect.EXPIRED:
            ok = cert.not_valid_after_utc < now
        elif spec.defect is Defect.NOT_YET_VALID:
            ok = cert.not_valid_before_utc > later
        else:
            ok = cert.not_valid_before_utc <= now and later < cert.not_valid_after_utc
        if not ok:
            return False
    return True


# --- certificates ---------------------------------------------------------------------------


def _rsa(bits: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _ski(key: EeKey | CaKey) -> x509.SubjectKeyIdentifier:
    return x509.SubjectKeyIdentifier.from_public_key(key.public_key())


def _aki(issuer_key: CaKey) -> x509.AuthorityKeyIdentifier:
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(_ski(issuer_key))


def _key_usage(*, digital_signature: bool = False, non_repudiation: bool = False,
               key_encipherment: bool = False, ca: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature, content_commitment=non_repudiation,
        key_encipherment=key_encipherment, data_encipherment=False, key_agreement=False,
        key_cert_sign=ca, crl_sign=ca, encipher_only=False, decipher_only=False,
    )


def _ca_cert(
    subject: x509.Name, key: CaKey, issuer: x509.Name, issuer_key: CaKey,
    issuer_cert: x509.Certificate | None, not_before: datetime, not_after: datetime,
    *, path_length: int | None,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(_ski(key), critical=False)
    )
    if issuer_cert is not None:
        builder = builder.add_extension(_aki(issuer_key), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _subject(spec: IdentitySpec) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, "AZ")]
    if spec.organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, spec.organization))
    if spec.voen:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, f"TINAZ-{spec.voen}"))
    if spec.surname:
        attrs.append(x509.NameAttribute(NameOID.SURNAME, spec.surname))
    if spec.given_name:
        attrs.append(x509.NameAttribute(NameOID.GIVEN_NAME, spec.given_name))
    if spec.fin:
        attrs.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, f"PNOAZ-{spec.fin}"))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, spec.common_name))
    return x509.Name(attrs)


def _ee_cert(
    spec: IdentitySpec, key: EeKey, issuer: x509.Certificate, issuer_key: CaKey, now: datetime
) -> x509.Certificate:
    not_before, not_after = now - timedelta(days=30), now + _GOOD_LIFETIME
    if spec.defect is Defect.EXPIRED:
        not_before, not_after = now - timedelta(days=400), now - timedelta(days=35)
    elif spec.defect is Defect.NOT_YET_VALID:
        not_before = now + timedelta(days=365)
        not_after = not_before + _GOOD_LIFETIME

    person = spec.fin is not None
    if spec.defect is Defect.WRONG_USAGE:
        usage = _key_usage(key_encipherment=True)
    elif person:
        usage = _key_usage(non_repudiation=True)
    else:
        usage = _key_usage(digital_signature=True)

    if person:
        policy_oids = [QUALIFIED_PERSON_POLICY_OID]
        if spec.seal:
            policy_oids.append(SEAL_AUTHORITY_POLICY_OID)
    else:
        policy_oids = [SYSTEM_CERTIFICATE_POLICY_OID]
    policies = x509.CertificatePolicies(
        [x509.PolicyInformation(x509.ObjectIdentifier(oid), None) for oid in policy_oids]
    )
    return (
        x509.CertificateBuilder()
        .subject_name(_subject(spec))
        .issuer_name(issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(policies, critical=False)
        .add_extension(_ski(key), critical=False)
        .add_extension(_aki(issuer_key), critical=False)
        .sign(issuer_key, hashes.SHA256())
    )


def _write_crl(
    path: Path, issuer: x509.Certificate, issuer_key: CaKey, serials: Sequence[int],
    now: datetime, *, crl_number: int,
) -> None:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.subject)
        .last_update(now - timedelta(hours=1))
        .next_update(now + _CRL_LIFETIME)
        .add_extension(x509.CRLNumber(crl_number), critical=False)
        .add_extension(_aki(issuer_key), critical=False)
    )
    for serial in serials:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(now - timedelta(days=2))
            .add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise), critical=False)
            .build()
        )
    crl = builder.sign(issuer_key, hashes.SHA256())
    _atomic_write(path, crl.public_bytes(serialization.Encoding.PEM))


# --- files ------------------------------------------------------------------------------------


def _write_identity(
    folder: Path, spec: IdentitySpec, key: EeKey, cert: x509.Certificate,
    chain: Sequence[x509.Certificate],
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    _write_key(folder / "key.pem", key)
    _write_cert(folder / "cert.pem", cert)
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(2048)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(P12_PASSWORD)
    )
    p12 = pkcs12.serialize_key_and_certificates(
        spec.name.encode(), key, cert, list(chain), encryption
    )
    _atomic_write(folder / "bundle.p12", p12, private=True)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    _atomic_write(path, cert.public_bytes(serialization.Encoding.PEM))


def _write_key(path: Path, key: EeKey | CaKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _atomic_write(path, pem, private=True)


def _atomic_write(path: Path, data: bytes, *, private: bool = False) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _load_ca_key(path: Path) -> CaKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigurationError(f"{path.name} is not an RSA CA key")
    return key


def _read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"no complete test PKI in {directory}: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != _FORMAT:
        raise ConfigurationError(f"{path} is not a test-PKI manifest of format {_FORMAT}")
    return manifest


def _spec_to_json(spec: IdentitySpec) -> dict[str, Any]:
    return {
        "common_name": spec.common_name, "surname": spec.surname, "given_name": spec.given_name,
        "patronymic": spec.patronymic, "fin": spec.fin, "voen": spec.voen,
        "organization": spec.organization, "seal": spec.seal,
        "credential": spec.credential.value,
        "defect": spec.defect.value if spec.defect else None,
    }


def _spec_from_json(name: str, entry: Mapping[str, Any]) -> IdentitySpec:
    return IdentitySpec(
        name=name, common_name=entry["common_name"], surname=entry["surname"],
        given_name=entry["given_name"], patronymic=entry["patronymic"], fin=entry["fin"],
        voen=entry["voen"], organization=entry["organization"], seal=bool(entry["seal"]),
        credential=Credential(entry["credential"]),
        defect=Defect(entry["defect"]) if entry["defect"] else None,
    )


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ConfigurationError("use an aware datetime (UTC)")
    return moment.astimezone(UTC)


# --------------------------------------------------------------------------------------------
# SoftHSM2
# --------------------------------------------------------------------------------------------


def write_softhsm_config(directory: Path) -> Path:
    """Create ``directory/tokens`` and ``directory/softhsm2.conf`` pointing at it; return the conf.

    Point ``SOFTHSM2_CONF`` at the returned file (before the PKCS#11 module is first initialised
    in a process) to use it.
    """
    directory = Path(directory)
    tokens = directory / "tokens"
    tokens.mkdir(parents=True, exist_ok=True)
    conf = directory / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokens.resolve()}\n"
        "objectstore.backend = file\n"
        "log.level = ERROR\n"
        "slots.removable = false\n",
        "utf-8",
    )
    return conf


def load_into_softhsm(
    pki: TestPki,
    identity_name: str,
    *,
    module_path: str,
    token_label: str,
    so_pin: str,
    user_pin: str,
) -> None:
    """Initialise a fresh SoftHSM2 token ``token_label`` holding ``identity_name``'s key.

    The token gets the private key (sensitive, not extractable, CKA_SIGN), the public key and
    the certificate, all labelled with the identity's name and with CKA_ID = the certificate's
    subject key identifier -- the layout of an e-imza card.

    ``SOFTHSM2_CONF`` must name a configuration whose ``tokendir`` exists and is writable (see
    :func:`write_softhsm_config`); the token is initialised with ``softhsm2-util --init-token
    --free``. The objects are created with python-pkcs11 **in a child process**: a PKCS#11 module
    reads its configuration and slot list once per process (C_Initialize), so doing it here would
    fix this process's view of the tokens, and a process that already initialised the module
    does not see the new token until it re-initialises (``pkcs11.lib(path).reinitialize()``, which
    closes every open session). Create tokens first, then open signers. The PINs of this test
    helper appear on softhsm2-util's command line: test PINs only.
    """
    if not os.environ.get("SOFTHSM2_CONF"):
        raise ConfigurationError("SOFTHSM2_CONF is not set (see write_softhsm_config)")
    util = shutil.which("softhsm2-util")
    if util is None:
        raise ConfigurationError("softhsm2-util not found (Debian package softhsm2)")
    issued = pki.identity(identity_name)
    init = subprocess.run(
        [util, "--init-token", "--free", "--label", token_label,
         "--so-pin", so_pin, "--pin", user_pin, "--module", module_path],
        capture_output=True, text=True, check=False, timeout=60,
    )
    if init.returncode != 0:
        raise ConfigurationError(
            f"softhsm2-util --init-token failed: {init.stderr.strip() or init.stdout.strip()}"
        )

    loaded = serialization.load_pem_private_key(issued.key_path.read_bytes(), password=None)
    if isinstance(loaded, rsa.RSAPrivateKey):
        key_der = loaded.private_bytes(serialization.Encoding.DER,
                                    serialization.PrivateFormat.TraditionalOpenSSL,
                                    serialization.NoEncryption())
        kind = "rsa"
    elif isinstance(loaded, ec.EllipticCurvePrivateKey):
        key_der = loaded.private_bytes(serialization.Encoding.DER,
                                    serialization.PrivateFormat.TraditionalOpenSSL,
                                    serialization.NoEncryption())
        kind = "ec"
    else:  # pragma: no cover - the test PKI only makes RSA and EC keys
        raise ConfigurationError(f"cannot load a {type(loaded).__name__} into SoftHSM")
    cert = issued.certificate
    request = {
        "module": module_path,
        "token_label": token_label,
        "user_pin": user_pin,
        "kind": kind,
        "key": key_der.hex(),
        "public": cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ).hex(),
        "cert": cert.public_bytes(serialization.Encoding.DER).hex(),
        "label": identity_name,
        "id": x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest.hex(),
    }
    package_root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    child = subprocess.run(
        [sys.executable, "-c", "from signing.testpki import _softhsm_import_child as m; m()"],
        input=json.dumps(request), capture_output=True, text=True, env=env, check=False,
        timeout=120,
    )
    if child.returncode != 0:
        raise KeyAccessError(f"importing {identity_name} into SoftHSM failed: "
                             f"{child.stderr.strip().splitlines()[-1:] or child.returncode}")


def _softhsm_import_child() -> None:
    """Child-process half of :func:`load_into_softhsm`: reads a JSON request on stdin."""
    import pkcs11
    from pkcs11.util.ec import decode_ec_private_key, decode_ec_public_key
    from pkcs11.util.rsa import decode_rsa_private_key
    from pkcs11.util.x509 import decode_x509_certificate, decode_x509_public_key

    request = json.loads(sys.stdin.read())
    common = {
        pkcs11.Attribute.TOKEN: True,
        pkcs11.Attribute.LABEL: request["label"],
        pkcs11.Attribute.ID: bytes.fromhex(request["id"]),
    }
    key_der = bytes.fromhex(request["key"])
    if request["kind"] == "rsa":
        private = decode_rsa_private_key(key_der)
        public = decode_x509_public_key(bytes.fromhex(request["cert"]))
    else:
        private = decode_ec_private_key(key_der)
        public = decode_ec_public_key(bytes.fromhex(request["public"]))
    private.update(common)
    private.update({
        pkcs11.Attribute.PRIVATE: True,
        pkcs11.Attribute.SENSITIVE: True,
        pkcs11.Attribute.EXTRACTABLE: False,
        pkcs11.Attribute.SIGN: True,
    })
    private.pop(pkcs11.Attribute.DECRYPT, None)
    private.pop(pkcs11.Attribute.UNWRAP, None)
    public.update(common)
    public.update({pkcs11.Attribute.VERIFY: True, pkcs11.Attribute.PRIVATE: False})
    public.pop(pkcs11.Attribute.ENCRYPT, None)
    public.pop(pkcs11.Attribute.WRAP, None)
    certificate = decode_x509_certificate(bytes.fromhex(request["cert"]))
    certificate.update(common)
    certificate[pkcs11.Attribute.PRIVATE] = False

    lib = pkcs11.lib(request["module"])
    token = lib.get_token(token_label=request["token_label"])
    with token.open(rw=True, user_pin=request["user_pin"]) as session:
        session.create_object(private)
        session.create_object(public)
        session.create_object(certificate)
