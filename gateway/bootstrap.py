"""The composition root: the one place that wires adapters to the service layer.

Nothing connects at import time: ``build_gateway(settings)`` opens the database, loads keys and
trust, and returns a WSGI application with everything it needs.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from gateway.config import ConfigError, Settings
from gateway.domain import calendar
from gateway.domain.errors import GatewayError
from gateway.domain.model import Actor, CredentialKind
from gateway.domain.ssn import SsnFormat
from gateway.evidence.seal import Sealer, SealHealth, SealMetrics, SealWorker
from gateway.evidence.tsa import TimeStampClient, load_certificates
from gateway.services.actors import ActorFactory
from gateway.services.authorities import AuthorityService
from gateway.services.export import RegistryExporter
from gateway.services.insurers import InsurerService
from gateway.services.mobile import MobileService
from gateway.services.notifications import NotificationService
from gateway.services.pdf import NoticePdfRenderer
from gateway.services.ports import PopulationRegistry
from gateway.services.recent import Recent
from gateway.services.registration import RegistrationService
from gateway.soap.contract import Contract
from gateway.soap.dispatch import SpyneDispatcher
from gateway.soap.endpoint import HealthCheck, SoapEndpoint
from gateway.soap.lapsed import DraftKeeper
from gateway.soap.operations import build_operations
from gateway.soap.ratelimit import CallerRateLimiter
from gateway.soap.service import build_application
from gateway.soap.xroad import XRoadHeaders, acting_for
from gateway.upstream.mobile import ZeepMobileSignatureService
from gateway.upstream.population import ZeepPopulationRegistry
from gateway.upstream.resilience import CircuitBreaker
from persistence.db import Database, StorageOptions
from persistence.guard import SqlRequestLedger
from persistence.maintenance import optimize
from persistence.message_log import MessageLog
from persistence.migrate import upgrade
from persistence.stores import MobileStore, SessionStore, SqlWorkerLeases
from signing.algorithms import DigestMethod, key_algorithm_of, method_for
from signing.identity import IdentityMapping
from signing.ocsp import OcspConfig, OcspRevocationChecker
from signing.parser import ParserLimits
from signing.pkcs11 import Pkcs11Config, Pkcs11Signer
from signing.policy import SecurityPolicy
from signing.signer import Signer
from signing.software import SoftwareSigner
from signing.trust import (
    CrlRevocationChecker,
    LapsedCertificateValidator,
    RevocationChecker,
    TrustStore,
)
from signing.verifier import EnvelopeVerifier, VerifiedMessage

log = logging.getLogger("gateway")

FINISHER_LEASE = "finish-submitted"


@dataclass(frozen=True)
class Provider:
    """This service as an X-Road member (listed by ``listMethods``)."""

    instance: str = "AZ"
    member_class: str = "GOV"
    member_code: str = "1500000011"
    subsystem_code: str = "insured-registration"


@dataclass
class Services:
    insurers: InsurerService
    registration: RegistrationService
    provider: Provider
    settings: Settings
    mobile: MobileService | None = None
    notifications: NotificationService | None = None
    authorities: AuthorityService | None = None
    export: RegistryExporter | None = None


@dataclass
class Gateway:
    app: SoapEndpoint
    services: Services
    database: Database
    settings: Settings
    sealer: Sealer | None = None
    _worker: threading.Thread | None = None
    _seal_worker: SealWorker | None = None
    _optimizer: threading.Thread | None = None
    _checkpointer: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def start_sealer(self) -> None:
        """Seal the message log in the background (no-op without a TSA: log_tsa_url)."""
        if self.sealer is not None and self._seal_worker is None:
            self._seal_worker = SealWorker(self.sealer, self.settings.log_seal_interval_seconds)
            self._seal_worker.start()

    def start_worker(self) -> None:
        """The background work of a serving process: finish SUBMITTED applications (accepted
        while the registry was down; unless ``finisher_enabled`` is false), refresh the
        planner statistics, checkpoint SQLite's WAL. Every process runs the finisher's loop;
        the ``finish-submitted`` lease lets one of them work at a time across hosts (the writes
        are safe with several anyway)."""
        self._start_maintenance()
        if not self.settings.finisher_enabled:
            return
        leases = SqlWorkerLeases(self.database)
        holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        interval = self.settings.retry_submitted_every_seconds
        batch = self.settings.finisher_batch_size

        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    while not self._stop.is_set() and leases.acquire(
                            FINISHER_LEASE, holder, timedelta(seconds=interval * 3 + 30)):
                        n = self.services.registration.finish_submitted(limit=batch)
                        if n:
                            log.info("finished %d submitted application(s)", n)
                        if n < batch:
                            break  # caught up, or the registry is still down
                except GatewayError as exc:
                    # The database or the registry is away (restart, outage): say so and try
                    # again next round; a traceback would only hide the message.
                    log.warning("finishing submitted applications paused: %s %s",
                                exc.code, exc.message)
                except Exception:
                    log.exception("finishing submitted applications failed")

        self._worker = threading.Thread(target=loop, name="finish-submitted", daemon=True)
        self._worker.start()

    def _start_maintenance(self) -> None:
        if self.settings.optimize_every_seconds > 0:
            self._optimizer = threading.Thread(target=self._optimize_periodically,
                                               name="optimize-database", daemon=True)
            self._optimizer.start()
        every = self.settings.sqlite_checkpoint_every_seconds
        if every > 0 and self.database.checkpoint_in_background(
                self.settings.sqlite_checkpoint_fallback_pages):
            self._checkpointer = threading.Thread(target=self._checkpoint_periodically,
                                                  args=(every,), name="checkpoint-wal",
                                                  daemon=True)
            self._checkpointer.start()

    def _checkpoint_periodically(self, every: float) -> None:
        """SQLite's WAL checkpoint off the requests (persistence.db.Database.checkpoint_wal).
        A failure is logged when it starts and when it ends, not every round."""
        failing = False
        while not self._stop.wait(every):
            try:
                self.database.checkpoint_wal()
            except Exception as exc:  # noqa: BLE001 - the commits' fallback still checkpoints
                if not failing:
                    log.warning("checkpointing the database's WAL failed: %s", exc)
                failing = True
            else:
                if failing:
                    log.info("checkpointing the database's WAL works again")
                failing = False

    def _optimize_periodically(self) -> None:
        """Planner statistics follow the registry's growth (persistence.maintenance)."""
        while not self._stop.wait(self.settings.optimize_every_seconds):
            try:
                optimize(self.database)
            except Exception:
                log.exception("refreshing the database statistics failed")

    def close(self) -> None:
        self._stop.set()
        for thread in (self._worker, self._optimizer, self._checkpointer):
            if thread is not None:
                thread.join(timeout=5)
        if self._seal_worker is not None:
            self._seal_worker.stop()
        self.database.dispose()


