"""The trust list: which certificates may sign requests, checked against national CAs,
CRLs and OCSP.

Trust comes only from a configured list of anchors -- the national root **and** issuing CAs --
never from the system store or from certificates inside a message (those only help build a
path). :meth:`TrustStore.validate` checks, in this order, each failure with its own error:

0. cheap refusals first: more intermediates than a path may hold, or an issuer found unknown
   for the very same issuer and intermediates moments ago
   (:class:`~signing.errors.CertificateUntrusted`);
1. a path from the certificate to an anchor, every signature verified
   (:class:`~signing.errors.CertificateUntrusted`; also for self-signed or CA leaves); only
   offered CAs that themselves reach an anchor are tried, each signature at most once;
2. every certificate on the path valid at the given time
   (:class:`~signing.errors.CertificateExpired`, :class:`~signing.errors.CertificateNotYetValid`);
3. issuers are CAs (basicConstraints, keyCertSign, pathLenConstraint) (``CertificateUntrusted``);
4. the end entity's key usage allows signing: nonRepudiation or digitalSignature
   (:class:`~signing.errors.KeyUsageNotAllowed`);
5. key strength: RSA ≥ 2048 bits, EC only on P-256/384/521 (:class:`~signing.errors.WeakKey`);
6. revocation of every non-anchor certificate by the configured sources, asked in order until
   one gives a definite answer (:class:`RevocationChecker`): CRL files per RFC 5280 -- base
   plus delta, IssuingDistributionPoint scope, a CRL with an unprocessable critical extension
   unused (:mod:`signing.crl`) -- and OCSP (:mod:`signing.ocsp`)
   (:class:`~signing.errors.CertificateRevoked`; no definite answer while ``require_crl`` →
   :class:`~signing.errors.RevocationUnknown`, or :class:`~signing.errors.RevocationSourceUnusable`
   when only unusable CRLs were there; ``require_crl=False`` is the operator's explicit soft
   fail).

Successful validations are cached (:class:`ValidationCache`), keyed on the DER fingerprints of
the certificate and of the intermediates offered, each with the interval in which the very same
answer holds: inside every certificate's validity, inside every revocation answer's own interval
(the CRL used: lastUpdate → nextUpdate / max age, and before a revocation dated later), and at
most ``cache_max_age_seconds`` after the validation (in validation time and in wall time). A
refusal is never cached, a CRL reload empties the cache, and a revocation answer that does not
say how long it holds (``valid_until`` None, e.g. a plugged-in checker) makes the result
uncacheable.

Why not ``cryptography.x509.verification`` (PolicyBuilder/Store)? It fits path building, but:
its extension policies (needed to accept qualified certificates carrying only nonRepudiation
and no clientAuth EKU) exist only from cryptography 45 while we support ≥ 42; it raises one
opaque ``VerificationError`` whereas each refusal here must map to its own fault code (expired
vs. untrusted vs. weak key); its Web-PKI profile hard-codes rules national CAs do not all follow;
and it does no revocation checking. The explicit validation below is short, uses cryptography's
``verify_directly_issued_by`` for every signature, and reports precisely.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from signing.crl import CrlRevocationChecker
from signing.errors import (
    CertificateExpired,
    CertificateNotYetValid,
    CertificateRevoked,
    CertificateUntrusted,
    ConfigurationError,
    KeyUsageNotAllowed,
    RevocationSourceUnusable,
    RevocationUnknown,
    SigningError,
    WeakKey,
)
from signing.revocation import (
    RevocationChecker,
    RevocationResult,
    RevocationStatus,
)

__all__ = [
    "CacheInfo",
    "CrlRevocationChecker",
    "LapsedCertificateValidator",
    "RevocationChecker",
    "RevocationResult",
    "RevocationStatus",
    "TrustStore",
    "TrustStoreConfig",
    "ValidatedPath",
    "ValidationCache",
]

log = logging.getLogger(__name__)

#: Key-usage names accepted in configuration → attribute of ``x509.KeyUsage``.
_KEY_USAGE_ATTRS = {
    "non_repudiation": "content_commitment",
    "content_commitment": "content_commitment",
    "digital_signature": "digital_signature",
}



# --------------------------------------------------------------------------------------------
# configuration and results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrustStoreConfig:
    """What to trust and how strictly. Paths are files of PEM (one or more) or DER."""

    anchor_paths: tuple[str, ...]
    crl_paths: tuple[str, ...] = ()
    require_crl: bool = True
    min_rsa_bits: int = 2048
    allowed_curves: tuple[str, ...] = ("secp256r1", "secp384r1", "secp521r1")
    allowed_key_usages: tuple[str, ...] = ("non_repudiation", "digital_signature")
    #: A CRL older than this (since thisUpdate) counts as stale even before its nextUpdate.
    crl_max_age_seconds: int | None = None
    max_path_length: int = 6
    #: Successful validations kept (LRU); 0 turns the cache off.
    cache_max_entries: int = 10_000
    #: A cached validation is reused at most this long after it was made; 0 turns the cache off.
    cache_max_age_seconds: int = 300
    #: "No path: the issuer is unknown" is remembered this long for the very same issuer name,
    #: key id and offered intermediates (an attacker repeating a request); 0 turns it off.
    negative_cache_seconds: int = 60
    negative_cache_max_entries: int = 1_000

    def __post_init__(self) -> None:
        for name in ("anchor_paths", "crl_paths", "allowed_curves", "allowed_key_usages"):
            value = getattr(self, name)
            if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                raise ConfigurationError(f"trust store {name} must be a list of strings")
            object.__setattr__(self, name, tuple(value))
        if not self.anchor_paths:
            raise ConfigurationError("the trust store needs at least one anchor")
        unknown = sorted(set(self.allowed_key_usages) - set(_KEY_USAGE_ATTRS))
        if unknown or not self.allowed_key_usages:
            raise ConfigurationError(
                f"allowed_key_usages must be among {', '.join(_KEY_USAGE_ATTRS)}"
            )
        if self.min_rsa_bits < 1024 or self.max_path_length < 1:
            raise ConfigurationError("min_rsa_bits ≥ 1024 and max_path_length ≥ 1, please")
        if self.crl_max_age_seconds is not None and self.crl_max_age_seconds <= 0:
            raise ConfigurationError("crl_max_age_seconds must be positive")
        if self.cache_max_entries < 0 or self.cache_max_age_seconds < 0:
            raise ConfigurationError("cache_max_entries and cache_max_age_seconds must be ≥ 0")
        if self.negative_cache_seconds < 0 or self.negative_cache_max_entries < 0:
            raise ConfigurationError("the negative cache's size and age must be ≥ 0")

    @classmethod
    def from_config(
        cls, mapping: Mapping[str, Any], *, base_dir: Path | None = None
    ) -> TrustStoreConfig:
        """From a configuration mapping; unknown keys are refused. Relative paths are resolved
        against ``base_dir`` (e.g. the configuration file's directory)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(mapping) - known)
        if unknown:
            raise ConfigurationError(f"unknown trust store keys: {', '.join(unknown)}")
        values = dict(mapping)
        for key in ("anchor_paths", "crl_paths"):
            if key in values:
                paths = values[key]
                if isinstance(paths, str | Path):
                    raise ConfigurationError(f"trust store {key} must be a list")
                values[key] = tuple(
                    str(base_dir / p) if base_dir is not None and not Path(p).is_absolute()
                    else str(p)
                    for p in paths
                )
        for key in ("require_crl",):
            if key in values and not isinstance(values[key], bool):
                raise ConfigurationError(f"trust store {key} must be true or false")
        for key in ("min_rsa_bits", "max_path_length", "crl_max_age_seconds",
                    "cache_max_entries", "cache_max_age_seconds", "negative_cache_seconds",
                    "negative_cache_max_entries"):
            if key in values and values[key] is not None and (
                not isinstance(values[key], int) or isinstance(values[key], bool)
            ):
                raise ConfigurationError(f"trust store {key} must be an integer")
        if "anchor_paths" not in values:
            raise ConfigurationError("trust store anchor_paths is required")
        return cls(**values)


@dataclass(frozen=True)
class ValidatedPath:
    """A successful validation: trust only what is in here."""

    certificate: x509.Certificate
    #: leaf first, ending with the trust anchor
    path: tuple[x509.Certificate, ...]
    anchor: x509.Certificate
    validated_at: datetime
    revocation: tuple[RevocationResult, ...] = field(default=())


# --------------------------------------------------------------------------------------------
# the validation cache
# --------------------------------------------------------------------------------------------


CacheKey = tuple[bytes, tuple[bytes, ...]]


class CacheInfo(NamedTuple):
    hits: int
    misses: int
    size: int
    max_size: int


@dataclass(frozen=True)
class _CacheEntry:
    result: ValidatedPath
    #: validation times (inclusive) at which ``result`` holds
    valid_from: datetime
    valid_until: datetime
    #: ``time.monotonic()`` after which the entry is void whatever time is asked about
    expires: float
    #: generations of the CRL checkers the answer came from
    generations: tuple[int, ...]


class ValidationCache:
    """Successful validations by (certificate fingerprint, intermediate fingerprints), LRU,
    bounded, thread-safe. Only :class:`TrustStore` decides what goes in and when it holds."""

    def __init__(self, max_entries: int) -> None:
        self._max_entries = max_entries
        self._entries: OrderedDict[CacheKey, _CacheEntry] = OrderedDict()
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0

    def get(self, key: CacheKey) -> _CacheEntry | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(self, key: CacheKey, entry: _CacheEntry) -> None:
        if self._max_entries <= 0:
            return
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)

    def discard(self, key: CacheKey, entry: _CacheEntry) -> None:
        """Drop ``entry`` (only if it is still the one cached under ``key``)."""
        with self._lock:
            if self._entries.get(key) is entry:
                del self._entries[key]

    def count(self, *, hit: bool) -> None:
        with self._lock:
            if hit:
                self._hits += 1
            else:
                self._misses += 1

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def info(self) -> CacheInfo:
        with self._lock:
            return CacheInfo(self._hits, self._misses, len(self._entries), self._max_entries)


