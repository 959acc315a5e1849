"""``dsmf-gateway``: run the gateway, its simulators, migrations and evidence tools."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from gateway.config import ConfigError, Settings
from gateway.domain.errors import GatewayError
from gateway.logging_config import configure_logging
from signing.errors import SigningError

EXAMPLE = """\
Try it (an ERP-style signed call with the demo director's card, verifying the signed answer):
  .venv/bin/python -m gateway.client.example --wsdl {wsdl} --pki {pki} --fin 5GH3J7K
"""

ANY_FIN_HELP = ("the population-registry simulator answers any valid FIN with a deterministic "
                "synthetic person, besides the demo people (also simulator_any_fin)")


def _settings(args: argparse.Namespace, **overrides: Any) -> Settings:
    config = Path(args.config) if getattr(args, "config", None) else None
    return Settings.load(config, **overrides)


def cmd_serve(args: argparse.Namespace) -> int:
    from gateway.bootstrap import build_gateway, demo_settings
    from gateway.wsgi_server import body_cap, serve_in_thread
    from persistence.seed import load_demo_data
    from simulators.runner import start_simulators  # not product code: only the demo commands

    stop = _stop_on_signal()
    data_dir = Path(args.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    pki_dir = data_dir / "pki"
    base = _settings(args, data_dir=data_dir, host=args.host, port=args.port,
                     simulator_population_port=args.population_port,
                     simulator_mobile_port=args.mobile_port,
                     simulator_any_fin=args.any_fin or None)
    overrides = demo_settings(data_dir, pki_dir)
    simulators = None
    if not base.population_url:
        # The demo CA's OCSP responder too, when OCSP is configured without a responder URL.
        with_ocsp = "ocsp" in base.revocation_sources and not base.ocsp_url
        simulators = start_simulators(
            pki_dir, host="127.0.0.1",
            population_port=base.simulator_population_port,
            mobile_port=base.simulator_mobile_port,
            approve_delay=base.simulator_approve_delay_seconds, ocsp=with_ocsp,
            any_fin=base.simulator_any_fin,
        )
        overrides["population_url"] = simulators.population_url
        overrides["mobile_url"] = simulators.mobile_url
        if simulators.ocsp_url:
            overrides["ocsp_url"] = simulators.ocsp_url
    if simulators is not None and not base.log_tsa_url:
        overrides["log_tsa_url"] = simulators.tsa_url
        overrides["log_tsa_trust_anchors"] = (simulators.tsa.trust_anchor_path,)
    if base.log_anchor_file is None:
        overrides["log_anchor_file"] = data_dir / "message-log-anchor.json"
    if base.trust_anchors:  # an operator-provided trust list wins over the demo PKI
        for key in ("trust_anchors", "crls", "signing_key_file", "signing_cert_file"):
            overrides.pop(key, None)
    settings = base.replace(**overrides)
    settings.validate()
    gateway = build_gateway(settings)
    load_demo_data(gateway.database)
    gateway.start_worker()
    gateway.start_sealer()
    server = serve_in_thread(gateway.app, host=settings.host, port=settings.port,
                             max_body_bytes=body_cap(settings.max_message_bytes),
                             on_http_error=gateway.app.http_error_answer)
    wsdl = f"{server.url.rstrip('/')}/soap?wsdl"
    print(f"DSMF insured-registration gateway on {server.url.rstrip('/')}/soap")
    print(f"  WSDL:    {wsdl}")
    root = server.url.rstrip('/')
    print(f"  health:  {root}/health    metrics: {root}/metrics")
    print(f"  data:    {data_dir} (SQLite, demo PKI in {pki_dir})")
    if simulators is not None:
        print(f"  population-registry simulator: {simulators.population_url}"
              + ("  (any valid FIN)" if base.simulator_any_fin else ""))
        print(f"  mobile-signature simulator:    {simulators.mobile_url}")
        print(f"  time-stamping (TSA) simulator: {simulators.tsa_url}")
        if simulators.ocsp_url:
            print(f"  OCSP responder simulator:      {simulators.ocsp_url}")
    print(EXAMPLE.format(wsdl=wsdl, pki=pki_dir))
    print("Ctrl-C stops.", flush=True)
    stop.wait()
    server.stop(timeout=5.0)
    gateway.close()
    if simulators is not None:
        simulators.stop()
    return 0


def cmd_simulators(args: argparse.Namespace) -> int:
    from signing.testpki import init_demo_pki
    from simulators.runner import start_simulators  # not product code: only the demo commands

    stop = _stop_on_signal()
    settings = _settings(args, simulator_any_fin=args.any_fin or None)
    pki_dir = Path(args.pki_dir).resolve()
    init_demo_pki(pki_dir)
    sims = start_simulators(
        pki_dir, host=args.host, population_port=args.population_port,
        mobile_port=args.mobile_port, tsa_port=args.tsa_port, ocsp=args.ocsp,
        ocsp_port=args.ocsp_port, any_fin=settings.simulator_any_fin,
    )
    any_fin = ", any valid FIN" if settings.simulator_any_fin else ""
    print(f"population registry: {sims.population_url}  (WSDL {sims.population_wsdl_url}"
          f"{any_fin})")
    print(f"mobile signature:    {sims.mobile_url}  (WSDL {sims.mobile_wsdl_url})")
    print(f"time-stamping (TSA): {sims.tsa_url}  (trust anchor {sims.tsa.trust_anchor_path})")
    if sims.ocsp_url:
        print(f"OCSP responder:      {sims.ocsp_url}")
    print(end="", flush=True)
    stop.wait()
    sims.stop()
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from persistence.migrate import current_revision, upgrade

    settings = _settings(args, database_url=args.database_url)
    url = settings.effective_database_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    # An explicit migrate also refreshes the planner statistics (cron-able, idempotent).
    upgrade(url, analyze=True)
    print(f"database at revision {current_revision(url)}")
    return 0


def cmd_pki_init(args: argparse.Namespace) -> int:
    from signing.testpki import init_demo_pki

    pki = init_demo_pki(Path(args.directory))
    print(f"demo PKI in {pki.directory}: trust anchors "
          + ", ".join(str(p) for p in pki.trust_anchor_paths))
    for name, identity in pki.identities.items():
        print(f"  {name:14} {identity.cert_path.name:24} FIN={identity.fin or '-'} "
              f"VÖEN={identity.voen or '-'} seal={identity.seal}")
    return 0


def cmd_load_insurers(args: argparse.Namespace) -> int:
    from persistence.db import Database
    from persistence.migrate import upgrade
    from persistence.seed import load_reference_data

    settings = _settings(args, database_url=args.database_url)
    url = settings.effective_database_url
    upgrade(url)
    db = Database(url)
    count = load_reference_data(db.unit_of_work, Path(args.file))
    print(f"loaded {count} insurer(s) from {args.file}")
    return 0


def cmd_log(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime, timedelta

    from persistence.db import Database
    from persistence.message_log import MessageLog

    settings = _settings(args, database_url=args.database_url)
    database = Database(settings.effective_database_url)
    log = MessageLog(database)
    try:
        if args.action == "verify":
            return _log_verify(args, settings, log)
        if args.action == "seal":
            from gateway.bootstrap import build_sealer, load_signer

            sealer = build_sealer(settings, log, load_signer(settings))
            if sealer is None:
                raise ConfigError("log seal needs a TSA: set log_tsa_url")
            made = sealer.seal_all(force=args.force)
            print(json.dumps({"seals": [s.number for s in made],
                              "entries": sum(s.entry_count for s in made)}))
            return 0
        if args.action == "erase":
            if args.before:
                before = datetime.fromisoformat(args.before)
            elif settings.log_retention_days > 0:
                before = datetime.now(UTC) - timedelta(days=settings.log_retention_days)
            else:
                raise ConfigError("log erase needs --before or log_retention_days > 0")
            if before.tzinfo is None:
                raise ConfigError("--before needs a time zone (e.g. 2026-01-01T00:00:00+00:00)")
            erased = 0
            while (n := log.erase_payloads(before, datetime.now(UTC))) > 0:
                erased += n
            print(json.dumps({"erased": erased, "before": before.isoformat()}))
            return 0
        return _log_export(args, settings, log)
    finally:
        database.dispose()


def _log_verify(args: argparse.Namespace, settings: Settings, log: Any) -> int:
    from datetime import timedelta

    from gateway.bootstrap import policy_for
    from gateway.evidence.tsa import load_certificates
    from gateway.evidence.verify import LogVerifier
    from signing.trust import TrustStore
    from signing.verifier import EnvelopeVerifier

    if not settings.log_tsa_trust_anchors or not settings.trust_anchors:
        raise ConfigError("log verify needs log_tsa_trust_anchors (the TSA's CA) and "
                          "trust_anchors (for the seals' signatures)")
    trust = TrustStore.from_paths(list(settings.trust_anchors), list(settings.crls),
                                  require_crl=settings.require_crl)
    verifier = LogVerifier(
        log, load_certificates(list(settings.log_tsa_trust_anchors)),
        EnvelopeVerifier(trust, policy_for(settings)),
        settle=timedelta(seconds=settings.log_seal_settle_seconds),
    )
    anchor = Path(args.anchor) if args.anchor else settings.log_anchor_file
    report = verifier.verify(
        anchor=anchor if anchor is not None and (args.anchor or anchor.exists()) else None,
        max_seal_age=timedelta(seconds=args.max_seal_age) if args.max_seal_age else None,
    )
    print(json.dumps(report.as_dict(), indent=1))
    return 0 if report.ok else 1


def _log_export(args: argparse.Namespace, settings: Settings, log: Any) -> int:
    from gateway.evidence.export import EvidenceExporter

    exporter = EvidenceExporter(
        log, trust_anchors=list(settings.trust_anchors), crls=list(settings.crls),
        tsa_trust_anchors=list(settings.log_tsa_trust_anchors),
    )
    if args.action == "export":
        data = exporter.for_message(args.subject)
    else:
        data = exporter.for_application(args.subject)
    out = Path(args.out or f"evidence-{args.subject}.zip")
    out.write_bytes(data)
    print(f"evidence written to {out} ({len(data)} bytes): unzip it and follow README.txt")
    return 0


def cmd_finish_submitted(args: argparse.Namespace) -> int:
    from gateway.bootstrap import build_gateway

    gateway = build_gateway(_settings(args))
    print(f"finished {gateway.services.registration.finish_submitted(limit=args.limit)}")
    return 0


def cmd_messages(args: argparse.Namespace) -> int:
    from gateway.messages import tools

    if args.action == "extract":
        print(tools.extract())
    elif args.action == "update":
        for path in tools.update():
            print(path)
    else:  # faults: the catalogue document (docs/faults.md)
        sys.stdout.write(tools.faults_markdown())
    return 0


def _stop_on_signal() -> threading.Event:
    """Installed before anything starts listening, so an early Ctrl-C still stops cleanly."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dsmf-gateway", description=__doc__)
    p.add_argument("--config", help="TOML configuration file (also DSMF_CONFIG)")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="the embedded default: SQLite, simulators, demo PKI")
    # No defaults here: unset options leave the configuration's (Settings) values.
    s.add_argument("--host", help="listen address (default 127.0.0.1)")
    s.add_argument("--port", type=int, help="listen port (default 8080)")
    s.add_argument("--population-port", type=int,
                   help="port of the population-registry simulator (default: any free port)")
    s.add_argument("--mobile-port", type=int,
                   help="port of the mobile-signature simulator (default: any free port)")
    s.add_argument("--data-dir", default="var")
    s.add_argument("--any-fin", action="store_true", help=ANY_FIN_HELP)
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser("simulators", help="the upstream simulators alone")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--population-port", type=int, default=8081)
    s.add_argument("--mobile-port", type=int, default=8082)
    s.add_argument("--ocsp", action="store_true", help="also the demo CA's OCSP responder")
    s.add_argument("--ocsp-port", type=int, default=8083)
    s.add_argument("--tsa-port", type=int, default=8084)
    s.add_argument("--pki-dir", default="var/pki")
    s.add_argument("--any-fin", action="store_true", help=ANY_FIN_HELP)
    s.set_defaults(func=cmd_simulators)

    s = sub.add_parser("migrate", help="create or upgrade the database schema")
    s.add_argument("--database-url")
    s.set_defaults(func=cmd_migrate)

    s = sub.add_parser("pki", help="demo PKI")
    pki_sub = s.add_subparsers(dest="pki_command", required=True)
    s2 = pki_sub.add_parser("init", help="build (or reuse) the demo PKI in DIR")
    s2.add_argument("directory")
    s2.set_defaults(func=cmd_pki_init)

    s = sub.add_parser("load-insurers", help="load local offices and insurers (JSON or CSV)")
    s.add_argument("file")
    s.add_argument("--database-url")
    s.set_defaults(func=cmd_load_insurers)

    s = sub.add_parser("log", help="the sealed message log (docs/message-log.md)")
    s.add_argument("action", choices=["verify", "seal", "export", "export-application", "erase"],
                   help="verify: entries, seals, time-stamps; seal: seal what is unsealed now; "
                        "export MESSAGE_ID / export-application APPLICATION_ID: evidence zip; "
                        "erase: retention (payloads of old sealed entries)")
    s.add_argument("subject", nargs="?", metavar="ID", help="the X-Road message id or the "
                                                           "application id to export")
    s.add_argument("--database-url")
    s.add_argument("--out", help="export: the zip file to write (default evidence-ID.zip)")
    s.add_argument("--anchor", help="verify: the anchor file naming the newest seal "
                                    "(default: log_anchor_file when it exists)")
    s.add_argument("--max-seal-age", type=float, help="verify: fail when the newest seal is "
                                                      "older than this many seconds")
    s.add_argument("--force", action="store_true", help="seal: make a seal even if idle")
    s.add_argument("--before", help="erase: entries logged before this ISO time (default: "
                                    "log_retention_days ago)")
    s.set_defaults(func=cmd_log)

    s = sub.add_parser("finish-submitted", help="finish applications accepted while upstream "
                                                 "was down")
    s.add_argument("--limit", type=int, default=100)
    s.set_defaults(func=cmd_finish_submitted)

    s = sub.add_parser("messages", help="message catalogues: extract the template, update the "
                                         ".po files, print the fault catalogue (docs/faults.md)")
    s.add_argument("action", choices=["extract", "update", "faults"])
    s.set_defaults(func=cmd_messages)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    configure_logging(os.environ.get("DSMF_LOG_FORMAT", "text"),
                      "DEBUG" if args.verbose else os.environ.get("DSMF_LOG_LEVEL", "INFO"))
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if args.command == "log" and args.action.startswith("export") and not args.subject:
        print(f"log {args.action} needs an id", file=sys.stderr)
        return 2
    try:
        result: int = args.func(args)
        return result
    except (ConfigError, GatewayError, SigningError) as exc:
        print(f"dsmf-gateway: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. the port is taken, the data directory is not writable
        print(f"dsmf-gateway: {exc.strerror or exc}"
              f"{f' ({exc.filename})' if exc.filename else ''}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