def _probe_signer(signer: Signer) -> None:
    """The answer key can sign (a PKCS#11 token still logged in, a key file loaded)."""
    method = method_for(key_algorithm_of(signer.public_key()), DigestMethod.SHA256)
    signer.sign(b"dsmf readiness probe", method)


def load_signer(settings: Settings) -> Signer:
    """The gateway's own key for signing responses: a PKCS#11 token or a key file."""
    if settings.pkcs11_module:
        return Pkcs11Signer(Pkcs11Config(
            module_path=settings.pkcs11_module,
            token_label=settings.pkcs11_token_label,
            token_serial=None,
            key_label=settings.pkcs11_key_label,
            pin_env=settings.pkcs11_pin_env,
            chain_paths=tuple(str(p) for p in settings.signing_chain_files),
        ))
    key = settings.signing_key_file
    if key is None:
        raise ConfigError("no signing key: set signing_key_file (+ signing_cert_file) or pkcs11_*")
    import os

    password_text = os.environ.get(settings.signing_key_password_env)
    password = password_text.encode() if password_text else None
    if key.suffix.lower() in (".p12", ".pfx"):
        return SoftwareSigner.from_pkcs12(key, password)
    assert settings.signing_cert_file is not None
    return SoftwareSigner.from_pem(
        key, settings.signing_cert_file, chain_paths=settings.signing_chain_files,
        password=password,
    )


def revocation_checkers(settings: Settings) -> list[RevocationChecker]:
    """The revocation sources in the configured order (the first definite answer wins)."""
    checkers: list[RevocationChecker] = []
    for source in settings.revocation_sources:
        if source == "crl":
            checkers.append(CrlRevocationChecker(settings.crls))
        else:
            checkers.append(OcspRevocationChecker(OcspConfig(
                url=settings.ocsp_url or None,
                timeout_seconds=settings.ocsp_timeout_seconds,
                require_nonce=settings.ocsp_require_nonce,
                cert_id_hash=settings.ocsp_cert_id_hash,
                clock_skew_seconds=settings.clock_skew_seconds,
            )))
    return checkers


