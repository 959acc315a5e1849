"""Configuration: one frozen ``Settings`` object, read from a TOML file and the environment.

Precedence: built-in safe defaults < the TOML file (``--config`` or ``DSMF_CONFIG``) <
environment variables ``DSMF_<KEY>`` (upper case). Unknown keys and bad values are refused at
start with a message naming the key, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

from gateway.domain import ssn
from gateway.domain.errors import GatewayError


class ConfigError(GatewayError):
    code = "Server.Configuration"


def project_root() -> Path:
    """The checkout (or install) root that holds ``wsdl/`` and ``xsd/``."""
    return Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    # Where the gateway listens and keeps its state.
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("var")
    database_url: str = ""  # empty: SQLite file in data_dir
    contract_dir: Path = field(default_factory=project_root)
    public_url: str = ""  # empty: derived from the request's Host header

    # Upstream services (empty URL: the embedded simulators are started by `serve`).
    population_url: str = ""
    mobile_url: str = ""
    upstream_timeout_seconds: float = 5.0
    upstream_retries: int = 2
    breaker_failures: int = 5
    breaker_reset_seconds: float = 30.0
    mobile_ap_id: str = "DSMF-GATEWAY"
    mobile_poll_timeout_seconds: float = 120.0
    mobile_max_open_per_phone: int = 3

    # Trust and the gateway's own key. Empty: the demo PKI in data_dir/pki (embedded default only).
    trust_anchors: tuple[Path, ...] = ()
    crls: tuple[Path, ...] = ()
    # A certificate whose revocation status no source can tell is refused; false ("soft
    # fail") only when an operator explicitly wants it.
    require_crl: bool = True
    # Revocation sources, asked in this order until one gives a definite answer: "crl", "ocsp".
    revocation_sources: tuple[str, ...] = ("crl",)
    ocsp_url: str = ""  # empty: the responder named in each certificate (authorityInfoAccess)
    ocsp_timeout_seconds: float = 5.0
    ocsp_require_nonce: bool = True
    ocsp_cert_id_hash: str = "sha1"
    signing_key_file: Path | None = None  # PEM key, or PKCS#12 bundle
    signing_cert_file: Path | None = None
    # PEM files of the answer key's issuing CA(s) and root: sent in answers and at ?certs.
    signing_chain_files: tuple[Path, ...] = ()
    signing_key_password_env: str = "DSMF_SIGNING_KEY_PASSWORD"  # noqa: S105 - a variable name
    pkcs11_module: str = ""  # set to sign responses with a token instead of a key file
    pkcs11_token_label: str = ""
    pkcs11_key_label: str = ""
    pkcs11_pin_env: str = "DSMF_PKCS11_PIN"  # the variable holding the PIN

    # Message-security profile (DESIGN.md §2).
    max_message_bytes: int = 2_000_000
    max_xml_depth: int = 64
    max_xml_elements: int = 20_000
    max_timestamp_lifetime_seconds: int = 600  # covers node-soap's fixed 10 minutes
    clock_skew_seconds: int = 60
    min_rsa_bits: int = 2048
    idempotency_ttl_seconds: int = 86_400
    # Cheap refusals before certificate path building (issue #16): BinarySecurityTokens per
    # message and characters per token, certificates on a path, and how long "this issuer is
    # unknown" is remembered for the very same issuer and intermediates.
    max_security_tokens: int = 4
    max_security_token_bytes: int = 16_384
    max_certificate_path_length: int = 6
    unknown_issuer_cache_seconds: int = 60
    # Hot path (issue #10), per process, 0 turns each off: a signer whose authorities were
    # found bound to their certificate is not looked up again for this many seconds; the person
    # a FindPerson fetched is reused by the same insurer's SubmitRegistration or SaveDraft of
    # that FIN for this many seconds instead of asking the population registry again.
    signature_note_seconds: int = 30
    # PostgreSQL connections are replaced after this many seconds (they are not pinged on every
    # checkout; one the server closed is noticed without a round trip).
    database_pool_recycle_seconds: int = 1800
    # Database connections kept in the pool per process (SQLite file and PostgreSQL); at least
    # the server's worker threads (10 in the embedded server), or each busy moment opens and
    # closes connections. Up to 10 more are opened for a burst.
    database_pool_size: int = 10
    person_reuse_seconds: int = 10
    person_reuse_max_entries: int = 10_000
    # Signer certificates whose identity (FIN, VÖEN, seal authority, card number) is kept once
    # read, per process (0: read on every request); validation is never skipped.
    certificate_identity_memo_entries: int = 4096
    # System certificates (e.g. the e-gov portal) allowed to act for the person in X-Road userId,
    # for read-only operations; matched on organizationIdentifier (TINAZ-<VÖEN>).
    trusted_systems: tuple[str, ...] = ()
    # The Asan İmza operations are protected by the holder's confirmation on the phone.
    unsigned_operations: tuple[str, ...] = (
        "listMethods", "StartMobileLogin", "GetMobileSigningStatus",
    )

    # Per caller (client address, or the proxy header named here): at most this many calls of
    # the rate-limited unsigned operations per window; 0 turns the limit off.
    unsigned_rate_limit: int = 30
    unsigned_rate_window_seconds: int = 60
    rate_limited_operations: tuple[str, ...] = ("StartMobileLogin",)
    rate_limit_caller_header: str = ""

    # Certificate-to-identity mapping (signing.identity.IdentityMapping defaults).
    seal_policy_oid: str = "1.3.6.1.4.1.63311.1.1"

    # The message log's seals (docs/message-log.md). Empty log_tsa_url: nothing is sealed
    # (tests only; `serve` starts a TSA simulator); production points at the TSA's URL.
    log_tsa_url: str = ""
    log_tsa_trust_anchors: tuple[Path, ...] = ()  # the TSA's CA certificate(s), PEM
    log_tsa_timeout_seconds: float = 10.0
    log_seal_interval_seconds: float = 10.0  # how often the background sealer looks
    log_seal_batch_max: int = 2000  # entries per seal at most
    # Longer than any transaction lives: an entry whose id was taken earlier but committed
    # later is still found by the sealer within this window.
    log_seal_settle_seconds: float = 300.0
    log_seal_heartbeat_seconds: float = 3600.0  # a seal at least this often, even if idle
    log_seal_max_delay_seconds: float = 600.0  # older unsealed entries: readiness "degraded"
    log_anchor_file: Path | None = None  # the newest seal, outside the database
    log_retention_days: int = 0  # erase payloads of sealed entries older than this (0: never)

    # Domain limits.
    ssn_prefix: str = "1"
    ssn_serial_digits: int = 11
    max_page_size: int = 200
    max_batch_items: int = 500
    max_export_rows: int = 10_000  # ExportApplications: larger results are refused
    session_ttl_seconds: int = 1800
    # Finishing SUBMITTED applications (the registry was down): every gateway process runs the
    # loop; a database lease lets one of them work at a time. A full batch is followed at once
    # by the next, so a backlog drains at the rate the registry answers.
    retry_submitted_every_seconds: float = 10.0
    finisher_batch_size: int = 200
    finisher_enabled: bool = True
    # Refresh the database's planner statistics (ANALYZE) this often in every gateway process
    # (persistence.maintenance); 0: never.
    optimize_every_seconds: float = 3600.0
    # SQLite: every gateway process checkpoints the WAL (copies its pages into the database
    # file, which is then synced) this often in the background, instead of whichever request's
    # commit takes it past 1000 pages paying 5-8 ms; 0: the commits do, SQLite's default.
    sqlite_checkpoint_every_seconds: float = 1.0
    # ... and the commits still do past this many WAL pages (4 KiB each), should the
    # background checkpoint fall behind.
    sqlite_checkpoint_fallback_pages: int = 10_000
    # The registry search counts matches exactly up to this many (or up to the end of the
    # requested page, if further); beyond, `total` says only "more than that" (README).
    search_count_limit: int = 10_000

    # Logging: "text" (time, level, logger, correlation id) or "json" (one object a line).
    log_format: str = "text"
    log_level: str = "INFO"

    # Demo data (embedded default).
    demo: bool = False
    # Ports of the simulators `serve` starts when no population_url is set (0: any free port).
    simulator_population_port: int = 0
    simulator_mobile_port: int = 0
    simulator_approve_delay_seconds: float = 2.0
    # The population-registry simulator answers any valid FIN with a deterministic synthetic
    # person (benchmarks, load tests), besides the fixed demo people.
    simulator_any_fin: bool = False

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'gateway.db').resolve()}"

    @property
    def wsdl_path(self) -> Path:
        return self.contract_dir / "wsdl" / "gateway.wsdl"

    @property
    def xsd_dir(self) -> Path:
        return self.contract_dir / "xsd"

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @classmethod
    def load(
        cls,
        config_file: Path | None = None,
        environ: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        path = config_file or (Path(env["DSMF_CONFIG"]) if env.get("DSMF_CONFIG") else None)
        if path is not None:
            try:
                with path.open("rb") as fh:
                    values.update(tomllib.load(fh))
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ConfigError(f"cannot read configuration file {path}: {exc}") from exc
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ConfigError(f"unknown configuration keys in {path}: {', '.join(unknown)}")
        for name in names:
            key = f"DSMF_{name.upper()}"
            if key in env:
                values[name] = env[key]
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_mapping(values)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Settings:
        hints = get_type_hints(cls)
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name not in values:
                continue
            try:
                kwargs[f.name] = _coerce(hints[f.name], values[f.name])
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"bad value for {f.name!r}: {values[f.name]!r} ({exc})") from exc
        unknown = sorted(set(values) - set(hints))
        if unknown:
            raise ConfigError(f"unknown configuration keys: {', '.join(unknown)}")
        settings = cls(**kwargs)
        settings.validate()
        return settings

    def validate(self) -> None:
        problems = []
        if not 0 < self.port < 65536:
            problems.append("port must be 1..65535")
        for name in ("simulator_population_port", "simulator_mobile_port"):
            if not 0 <= getattr(self, name) < 65536:
                problems.append(f"{name} must be 0..65535 (0: any free port)")
        if self.max_message_bytes < 1024:
            problems.append("max_message_bytes must be at least 1024")
        if not 0 < self.max_timestamp_lifetime_seconds <= 3600:
            problems.append("max_timestamp_lifetime_seconds must be 1..3600")
        if not 0 <= self.clock_skew_seconds <= 600:
            problems.append("clock_skew_seconds must be 0..600")
        if self.min_rsa_bits < 2048:
            problems.append("min_rsa_bits below 2048 is not allowed by the profile")
        if not self.revocation_sources or len(set(self.revocation_sources)) != len(
            self.revocation_sources
        ) or not set(self.revocation_sources) <= {"crl", "ocsp"}:
            problems.append("revocation_sources must list crl and/or ocsp, each once")
        if self.ocsp_timeout_seconds <= 0 or self.ocsp_cert_id_hash not in ("sha1", "sha256"):
            problems.append("ocsp_timeout_seconds must be > 0 and ocsp_cert_id_hash sha1/sha256")
        if self.unsigned_rate_limit < 0 or not 1 <= self.unsigned_rate_window_seconds <= 86_400:
            problems.append("unsigned_rate_limit must be ≥ 0 and the window 1..86400 seconds")
        if not 1 <= self.max_security_tokens <= 16:
            problems.append("max_security_tokens must be 1..16")
        if not 512 <= self.max_security_token_bytes <= 1_000_000:
            problems.append("max_security_token_bytes must be 512..1000000")
        if not 1 <= self.max_certificate_path_length <= 16:
            problems.append("max_certificate_path_length must be 1..16")
        if not 0 <= self.unknown_issuer_cache_seconds <= 3600:
            problems.append("unknown_issuer_cache_seconds must be 0..3600")
        if not 10 <= self.database_pool_recycle_seconds <= 86_400:
            problems.append("database_pool_recycle_seconds must be 10..86400")
        if not 1 <= self.database_pool_size <= 200:
            problems.append("database_pool_size must be 1..200")
        if not 0 <= self.signature_note_seconds <= 3600:
            problems.append("signature_note_seconds must be 0..3600")
        if not 0 <= self.person_reuse_seconds <= 300 or self.person_reuse_max_entries < 1:
            problems.append("person_reuse_seconds must be 0..300 and person_reuse_max_entries"
                            " >= 1")
        if not 0 <= self.certificate_identity_memo_entries <= 1_000_000:
            problems.append("certificate_identity_memo_entries must be 0..1000000")
        if not 1 <= self.max_page_size <= 1000:
            problems.append("max_page_size must be 1..1000")
        if self.optimize_every_seconds < 0:
            problems.append("optimize_every_seconds must be >= 0 (0: never)")
        every = self.sqlite_checkpoint_every_seconds
        if not (every == 0 or 0.1 <= every <= 3600):
            problems.append("sqlite_checkpoint_every_seconds must be 0.1..3600, or 0 (in the"
                            " commits)")
        if not 1000 <= self.sqlite_checkpoint_fallback_pages <= 1_000_000:
            problems.append("sqlite_checkpoint_fallback_pages must be 1000..1000000")
        if not 1 <= self.search_count_limit <= 10_000_000:
            problems.append("search_count_limit must be 1..10000000")
        if not 1 <= self.max_batch_items <= 5000:
            problems.append("max_batch_items must be 1..5000")
        if not 1 <= self.max_export_rows <= 100_000:
            problems.append("max_export_rows must be 1..100000")
        if self.upstream_timeout_seconds <= 0 or self.upstream_retries < 0:
            problems.append("upstream timeout must be > 0 and retries >= 0")
        if self.pkcs11_module and not (self.pkcs11_token_label and self.pkcs11_key_label):
            problems.append("pkcs11_module needs pkcs11_token_label and pkcs11_key_label")
        if (self.signing_cert_file is None) != (self.signing_key_file is None) and not str(
            self.signing_key_file or ""
        ).endswith((".p12", ".pfx")):
            problems.append("signing_key_file and signing_cert_file go together (or a .p12)")
        # isascii: str.isdigit() also takes other scripts' digits and superscripts.
        if not (self.ssn_prefix.isascii() and self.ssn_prefix.isdigit()) \
                or not 4 <= self.ssn_serial_digits <= 18:
            problems.append("ssn_prefix must be digits 0-9 and ssn_serial_digits 4..18")
        elif len(self.ssn_prefix) + self.ssn_serial_digits + 1 > ssn.MAX_LENGTH:
            problems.append("an SSN (ssn_prefix, ssn_serial_digits and a check digit) is at most"
                            f" {ssn.MAX_LENGTH} digits")
        if self.log_tsa_url and not self.log_tsa_trust_anchors:
            problems.append("log_tsa_url needs log_tsa_trust_anchors (the TSA's CA)")
        if self.log_tsa_timeout_seconds <= 0 or self.log_seal_interval_seconds <= 0:
            problems.append("log_tsa_timeout_seconds and log_seal_interval_seconds must be > 0")
        if not 1 <= self.log_seal_batch_max <= 100_000:
            problems.append("log_seal_batch_max must be 1..100000")
        if self.log_seal_settle_seconds < 0 or self.log_seal_heartbeat_seconds <= 0:
            problems.append("log_seal_settle_seconds >= 0 and log_seal_heartbeat_seconds > 0")
        if self.log_retention_days < 0:
            problems.append("log_retention_days must be >= 0 (0: keep payloads)")
        if self.retry_submitted_every_seconds <= 0 or not 1 <= self.finisher_batch_size <= 10_000:
            problems.append("retry_submitted_every_seconds must be > 0 and "
                            "finisher_batch_size 1..10000")
        if self.log_format not in ("text", "json"):
            problems.append("log_format must be text or json")
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            problems.append("log_level must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        if problems:
            raise ConfigError("invalid configuration: " + "; ".join(problems))


def _coerce(hint: Any, raw: Any) -> Any:
    origin = get_origin(hint)
    args = get_args(hint)
    if origin is tuple:
        items = raw.split(",") if isinstance(raw, str) else list(raw)
        return tuple(_coerce(args[0], item.strip() if isinstance(item, str) else item)
                     for item in items if not (isinstance(item, str) and not item.strip()))
    if args and type(None) in args:  # Optional[X]
        if raw in (None, ""):
            return None
        inner = next(a for a in args if a is not type(None))
        return _coerce(inner, raw)
    if hint is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ValueError("expected a boolean")
    if hint is Path:
        return Path(raw)
    if hint in (int, float) and isinstance(raw, bool):
        raise ValueError("expected a number, not a boolean")
    if hint is int and isinstance(raw, float) and not raw.is_integer():
        raise ValueError("expected a whole number")
    if hint in (int, float, str):
        return hint(raw)
    raise TypeError(f"unsupported setting type {hint!r}")
