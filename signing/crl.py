"""Revocation by CRL files, per RFC 5280 §6.3 for direct CRLs.

The newest fresh *complete* CRL of the issuer whose IssuingDistributionPoint scope covers the
certificate, with the newest fresh delta CRL issued against it (or a later base) applied on
top; a delta alone proves nothing. A CRL carrying a critical extension (or a critical entry
extension) we do not process is not used at all. Each CRL's signature is checked against the
issuer found on the path.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm

from signing.errors import ConfigurationError
from signing.revocation import (
    FAR_FUTURE,
    FAR_PAST,
    TICK,
    RevocationResult,
    RevocationStatus,
)

log = logging.getLogger("signing.trust")


class CrlRevocationChecker:
    """Revocation by CRL files, reloadable; each CRL's signature is checked against the issuer
    found on the path (a CRL whose signature fails is ignored and logged)."""

    def __init__(self, crl_paths: Sequence[str | Path], *, max_age: timedelta | None = None):
        self._paths = tuple(Path(p) for p in crl_paths)
        self._max_age = max_age
        self._lock = threading.Lock()
        self._by_issuer: dict[x509.Name, tuple[x509.CertificateRevocationList, ...]] = {}
        self._signature_ok: dict[tuple[bytes, bytes], bool] = {}
        self._generation = 0
        self.reload()

    @property
    def paths(self) -> tuple[Path, ...]:
        return self._paths

    @property
    def generation(self) -> int:
        """Incremented by every :meth:`reload` (answers of an older generation are void)."""
        return self._generation

    def reload(self) -> None:
        """Re-read every CRL file (atomically replaces the loaded set)."""
        by_issuer: dict[x509.Name, list[x509.CertificateRevocationList]] = {}
        for path in self._paths:
            for crl in _load_crls(path):
                by_issuer.setdefault(crl.issuer, []).append(crl)
        frozen = {name: tuple(crls) for name, crls in by_issuer.items()}
        with self._lock:
            self._by_issuer = frozen
            self._signature_ok = {}
            self._generation += 1

    def check(
        self, certificate: x509.Certificate, issuer: x509.Certificate, at: datetime
    ) -> RevocationResult:
        """RFC 5280 §6.3 for direct CRLs: the newest fresh *complete* CRL whose scope
        (IssuingDistributionPoint) covers the certificate, with the newest fresh delta CRL
        issued against it (or a later base) applied on top. A CRL carrying a critical extension
        we do not process (or a critical entry extension, e.g. an indirect CRL's
        certificateIssuer) is not used at all; when that leaves no complete CRL the answer is
        UNKNOWN with ``unusable`` set. Entries of a scoped-by-reason CRL revoke, but such a CRL
        never proves a certificate good."""
        source = f"crl:{issuer.subject.rfc4514_string()}"

        def unknown_until_reload(detail: str, *, unusable: bool = False) -> RevocationResult:
            return RevocationResult(RevocationStatus.UNKNOWN, source, detail=detail,
                                    valid_from=FAR_PAST, valid_until=FAR_FUTURE,
                                    unusable=unusable)

        candidates = self._by_issuer.get(issuer.subject, ())
        if not candidates:
            return unknown_until_reload("no CRL of the issuer")
        if not _may_sign_crls(issuer):
            return unknown_until_reload("the issuer may not sign CRLs")
        valid = [c for c in candidates if self._signed_by(c, issuer)]
        if not valid:
            return unknown_until_reload("no CRL with a valid signature")
        processable = [c for c in valid if _crl_processable(c)]
        is_ca = _is_ca(certificate)
        in_scope = [c for c in processable if _crl_covers(c, certificate, is_ca=is_ca)]
        complete = [c for c in in_scope if _delta_base(c) is None and not _reasons_limited(c)]
        if not complete:
            if len(processable) < len(valid) and not any(
                _delta_base(c) is None for c in processable
            ):
                return unknown_until_reload(
                    "the CRL carries a critical extension that cannot be processed",
                    unusable=True,
                )
            return unknown_until_reload("no complete CRL covers the certificate")
        fresh = [c for c in complete if self._is_fresh(c, at)]
        if not fresh:
            # Stale from just after the last one lapsed, for good.
            since = max(self._fresh_until(c) for c in complete)
            return RevocationResult(
                RevocationStatus.UNKNOWN, source, detail="the CRL is stale",
                valid_from=since + TICK if since < FAR_FUTURE else since,
                valid_until=FAR_FUTURE,
            )
        base = max(fresh, key=_crl_rank)
        valid_from = self._chosen_from(base, complete)
        valid_until = self._fresh_until(base)
        used = [base]
        base_number = _crl_number(base)
        base_scope = _idp(base)
        # Deltas: only on top of a base at least as new as the one they were issued against,
        # with the same scope, and newer than the base itself (RFC 5280 §5.2.4).
        deltas = [
            c for c in in_scope
            if (bn := _delta_base(c)) is not None and base_number is not None
            and bn <= base_number and (_crl_number(c) or -1) > base_number
            and _idp(c) == base_scope
        ]
        fresh_deltas = [c for c in deltas if self._is_fresh(c, at)]
        if fresh_deltas:
            delta = max(fresh_deltas, key=_crl_rank)
            used.append(delta)
            valid_from = max(valid_from, self._chosen_from(delta, deltas))
            valid_until = min(valid_until, self._fresh_until(delta))
        elif deltas:
            # A delta that lapsed by now was the newer word before: the answer holds after it.
            valid_from = max([valid_from] + [self._fresh_until(c) + TICK for c in deltas])
        entry = _effective_entry(certificate.serial_number, used)
        if entry is None:
            # A CRL limited to some reasons still revokes what it lists.
            partial = [c for c in in_scope if _reasons_limited(c) and self._is_fresh(c, at)
                       and _delta_base(c) is None]
            for crl in sorted(partial, key=_crl_rank, reverse=True):
                listed = crl.get_revoked_certificate_by_serial_number(certificate.serial_number)
                if listed is not None and _revocation_reason(listed) != "remove_from_crl":
                    entry = listed
                    valid_until = min(valid_until, self._fresh_until(crl))
                    valid_from = max(valid_from, crl.last_update_utc)
                    break
        if entry is None:
            return RevocationResult(RevocationStatus.GOOD, source,
                                    valid_from=valid_from, valid_until=valid_until)
        reason = _revocation_reason(entry)
        revoked_at = entry.revocation_date_utc
        # Revoked after the time asked about counts as good then -- except for a compromised
        # key, where the revocation date cannot bound the damage.
        compromised = reason in ("key_compromise", "ca_compromise")
        if revoked_at > at and not compromised:
            return RevocationResult(RevocationStatus.GOOD, source, revoked_at, reason,
                                    detail="revoked after the validation time",
                                    valid_from=valid_from,
                                    valid_until=min(valid_until, revoked_at - TICK))
        if not compromised:
            valid_from = max(valid_from, revoked_at)
        return RevocationResult(RevocationStatus.REVOKED, source, revoked_at, reason,
                                valid_from=valid_from, valid_until=valid_until)

    def _chosen_from(
        self, chosen: x509.CertificateRevocationList,
        pool: Sequence[x509.CertificateRevocationList],
    ) -> datetime:
        """The earliest validation time from which ``chosen`` is the pick of ``pool``: after
        its lastUpdate, and after every CRL ranking as high that has lapsed by now (earlier,
        that one would be picked)."""
        rank = _crl_rank(chosen)
        return max(
            [chosen.last_update_utc]
            + [self._fresh_until(c) + TICK for c in pool
               if c is not chosen and _crl_rank(c) >= rank
               and self._fresh_until(c) < FAR_FUTURE]
        )

    def _signed_by(self, crl: x509.CertificateRevocationList, issuer: x509.Certificate) -> bool:
        key = (hashlib.sha256(crl.tbs_certlist_bytes + crl.signature).digest(),
               hashlib.sha256(issuer.tbs_certificate_bytes).digest())
        known = self._signature_ok.get(key)
        if known is None:
            try:
                known = crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
            except (TypeError, ValueError, UnsupportedAlgorithm):
                known = False
            if not known:
                log.warning("CRL of %s has an invalid signature; ignored",
                            crl.issuer.rfc4514_string())
            self._signature_ok[key] = known
        return known

    def _is_fresh(self, crl: x509.CertificateRevocationList, at: datetime) -> bool:
        return at <= self._fresh_until(crl)

    def _fresh_until(self, crl: x509.CertificateRevocationList) -> datetime:
        """The last moment (inclusive) at which the CRL counts as fresh."""
        if crl.next_update_utc is None:
            return FAR_PAST
        if self._max_age is None:
            return crl.next_update_utc
        return min(crl.next_update_utc, crl.last_update_utc + self._max_age)


def _load_crls(path: Path) -> list[x509.CertificateRevocationList]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read CRL {path}: {exc.strerror}") from exc
    try:
        if b"-----BEGIN" in data:
            marker = b"-----BEGIN X509 CRL-----"
            blocks = [marker + part for part in data.split(marker)[1:]]
            if not blocks:
                raise ValueError("no X509 CRL block")
            return [x509.load_pem_x509_crl(block) for block in blocks]
        return [x509.load_der_x509_crl(data)]
    except ValueError as exc:
        raise ConfigurationError(f"{path} is not a readable CRL: {exc}") from exc


#: CRL extensions whose meaning we apply (RFC 5280 §5.2); any other one marked critical makes
#: the CRL unusable (§5.2: "must not use the CRL").
_PROCESSED_CRL_EXTENSIONS = frozenset({
    x509.ExtensionOID.CRL_NUMBER,
    x509.ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
    x509.ExtensionOID.DELTA_CRL_INDICATOR,
    x509.ExtensionOID.ISSUING_DISTRIBUTION_POINT,
    x509.ExtensionOID.FRESHEST_CRL,
    x509.ExtensionOID.ISSUER_ALTERNATIVE_NAME,
    x509.ExtensionOID.AUTHORITY_INFORMATION_ACCESS,
})
#: CRL entry extensions we understand. certificateIssuer (critical, indirect CRLs) is not among
#: them: only direct CRLs are supported, so an indirect one is refused rather than misread.
_PROCESSED_ENTRY_EXTENSIONS = frozenset({
    x509.CRLEntryExtensionOID.CRL_REASON,
    x509.CRLEntryExtensionOID.INVALIDITY_DATE,
})


def _crl_processable(crl: x509.CertificateRevocationList) -> bool:
    try:
        for ext in crl.extensions:
            if ext.critical and ext.oid not in _PROCESSED_CRL_EXTENSIONS:
                log.warning("CRL of %s has the unprocessable critical extension %s; not used",
                            crl.issuer.rfc4514_string(), ext.oid.dotted_string)
                return False
        idp = _idp(crl)
        if idp is not None and (idp.indirect_crl or idp.only_contains_attribute_certs):
            return False
        for entry in crl:
            for entry_ext in entry.extensions:
                if entry_ext.critical and entry_ext.oid not in _PROCESSED_ENTRY_EXTENSIONS:
                    log.warning("CRL of %s has an entry with the unprocessable critical "
                                "extension %s; not used", crl.issuer.rfc4514_string(),
                                entry_ext.oid.dotted_string)
                    return False
    except ValueError:
        return False  # malformed or duplicate extensions
    return True


def _idp(crl: x509.CertificateRevocationList) -> x509.IssuingDistributionPoint | None:
    try:
        return crl.extensions.get_extension_for_class(x509.IssuingDistributionPoint).value
    except x509.ExtensionNotFound:
        return None


def _delta_base(crl: x509.CertificateRevocationList) -> int | None:
    """The BaseCRLNumber of a delta CRL; None for a complete CRL."""
    try:
        return crl.extensions.get_extension_for_class(x509.DeltaCRLIndicator).value.crl_number
    except x509.ExtensionNotFound:
        return None


def _crl_number(crl: x509.CertificateRevocationList) -> int | None:
    try:
        return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    except x509.ExtensionNotFound:
        return None


def _crl_rank(crl: x509.CertificateRevocationList) -> tuple[datetime, int]:
    return crl.last_update_utc, _crl_number(crl) or -1


def _reasons_limited(crl: x509.CertificateRevocationList) -> bool:
    idp = _idp(crl)
    return idp is not None and idp.only_some_reasons is not None


def _crl_covers(
    crl: x509.CertificateRevocationList, certificate: x509.Certificate, *, is_ca: bool
) -> bool:
    """RFC 5280 §6.3.3 (b): does the CRL's IssuingDistributionPoint scope include the
    certificate? Without the extension a CRL covers every certificate of its issuer."""
    idp = _idp(crl)
    if idp is None:
        return True
    if idp.only_contains_user_certs and is_ca:
        return False
    if idp.only_contains_ca_certs and not is_ca:
        return False
    if idp.full_name is None and idp.relative_name is None:
        return True
    try:
        points = certificate.extensions.get_extension_for_class(
            x509.CRLDistributionPoints
        ).value
    except x509.ExtensionNotFound:
        return False  # a partitioned CRL covers only certificates that point to it
    for point in points:
        if idp.full_name is not None and point.full_name is not None and set(
            idp.full_name
        ) & set(point.full_name):
            return True
        if idp.relative_name is not None and point.relative_name == idp.relative_name:
            return True
    return False


def _effective_entry(
    serial: int, crls: Sequence[x509.CertificateRevocationList]
) -> x509.RevokedCertificate | None:
    """The entry for ``serial`` in a base CRL with its delta applied (the delta last): a delta
    entry replaces the base's; removeFromCRL takes a *held* certificate off, nothing else."""
    entry: x509.RevokedCertificate | None = None
    for crl in crls:
        found = crl.get_revoked_certificate_by_serial_number(serial)
        if found is None:
            continue
        if _revocation_reason(found) == "remove_from_crl":
            if entry is not None and _revocation_reason(entry) == "certificate_hold":
                entry = None
            continue
        entry = found
    return entry


def _revocation_reason(entry: x509.RevokedCertificate) -> str | None:
    try:
        return entry.extensions.get_extension_for_class(x509.CRLReason).value.reason.name
    except x509.ExtensionNotFound:
        return None


def _may_sign_crls(issuer: x509.Certificate) -> bool:
    usage = _key_usage(issuer)
    return usage is None or usage.crl_sign


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _key_usage(cert: x509.Certificate) -> x509.KeyUsage | None:
    try:
        return cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None