def build_sealer(settings: Settings, log: MessageLog, signer: Signer) -> Sealer | None:
    """The message-log sealer, or None when no TSA is configured (nothing gets sealed)."""
    if not settings.log_tsa_url:
        return None
    tsa = TimeStampClient(
        settings.log_tsa_url, load_certificates(list(settings.log_tsa_trust_anchors)),
        timeout=settings.log_tsa_timeout_seconds,
    )
    return Sealer(
        log, signer, tsa,
        batch_max=settings.log_seal_batch_max,
        settle=timedelta(seconds=settings.log_seal_settle_seconds),
        heartbeat=timedelta(seconds=settings.log_seal_heartbeat_seconds),
        anchor_file=settings.log_anchor_file,
        crl_files=list(settings.crls),
    )


def policy_for(settings: Settings) -> SecurityPolicy:
    return SecurityPolicy(
        max_timestamp_lifetime=timedelta(seconds=settings.max_timestamp_lifetime_seconds),
        clock_skew=timedelta(seconds=settings.clock_skew_seconds),
        min_rsa_bits=settings.min_rsa_bits,
        max_tokens=settings.max_security_tokens,
        max_token_bytes=settings.max_security_token_bytes,
    )


def build_gateway(
    settings: Settings,
    *,
    registry: PopulationRegistry | None = None,
    clock: Callable[[], datetime] = calendar.now,
    migrate: bool = True,
) -> Gateway:
    if not settings.trust_anchors:
        raise ConfigError("trust_anchors is empty: no certificate would ever be trusted")
    url = settings.effective_database_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    if migrate:
        upgrade(url)
    database = Database(url, options=StorageOptions(
        search_count_limit=settings.search_count_limit,
        ssn_format=SsnFormat(settings.ssn_prefix, settings.ssn_serial_digits)),
        pool_recycle_seconds=settings.database_pool_recycle_seconds,
        pool_size=settings.database_pool_size)
    uow = database.unit_of_work
    if registry is None:
        if not settings.population_url:
            raise ConfigError("population_url is empty")
        registry = ZeepPopulationRegistry(
            settings.contract_dir / "wsdl" / "upstream" / "population-registry.wsdl",
            settings.population_url,
            timeout=settings.upstream_timeout_seconds,
            retries=settings.upstream_retries,
            breaker=CircuitBreaker(
                "population-registry",
                failure_threshold=settings.breaker_failures,
                reset_timeout=settings.breaker_reset_seconds,
            ),
        )
    trust = TrustStore.from_paths(
        list(settings.trust_anchors), list(settings.crls), require_crl=settings.require_crl,
        max_path_length=settings.max_certificate_path_length,
        negative_cache_seconds=settings.unknown_issuer_cache_seconds,
        revocation_checkers=revocation_checkers(settings),
    )
    verifier = EnvelopeVerifier(trust, policy_for(settings), None, clock)
    mapping = IdentityMapping(seal_policy_oid=settings.seal_policy_oid)
    actors = ActorFactory(mapping, settings.trusted_systems,
                          identity_memo_entries=settings.certificate_identity_memo_entries)
    authorities = AuthorityService(uow, registry, clock, settings.max_page_size,
                                   mapping.card_number_source,
                                   noted_signatures=Recent(settings.signature_note_seconds))

    def resolve_actor(verified: VerifiedMessage, headers: XRoadHeaders, operation: str) -> Actor:
        # The person a system certificate acts for: only ever from a *signed* userId.
        signed_user = XRoadHeaders(dict(verified.signed_headers)).user_id
        actor = actors.from_certificate(
            verified.certificate, operation=operation, user_id=signed_user,
            kind=CredentialKind.CARD, client_member=headers.client_member_code,
            acting_for=acting_for(verified.body),
        )
        # Binds the signer's authorities to this certificate and learns seal holders; a
        # write only when something changed (the first signature with a card).
        authorities.note_signature(actor)
        return actor

    # One key signs both the responses and the notices (bildiriş) the gateway issues.
    signer = load_signer(settings)
    registration = RegistrationService(
        uow, registry, clock, settings.max_page_size,
        recent_people=Recent(settings.person_reuse_seconds, settings.person_reuse_max_entries),
    )
    services = Services(
        insurers=InsurerService(uow, clock),
        registration=registration,
        authorities=authorities,
        provider=Provider(),
        settings=settings,
        notifications=NotificationService(
            uow, signer, clock, NoticePdfRenderer(), applications=registration.get
        ),
        export=RegistryExporter(registration, clock, settings.max_export_rows),
    )
    if settings.mobile_url:
        services.mobile = MobileService(
            uow, MobileStore(database), SessionStore(database),
            ZeepMobileSignatureService(
                settings.contract_dir / "wsdl" / "upstream" / "mobile-signature.wsdl",
                settings.mobile_url, ap_id=settings.mobile_ap_id,
                timeout=settings.upstream_timeout_seconds, retries=settings.upstream_retries,
            ),
            services.registration, verifier, mapping, clock,
            session_ttl=timedelta(seconds=settings.session_ttl_seconds),
            transaction_ttl=timedelta(seconds=settings.mobile_poll_timeout_seconds),
            max_open_per_phone=settings.mobile_max_open_per_phone,
            certificate_check=lambda certificate, at: trust.validate(certificate, [], at),
            authorities=authorities,
        )
    contract = Contract(settings.wsdl_path, settings.xsd_dir)
    journal = MessageLog(database)
    sealer = build_sealer(settings, journal, signer)
    health_checks = [
        HealthCheck("database", database.ping),
        HealthCheck("signing-key", lambda: _probe_signer(signer)),
        # Down, the registry degrades the service (submissions are accepted as SUBMITTED),
        # it does not make it unready: a load balancer must keep sending traffic.
        HealthCheck("population-registry", registry.ping, critical=False),
    ]
    if sealer is not None:
        health_checks.append(HealthCheck(
            "message-log-seal",
            SealHealth(sealer, timedelta(seconds=settings.log_seal_max_delay_seconds)),
            critical=False,
        ))
    endpoint = SoapEndpoint(
        contract=contract,
        dispatcher=SpyneDispatcher(build_application()),
        operations=build_operations(services),
        verifier=verifier,
        resolve_actor=resolve_actor,
        response_signer=signer,
        ledger=SqlRequestLedger(database),
        limits=ParserLimits(
            max_bytes=settings.max_message_bytes,
            max_depth=settings.max_xml_depth,
            max_elements=settings.max_xml_elements,
        ),
        unsigned_operations=settings.unsigned_operations,
        idempotency_ttl=timedelta(seconds=settings.idempotency_ttl_seconds),
        public_url=settings.public_url,
        health_checks=health_checks,
        clock=clock,
        resolve_session=services.mobile.resolve_session if services.mobile else None,
        rate_limiter=(
            CallerRateLimiter(settings.unsigned_rate_limit, settings.unsigned_rate_window_seconds)
            if settings.unsigned_rate_limit > 0 else None
        ),
        rate_limited_operations=settings.rate_limited_operations,
        caller_header=settings.rate_limit_caller_header,
        on_lapsed_signature=DraftKeeper(
            EnvelopeVerifier(LapsedCertificateValidator(trust), policy_for(settings), None, clock),
            contract, actors, registration,
        ),
    )
    endpoint.registry.register(SealMetrics(  # type: ignore[arg-type]
        journal, timedelta(seconds=settings.log_seal_settle_seconds)))
    return Gateway(app=endpoint, services=services, database=database, settings=settings,
                   sealer=sealer)


def demo_settings(data_dir: Path, pki_dir: Path, **changes: Any) -> dict[str, Any]:
    """Settings for the embedded default: the demo PKI as trust list and as our key."""
    from signing.testpki import init_demo_pki

    pki = init_demo_pki(pki_dir)
    # RSA answer key: every mainstream verifier checks RSA-SHA256, xml-crypto (node-soap) has
    # no ECDSA (docs/integration.md). The chain travels in answers and at ?certs.
    gw = pki.identity("gateway_rsa")
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "trust_anchors": tuple(pki.trust_anchor_paths),
        "crls": (pki.crl_path,),
        "signing_key_file": gw.key_path,
        "signing_cert_file": gw.cert_path,
        "signing_chain_files": tuple(gw.chain_paths),
        "trusted_systems": ("TINAZ-1500000001",),
        "demo": True,
    }
    values.update(changes)
    return values