def _fingerprint(cert: x509.Certificate) -> bytes:
    return cert.fingerprint(hashes.SHA256())


# --------------------------------------------------------------------------------------------
# the trust store
# --------------------------------------------------------------------------------------------


class TrustStore:
    """Validates signer certificates against a fixed list of anchors. Thread-safe."""

    def __init__(
        self,
        anchors: Sequence[x509.Certificate],
        config: TrustStoreConfig,
        *,
        revocation_checkers: Sequence[RevocationChecker] | None = None,
    ) -> None:
        if not anchors:
            raise ConfigurationError("the trust store needs at least one anchor")
        for anchor in anchors:
            if not _is_ca(anchor):
                raise ConfigurationError(
                    f"trust anchor {anchor.subject.rfc4514_string()} is not a CA certificate"
                )
        self._anchors = tuple(anchors)
        self._anchors_by_subject: dict[x509.Name, list[x509.Certificate]] = {}
        for anchor in self._anchors:
            self._anchors_by_subject.setdefault(anchor.subject, []).append(anchor)
        self._config = config
        self._crl_checker: CrlRevocationChecker | None = None
        if revocation_checkers is None:
            max_age = (timedelta(seconds=config.crl_max_age_seconds)
                       if config.crl_max_age_seconds is not None else None)
            self._crl_checker = CrlRevocationChecker(config.crl_paths, max_age=max_age)
            revocation_checkers = (self._crl_checker,)
        else:
            self._crl_checker = next(
                (c for c in revocation_checkers if isinstance(c, CrlRevocationChecker)), None
            )
        self._checkers = tuple(revocation_checkers)
        self._crl_checkers = tuple(
            c for c in self._checkers if isinstance(c, CrlRevocationChecker)
        )
        self._usage_attrs = tuple(_KEY_USAGE_ATTRS[u] for u in config.allowed_key_usages)
        self._cache_enabled = config.cache_max_entries > 0 and config.cache_max_age_seconds > 0
        self._cache_max_age = timedelta(seconds=config.cache_max_age_seconds)
        self._cache = ValidationCache(config.cache_max_entries if self._cache_enabled else 0)
        self._unknown_issuers: OrderedDict[bytes, float] = OrderedDict()
        self._unknown_lock = threading.Lock()

    # --- construction ---------------------------------------------------------------------------

    @classmethod
    def from_config(
        cls,
        config: TrustStoreConfig,
        *,
        revocation_checkers: Sequence[RevocationChecker] | None = None,
    ) -> TrustStore:
        anchors = [c for p in config.anchor_paths for c in _load_certificates(Path(p))]
        return cls(anchors, config, revocation_checkers=revocation_checkers)

    @classmethod
    def from_paths(
        cls,
        anchors: Sequence[str | Path],
        crls: Sequence[str | Path] = (),
        *,
        revocation_checkers: Sequence[RevocationChecker] | None = None,
        **options: Any,
    ) -> TrustStore:
        """Anchors (root and issuing CAs) and CRLs from files; ``options`` are further
        :class:`TrustStoreConfig` fields (``require_crl=False``, ``min_rsa_bits=3072``, ...)."""
        config = TrustStoreConfig(
            anchor_paths=tuple(str(p) for p in anchors),
            crl_paths=tuple(str(p) for p in crls),
            **options,
        )
        return cls.from_config(config, revocation_checkers=revocation_checkers)

    @property
    def anchors(self) -> tuple[x509.Certificate, ...]:
        return self._anchors

    @property
    def config(self) -> TrustStoreConfig:
        return self._config

    def reload_crls(self) -> None:
        """Re-read the configured CRL files (e.g. after a cron job fetched fresh ones); empties
        the validation cache."""
        if self._crl_checker is not None:
            self._crl_checker.reload()
        self._cache.clear()

    def clear_cache(self) -> None:
        """Forget every cached validation."""
        self._cache.clear()

    def cache_info(self) -> CacheInfo:
        """Hits, misses and size of the validation cache."""
        return self._cache.info()

    # --- validation -----------------------------------------------------------------------------

    def validate(
        self,
        cert: x509.Certificate,
        intermediates: Sequence[x509.Certificate] = (),
        at: datetime | None = None,
        *,
        revocation_at: datetime | None = None,
    ) -> ValidatedPath:
        """Validate ``cert`` at ``at`` (aware datetime; default now) or raise a CertificateError.

        ``revocation_at`` (default ``at``) is the moment revocation is judged at; only
        :class:`LapsedCertificateValidator` sets it apart from ``at``.

        ``intermediates`` (e.g. from the message) only help to find a path; they are never
        trusted by themselves.

        A success may come from the cache (see the module documentation): only while every
        check above would give the same answer at ``at`` (and at ``revocation_at``).
        """
        if at is None:
            at = datetime.now(UTC)
        elif at.tzinfo is None:
            raise ConfigurationError("validate() needs an aware datetime")
        at = at.astimezone(UTC)
        if revocation_at is not None:
            revocation_at = revocation_at.astimezone(UTC)

        key: CacheKey | None = None
        if self._cache_enabled:
            try:
                key = (_fingerprint(cert), tuple(_fingerprint(c) for c in intermediates))
            except ValueError:
                key = None  # not encodable: validate uncached (and refuse below)
        if key is not None:
            entry = self._cache.get(key)
            if entry is not None:
                hit = self._cached(entry, at, revocation_at)
                self._cache.count(hit=hit is not None)
                if hit is not None:
                    return hit
                if at > entry.valid_until or time.monotonic() > entry.expires:
                    self._cache.discard(key, entry)
            else:
                self._cache.count(hit=False)
        # Read before validating: a reload during the validation voids what it finds.
        generations = tuple(c.generation for c in self._crl_checkers)

        revocation_moment = at if revocation_at is None else revocation_at
        # Cheap refusals before any signature is checked on the way to an anchor.
        if len(intermediates) > self._config.max_path_length:
            raise CertificateUntrusted(
                f"{len(intermediates)} intermediate certificates offered; no allowed path is "
                f"longer than {self._config.max_path_length}"
            )
        unknown_key = self._unknown_issuer_key(cert, intermediates)
        if unknown_key is not None and self._is_known_unknown(unknown_key):
            raise CertificateUntrusted(
                f"no path from {cert.subject.rfc4514_string()}: its issuer "
                f"{cert.issuer.rfc4514_string()} is unknown (seen again)"
            )
        try:
            path = self._build_path(cert, intermediates, unknown_key)
            for position, member in enumerate(path):
                self._check_validity(member, at, is_leaf=position == 0)
            self._check_ca_constraints(path)
            self._check_end_entity_usage(cert)
            for member in path:
                self._check_key_strength(member, is_leaf=member is cert)
            revocation, answers = self._check_revocation(path, revocation_moment)
        except SigningError:
            raise
        except ValueError as exc:
            # cryptography refuses malformed or duplicate extensions only when they are read.
            raise CertificateUntrusted(f"malformed certificate on the path: {exc}") from exc
        result = ValidatedPath(
            certificate=cert, path=tuple(path), anchor=path[-1], validated_at=at,
            revocation=tuple(revocation),
        )
        # Only what was judged at one moment is kept (LapsedCertificateValidator moves ``at``).
        if key is not None and revocation_moment == at:
            self._remember(key, result, answers, generations)
        return result

    def _cached(
        self, entry: _CacheEntry, at: datetime, revocation_at: datetime | None
    ) -> ValidatedPath | None:
        if not entry.valid_from <= at <= entry.valid_until:
            return None
        if revocation_at is not None and not entry.valid_from <= revocation_at <= entry.valid_until:
            return None
        if time.monotonic() > entry.expires:
            return None
        if entry.generations != tuple(c.generation for c in self._crl_checkers):
            return None
        cached = entry.result
        if cached.validated_at == at:
            return cached
        return ValidatedPath(
            certificate=cached.certificate, path=cached.path, anchor=cached.anchor,
            validated_at=at, revocation=cached.revocation,
        )

    def _remember(
        self,
        key: CacheKey,
        result: ValidatedPath,
        answers: Sequence[RevocationResult],
        generations: tuple[int, ...],
    ) -> None:
        valid_from = max(c.not_valid_before_utc for c in result.path)
        valid_until = min(
            min(c.not_valid_after_utc for c in result.path),
            result.validated_at + self._cache_max_age,
        )
        for answer in answers:
            if answer.valid_until is None:
                return  # the source does not say how long its answer holds
            if answer.valid_from is not None:
                valid_from = max(valid_from, answer.valid_from)
            valid_until = min(valid_until, answer.valid_until)
        if not valid_from <= result.validated_at <= valid_until:
            return
        expires = time.monotonic() + self._cache_max_age.total_seconds()
        self._cache.put(key, _CacheEntry(result, valid_from, valid_until, expires, generations))

    def _build_path(
        self,
        leaf: x509.Certificate,
        intermediates: Sequence[x509.Certificate],
        unknown_key: bytes | None = None,
    ) -> list[x509.Certificate]:
        """A path leaf → anchor. Signatures are checked at most once per (child, issuer) pair,
        and only on offered CAs that themselves reach an anchor, found by working outwards from
        the anchors: certificates that chain only to each other (attacker-made "CAs" sharing a
        name) cost name comparisons, not signature checks."""
        subject = leaf.subject.rfc4514_string()
        if _is_ca(leaf):
            raise CertificateUntrusted(f"{subject} is a CA certificate; CAs do not sign messages")
        if leaf.issuer == leaf.subject and _signed_by(leaf, leaf):
            raise CertificateUntrusted(f"{subject} is self-signed")
        offered = [c for c in intermediates
                   if c != leaf and c not in self._anchors and _is_ca(c)]
        checked: dict[tuple[int, int], bool] = {}

        def signs(issuer: x509.Certificate, child: x509.Certificate) -> bool:
            pair = (id(child), id(issuer))
            known = checked.get(pair)
            if known is None:
                known = checked[pair] = _signed_by(child, issuer)
            return known

        # The offered CAs with a path to an anchor, grown outwards from the anchors.
        reaching: dict[x509.Name, list[x509.Certificate]] = {}
        pending = list(offered)
        grew = True
        while grew and pending:
            grew = False
            for candidate in list(pending):
                for issuer, _ in self._issuer_candidates(candidate, reaching):
                    if issuer is not candidate and signs(issuer, candidate):
                        reaching.setdefault(candidate.subject, []).append(candidate)
                        pending.remove(candidate)
                        grew = True
                        break

        if next(iter(self._issuer_candidates(leaf, reaching)), None) is None:
            if unknown_key is not None:
                self._remember_unknown(unknown_key)
            raise CertificateUntrusted(
                f"no path from {subject}: its issuer {leaf.issuer.rfc4514_string()} is "
                "neither a trusted CA nor offered with a path to one"
            )

        def extend(chain: list[x509.Certificate]) -> list[x509.Certificate] | None:
            child = chain[-1]
            for issuer, is_anchor in self._issuer_candidates(child, reaching):
                if issuer in chain or not signs(issuer, child):
                    continue
                if is_anchor:
                    return [*chain, issuer]
                if len(chain) < self._config.max_path_length:
                    found = extend([*chain, issuer])
                    if found is not None:
                        return found
            return None

        path = extend([leaf])
        if path is None:
            raise CertificateUntrusted(
                f"no path from {subject} (issuer {leaf.issuer.rfc4514_string()}) "
                "to a trusted CA"
            )
        return path

    def _unknown_issuer_key(
        self, leaf: x509.Certificate, intermediates: Sequence[x509.Certificate]
    ) -> bytes | None:
        if self._config.negative_cache_seconds <= 0 or self._config.negative_cache_max_entries <= 0:
            return None
        try:
            parts = [leaf.issuer.public_bytes(), _authority_key_id(leaf) or b""]
            parts.extend(sorted(_fingerprint(c) for c in intermediates))
        except ValueError:
            return None
        return hashlib.sha256(b"\x00".join(hashlib.sha256(p).digest() for p in parts)).digest()

    def _is_known_unknown(self, key: bytes) -> bool:
        with self._unknown_lock:
            expires = self._unknown_issuers.get(key)
            if expires is None:
                return False
            if time.monotonic() > expires:
                del self._unknown_issuers[key]
                return False
            return True

    def _remember_unknown(self, key: bytes) -> None:
        """Sound only for "no issuer candidate at all": that depends on the leaf's issuer name
        and key id and on the intermediates offered, never on the leaf's own signature."""
        with self._unknown_lock:
            self._unknown_issuers[key] = time.monotonic() + self._config.negative_cache_seconds
            self._unknown_issuers.move_to_end(key)
            while len(self._unknown_issuers) > self._config.negative_cache_max_entries:
                self._unknown_issuers.popitem(last=False)

    def _issuer_candidates(
        self, child: x509.Certificate, pool: Mapping[x509.Name, list[x509.Certificate]]
    ) -> Iterable[tuple[x509.Certificate, bool]]:
        wanted_key_id = _authority_key_id(child)
        for candidates, is_anchor in (
            (self._anchors_by_subject.get(child.issuer, []), True),
            (pool.get(child.issuer, []), False),
        ):
            for candidate in candidates:
                key_id = _subject_key_id(candidate)
                if wanted_key_id is not None and key_id is not None and key_id != wanted_key_id:
                    continue
                yield candidate, is_anchor

    @staticmethod
    def _check_validity(cert: x509.Certificate, at: datetime, *, is_leaf: bool) -> None:
        who = "certificate" if is_leaf else "issuing CA certificate"
        subject = cert.subject.rfc4514_string()
        if at < cert.not_valid_before_utc:
            raise CertificateNotYetValid(
                f"{who} {subject} is valid only from {cert.not_valid_before_utc.isoformat()}"
            )
        if at > cert.not_valid_after_utc:
            raise CertificateExpired(
                f"{who} {subject} expired on {cert.not_valid_after_utc.isoformat()}"
            )

    @staticmethod
    def _check_ca_constraints(path: Sequence[x509.Certificate]) -> None:
        for depth, ca in enumerate(path[1:]):  # depth = CAs between this one and the leaf
            subject = ca.subject.rfc4514_string()
            constraints = _basic_constraints(ca)
            if constraints is None or not constraints.ca:
                raise CertificateUntrusted(f"{subject} issued a certificate but is not a CA")
            if constraints.path_length is not None and depth > constraints.path_length:
                raise CertificateUntrusted(f"path too long for {subject}'s pathLenConstraint")
            usage = _key_usage(ca)
            if usage is not None and not usage.key_cert_sign:
                raise CertificateUntrusted(f"{subject} may not sign certificates")

    def _check_end_entity_usage(self, cert: x509.Certificate) -> None:
        usage = _key_usage(cert)
        allowed = " or ".join(self._config.allowed_key_usages)
        if usage is None:
            raise KeyUsageNotAllowed(f"the certificate has no keyUsage (need {allowed})")
        if not any(getattr(usage, attr) for attr in self._usage_attrs):
            raise KeyUsageNotAllowed(f"the certificate's keyUsage does not include {allowed}")

    def _check_key_strength(self, cert: x509.Certificate, *, is_leaf: bool) -> None:
        who = "the certificate" if is_leaf else f"CA {cert.subject.rfc4514_string()}"
        try:
            key = cert.public_key()
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise WeakKey(f"{who} has an unsupported public key") from exc
        if isinstance(key, rsa.RSAPublicKey):
            if key.key_size < self._config.min_rsa_bits:
                raise WeakKey(f"{who} has an RSA-{key.key_size} key "
                              f"(at least {self._config.min_rsa_bits} bits required)")
        elif isinstance(key, ec.EllipticCurvePublicKey):
            if key.curve.name not in self._config.allowed_curves:
                raise WeakKey(f"{who} uses EC curve {key.curve.name}, which is not allowed")
        else:
            raise WeakKey(f"{who} has a {type(key).__name__}; only RSA and EC are allowed")

    def _check_revocation(
        self, path: Sequence[x509.Certificate], at: datetime
    ) -> tuple[list[RevocationResult], list[RevocationResult]]:
        """(the final answer for each non-anchor certificate, every answer consulted)."""
        results: list[RevocationResult] = []
        consulted: list[RevocationResult] = []
        for cert, issuer in itertools.pairwise(path):
            if cert in self._anchors:
                break  # trusted by configuration from here up
            answers = []
            for checker in self._checkers:
                answer = checker.check(cert, issuer, at)
                answers.append(answer)
                if answer.status is not RevocationStatus.UNKNOWN:
                    break
            consulted.extend(answers)
            final = answers[-1] if answers else RevocationResult(
                RevocationStatus.UNKNOWN, "none", detail="no revocation checker configured"
            )
            subject = cert.subject.rfc4514_string()
            if final.status is RevocationStatus.REVOKED:
                when = final.revoked_at.isoformat() if final.revoked_at else "unknown time"
                raise CertificateRevoked(
                    f"{subject} was revoked at {when}"
                    + (f" ({final.reason})" if final.reason else "")
                )
            if final.status is RevocationStatus.UNKNOWN and self._config.require_crl:
                details = "; ".join(f"{a.source}: {a.detail}" for a in answers) or final.detail
                error = (RevocationSourceUnusable if any(a.unusable for a in answers)
                         else RevocationUnknown)
                raise error(f"revocation status of {subject} unknown: {details}")
            results.append(final)
        return results, consulted

    def __repr__(self) -> str:
        names = ", ".join(a.subject.rfc4514_string() for a in self._anchors)
        return f"TrustStore(anchors=[{names}], require_crl={self._config.require_crl})"


# --------------------------------------------------------------------------------------------
# certificate helpers
# --------------------------------------------------------------------------------------------


def _load_certificates(path: Path) -> list[x509.Certificate]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read trust anchor {path}: {exc.strerror}") from exc
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise ConfigurationError(f"{path} holds no readable certificate: {exc}") from exc


def _signed_by(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def _basic_constraints(cert: x509.Certificate) -> x509.BasicConstraints | None:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return None


def _is_ca(cert: x509.Certificate) -> bool:
    constraints = _basic_constraints(cert)
    return constraints is not None and constraints.ca


def _key_usage(cert: x509.Certificate) -> x509.KeyUsage | None:
    try:
        return cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None


def _authority_key_id(cert: x509.Certificate) -> bytes | None:
    try:
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    except x509.ExtensionNotFound:
        return None
    return aki.key_identifier


def _subject_key_id(cert: x509.Certificate) -> bytes | None:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return None


class LapsedCertificateValidator:
    """Attributes a signature whose certificate is outside its validity period, for one use only:
    learning *who* signed a request that is refused, so that what they entered is kept (a draft
    with the reason) instead of lost. It never makes such a request acceptable.

    Everything else is checked as strictly as by the wrapped store: the path to an anchor, key
    usage, key strength, and revocation -- a certificate revoked for key compromise stays
    refused, since its signatures identify nobody. Only the moment of validation is moved into
    the certificate's own validity window.
    """

    def __init__(self, trust: TrustStore) -> None:
        self._trust = trust

    def validate(
        self,
        cert: x509.Certificate,
        intermediates: Sequence[x509.Certificate] = (),
        at: datetime | None = None,
    ) -> ValidatedPath:
        moment = at if at is not None else datetime.now(UTC)
        try:
            return self._trust.validate(cert, intermediates, at=moment)
        except (CertificateExpired, CertificateNotYetValid):
            pass
        second = timedelta(seconds=1)
        inside = min(max(moment, cert.not_valid_before_utc + second),
                     cert.not_valid_after_utc - second)
        # Revocation is judged now: the CRL speaks of today, not of the moved moment.
        return self._trust.validate(cert, intermediates, at=inside, revocation_at=moment)
