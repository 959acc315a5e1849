"""``dsmf-client``: the employer's desk tool (see README, "For employers").

    dsmf-client register employees.xlsx      # check, then register every row exactly once
    dsmf-client check employees.xlsx         # only the offline check
    dsmf-client wait employees.xlsx          # follow SUBMITTED rows until they are final
    dsmf-client find 5GH3J7K
    dsmf-client registry --from 2026-01-01 --to 2026-12-31 --status REGISTERED > registry.csv
    dsmf-client notice APPLICATION_ID        # the signed XML and the PDF, signature verified

Connection, key and trust come from options or the environment (``DSMF_WSDL``, ``DSMF_VOEN``,
``DSMF_TRUST_ANCHORS`` and ``DSMF_CRLS`` as path lists, ``DSMF_PKCS11_MODULE``,
``DSMF_TOKEN_LABEL``, ``DSMF_KEY_LABEL``, ``DSMF_PKCS11_PIN``, ``DSMF_KEY_FILE``,
``DSMF_CERT_FILE``). Exit codes: 0 done, 1 some rows failed or an error, 2 unreadable input,
3 bad rows (nothing sent), 4 card or trust list, 5 an answer that does not verify, 6 network,
7 the gateway refused the request.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from gateway.client.card import CardSettings, load_gateway_identity, load_trust, open_signer
from gateway.client.errors import ClientError, InputError
from gateway.client.journal import DONE, Journal, Outcome, journal_path_for
from gateway.client.messages import text
from gateway.client.register import Registrar, RunOptions
from gateway.client.rows import CheckedRow, check_sheet
from gateway.client.service import Gateway
from gateway.client.sheet import Sheet, output_path_for, read_sheet, write_results

FINAL = ("REGISTERED", "SSN_EXISTS", "FAILED", "REJECTED")


def _paths(value: str | None) -> list[Path]:
    return [Path(p) for p in (value or "").split(os.pathsep) if p]


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(text("usage.bad_date", value=value)) from None


def build_parser() -> argparse.ArgumentParser:
    env = os.environ.get
    common = argparse.ArgumentParser(add_help=False)
    g = common.add_argument_group("gateway")
    g.add_argument("--wsdl", default=env("DSMF_WSDL"), help="the gateway's WSDL URL")
    g.add_argument("--voen", default=env("DSMF_VOEN"), help="the insurer's VÖEN")
    g.add_argument("--subsystem", default="erp", help="X-Road subsystem code of the caller")
    g.add_argument("--timeout", type=float, default=120.0, help="seconds per HTTP request")
    t = common.add_argument_group("trust list (the gateway's answers are verified against it)")
    t.add_argument("--trust-anchor", action="append", type=Path,
                   default=_paths(env("DSMF_TRUST_ANCHORS")))
    t.add_argument("--crl", action="append", type=Path, default=_paths(env("DSMF_CRLS")))
    t.add_argument("--gateway-cert", type=Path, default=env("DSMF_GATEWAY_CERT"),
                   help="the gateway's certificate (PEM, from its ?certs); only it may sign "
                        "answers")
    t.add_argument("--gateway-id", default=env("DSMF_GATEWAY_ID"),
                   help="or the gateway's organizationIdentifier (e.g. TINAZ-1500000011)")
    k = common.add_argument_group("signing key: a card (PKCS#11) or a key file")
    k.add_argument("--pkcs11-module", default=env("DSMF_PKCS11_MODULE"))
    k.add_argument("--token-label", default=env("DSMF_TOKEN_LABEL"))
    k.add_argument("--key-label", default=env("DSMF_KEY_LABEL"))
    k.add_argument("--key-file", type=Path, default=env("DSMF_KEY_FILE"))
    k.add_argument("--cert-file", type=Path, default=env("DSMF_CERT_FILE"))
    k.add_argument("--chain-file", action="append", type=Path, default=[])

    parser = argparse.ArgumentParser(prog="dsmf-client", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    check = sub.add_parser("check", help="check a spreadsheet offline, send nothing")
    check.add_argument("file", type=Path)

    register = sub.add_parser("register", parents=[common], help="register a spreadsheet")
    register.add_argument("file", type=Path)
    register.add_argument("--output", type=Path, help="result file (default: NAME.result.EXT)")
    register.add_argument("--journal", type=Path, help="default: NAME.EXT.dsmf-journal.sqlite")
    register.add_argument("--skip-invalid", action="store_true",
                          help="send the good rows even if some rows are bad")
    register.add_argument("--retry-failed", action="store_true",
                          help="send rows that FAILED in an earlier run again")
    register.add_argument("--one-by-one", action="store_true",
                          help="SubmitRegistration per row instead of batches")
    register.add_argument("--chunk-size", type=int, default=100,
                          help="rows per SubmitRegistrationBatch (lowered to the gateway's limit)")
    register.add_argument("--in-flight", type=int, default=2, help="requests at a time")
    register.add_argument("--attempts", type=int, default=6, help="tries per request")

    wait_ = sub.add_parser("wait", parents=[common], help="poll SUBMITTED rows until final")
    wait_.add_argument("file", type=Path)
    wait_.add_argument("--output", type=Path)
    wait_.add_argument("--journal", type=Path)
    wait_.add_argument("--interval", type=float, default=10.0)
    wait_.add_argument("--max-wait", type=float, default=3600.0, help="seconds")

    find = sub.add_parser("find", parents=[common], help="FindPerson by FIN")
    find.add_argument("fin")
    find.add_argument("--document-type", default="ID_CARD",
                      choices=("ID_CARD", "TEMPORARY_RESIDENCE_PERMIT",
                               "PERMANENT_RESIDENCE_PERMIT"))

    registry = sub.add_parser("registry", parents=[common], help="the registry as CSV")
    registry.add_argument("--from", dest="date_from", type=_date)
    registry.add_argument("--to", dest="date_to", type=_date)
    registry.add_argument("--status", choices=("DRAFT", "SUBMITTED", "REGISTERED", "REJECTED"))
    registry.add_argument("--type", dest="application_type",
                          choices=("INITIAL_REGISTRATION", "CORRECTION"))
    registry.add_argument("--fin")
    registry.add_argument("--output", type=Path, help="default: standard output")

    notice = sub.add_parser("notice", parents=[common], help="download a verified notice")
    notice.add_argument("application_id")
    notice.add_argument("--out-dir", type=Path, default=Path())
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        return int(COMMANDS[args.command](args, out))
    except ClientError as exc:
        out.print(exc.message, markup=False)
        return exc.exit_code
    except KeyboardInterrupt:
        out.print(text("run.stopped", reason="Ctrl+C"), markup=False)
        return 130
    except Exception as exc:  # a defect of ours: one line for the user, details on request
        if os.environ.get("DSMF_CLIENT_DEBUG"):
            raise
        out.print(text("internal", kind=type(exc).__name__, detail=exc), markup=False)
        return 1


# --- wiring ---------------------------------------------------------------------------------


def _gateway(args: argparse.Namespace) -> Gateway:
    if not args.wsdl or not args.voen:
        raise InputError(text("usage.connection"))
    trust = load_trust(args.trust_anchor, args.crl)
    identity = load_gateway_identity(args.gateway_cert, args.gateway_id)
    signer = open_signer(CardSettings(
        pkcs11_module=args.pkcs11_module, token_label=args.token_label,
        key_label=args.key_label, key_file=args.key_file, cert_file=args.cert_file,
        chain_files=tuple(args.chain_file),
    ))
    return Gateway(args.wsdl, signer, voen=args.voen, trust=trust, gateway=identity,
                   subsystem=args.subsystem, timeout=args.timeout)


# --- check / register / wait ----------------------------------------------------------------


def _report(sheet: Sheet, checked: list[CheckedRow], out: Console) -> int:
    bad = [c for c in checked if not c.ok]
    out.print(text("report.title", name=sheet.path.name), markup=False)
    for name in sheet.unknown_columns:
        out.print("  " + text("column.unknown", column=name), markup=False)
    for c in bad:
        for problem in c.problems:
            out.print("  " + text("report.row", row=c.row.line, fin=c.fin or "-",
                                  message=problem), markup=False)
    out.print(text("report.summary", total=len(checked), good=len(checked) - len(bad),
                   bad=len(bad)), markup=False)
    if not bad:
        out.print(text("report.all_valid"), markup=False)
    return len(bad)


def cmd_check(args: argparse.Namespace, out: Console) -> int:
    sheet = read_sheet(args.file)
    return 3 if _report(sheet, check_sheet(sheet), out) else 0


def cmd_register(args: argparse.Namespace, out: Console) -> int:
    sheet = read_sheet(args.file)
    checked = check_sheet(sheet)
    bad = _report(sheet, checked, out)
    if bad and not args.skip_invalid:
        out.print(text("report.nothing_sent"), markup=False)
        return 3
    if bad:
        out.print(text("report.skipping", bad=bad), markup=False)
    output = args.output or output_path_for(args.file)
    journal = Journal(args.journal or journal_path_for(args.file))
    try:
        journal.add_rows([(c.fin, c.client_ref, c.row.line, c.item) for c in checked
                          if c.ok and c.item is not None], retry_failed=args.retry_failed)
        sent = {row.fin: row for row in journal.rows() if row.state != "PENDING"}
        for c in checked:
            earlier = sent.get(c.fin)
            if c.ok and earlier is not None and earlier.item != c.item:
                out.print(text("report.row", row=c.row.line, fin=c.fin,
                               message=text("run.input_changed")), markup=False)
        counts = journal.counts()
        pending = counts.get("PENDING", 0) + counts.get("SENT", 0)
        done = sum(v for k, v in counts.items() if k not in ("PENDING", "SENT"))
        out.print(text("run.journal", path=journal.path), markup=False)
        if pending == 0:
            out.print(text("run.nothing_to_do"), markup=False)
            _write_output(sheet, checked, journal, output)
            return _exit_status(journal)
        if done:
            out.print(text("run.resuming", pending=pending, done=done), markup=False)
        gateway = _gateway(args)  # the card is opened (PIN asked) only now, after the checks
        options = RunOptions(chunk_size=max(1, min(args.chunk_size, 500)),
                             in_flight=max(1, args.in_flight), one_by_one=args.one_by_one,
                             attempts=max(1, args.attempts))
        with _progress(out) as progress:
            task = progress.add_task(text("run.progress"), total=pending)
            registrar = Registrar(gateway, journal, options,
                                  progress=lambda n: progress.advance(task, n))
            try:
                stats = registrar.run()
            except ClientError as exc:
                # The journal keeps what was sent; the next run picks up from here.
                _write_output(sheet, checked, journal, output)
                out.print(text("run.stopped", reason=exc.message), markup=False)
                return exc.exit_code
            except BaseException:
                _write_output(sheet, checked, journal, output)
                raise
            _write_output(sheet, checked, journal, output)
        if stats.batch_limit:
            out.print(text("run.batch_limit", limit=stats.batch_limit), markup=False)
        counts = journal.counts()
        out.print(text("run.done", registered=counts.get("REGISTERED", 0),
                       exists=counts.get("SSN_EXISTS", 0), submitted=counts.get("SUBMITTED", 0),
                       failed=counts.get("FAILED", 0), output=output), markup=False)
        out.print(text("run.rate", rows=stats.sent_rows, seconds=f"{stats.seconds:.1f}",
                       rate=f"{stats.rows_per_second:.1f}"), markup=False)
        return _exit_status(journal)
    finally:
        journal.close()


def _progress(out: Console) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), console=out, disable=not out.is_terminal)


def _exit_status(journal: Journal) -> int:
    counts = journal.counts()
    return 1 if counts.get("FAILED", 0) or counts.get("PENDING", 0) or counts.get("SENT") else 0


def _write_output(sheet: Sheet, checked: list[CheckedRow], journal: Journal,
                  output: Path) -> None:
    by_fin = {row.fin: row for row in journal.rows()}
    lines = []
    for c in checked:
        if not c.ok:
            result = ["", "", "INVALID", "", "; ".join(c.problems)]
        else:
            row = by_fin.get(c.fin)
            if row is None or row.state != DONE or row.outcome is None:
                result = ["", "", "PENDING", "", text("status.PENDING")]
            else:
                result = [row.ssn or "", row.application_id or "", row.outcome,
                          row.fault_code or "", row.message or text(f"status.{row.outcome}")]
        lines.append((c.row.raw, result))
    write_results(output, sheet.header, lines)


def cmd_wait(args: argparse.Namespace, out: Console) -> int:
    sheet = read_sheet(args.file)
    checked = check_sheet(sheet)
    path = args.journal or journal_path_for(args.file)
    if not path.exists():
        raise InputError(text("wait.no_journal", path=path))
    output = args.output or output_path_for(args.file)
    journal = Journal(path)
    try:
        gateway = _gateway(args)
        deadline = time.monotonic() + args.max_wait
        waiting = journal.rows(state=DONE, outcome="SUBMITTED")
        with _progress(out) as progress:
            task = progress.add_task(text("wait.progress"), total=len(waiting))
            while waiting:
                for row in waiting:
                    if not row.application_id:
                        continue
                    answer = gateway.call("GetApplication", voen=gateway.voen,
                                          applicationId=row.application_id)
                    summary = answer.application.summary
                    if summary.status in FINAL:
                        message = text(f"status.{summary.status}")
                        journal.update_outcome(row.fin, Outcome(
                            str(summary.status), summary.ssn, row.application_id, None, message))
                        progress.advance(task, 1)
                waiting = journal.rows(state=DONE, outcome="SUBMITTED")
                if not waiting or time.monotonic() >= deadline:
                    break
                time.sleep(args.interval)
        _write_output(sheet, checked, journal, output)
        if waiting:
            out.print(text("wait.timeout", count=len(waiting)), markup=False)
            return 1
        out.print(text("wait.done", output=output), markup=False)
        return 0
    finally:
        journal.close()


# --- find / registry / notice ---------------------------------------------------------------


def cmd_find(args: argparse.Namespace, out: Console) -> int:
    gateway = _gateway(args)
    answer = gateway.call("FindPerson", voen=gateway.voen, documentType=args.document_type,
                          fin=args.fin.strip().upper())
    if answer.outcome == "SSN_EXISTS" and answer.existingInsured is not None:
        e = answer.existingInsured
        print(text("find.exists", full_name=_full_name(e), ssn=e.ssn))
    else:
        p = answer.person
        print(text("find.found", full_name=_full_name(p), birth_date=p.birthDate))
    return 0


def _full_name(person: Any) -> str:
    return " ".join(part for part in (person.surname, person.name, person.patronymic) if part)


REGISTRY_COLUMNS = ("applicationId", "applicationType", "fin", "surname", "name", "patronymic",
                    "ssn", "ssnDate", "applicationDate", "status", "certificateStatus")


def cmd_registry(args: argparse.Namespace, out: Console) -> int:
    gateway = _gateway(args)
    filters: dict[str, Any] = {
        "applicationDateFrom": args.date_from, "applicationDateTo": args.date_to,
        "status": args.status, "applicationType": args.application_type,
        "fin": args.fin.strip().upper() if args.fin else None,
    }
    filters = {k: v for k, v in filters.items() if v is not None}
    target = args.output.open("w", encoding="utf-8-sig", newline="") if args.output \
        else sys.stdout
    try:
        writer = csv.writer(target)
        writer.writerow(REGISTRY_COLUMNS)
        count, page = 0, 1
        while True:
            answer = gateway.call("SearchApplications", voen=gateway.voen,
                                  paging={"page": page, "pageSize": 200},
                                  sort={"field": "APPLICATION_DATE", "direction": "ASC"},
                                  **filters)
            for app in answer.application or ():
                writer.writerow(["" if getattr(app, c) is None else getattr(app, c)
                                 for c in REGISTRY_COLUMNS])
                count += 1
            if not answer.application or count >= answer.total:
                break
            page += 1
    finally:
        if args.output:
            target.close()
    out.print(text("registry.count", count=count), markup=False)
    return 0


def cmd_notice(args: argparse.Namespace, out: Console) -> int:
    from signing.errors import SigningError
    from signing.parser import parse_xml
    from signing.verifier import EnvelopeVerifier

    gateway = _gateway(args)
    answer = gateway.call("GetNotification", voen=gateway.voen,
                          applicationId=args.application_id)
    xml, pdf = bytes(answer.notificationXml), bytes(answer.pdf)
    try:
        verified = EnvelopeVerifier(gateway.trust).verify_document(parse_xml(xml))
    except SigningError as exc:
        out.print(text("notice.bad_signature", code=exc.code, detail=exc.message), markup=False)
        return 5
    # Any certificate of the trust list makes a valid signature; a notice is the gateway's.
    if verified.certificate != gateway.last_answer_signer():
        out.print(text("notice.bad_signature", code="Client.Signature.Untrusted",
                       detail=verified.certificate.subject.rfc4514_string()), markup=False)
        return 5
    # The name comes from the gateway: keep only its last part, never a path.
    pdf_name = Path(str(answer.fileName)).name or f"{args.application_id}.pdf"
    xml_name = pdf_name.removesuffix(".pdf") + ".xml"
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / xml_name).write_bytes(xml)
    (args.out_dir / pdf_name).write_bytes(pdf)
    out.print(text("notice.saved", xml=args.out_dir / xml_name, pdf=args.out_dir / pdf_name,
                   signer=verified.certificate.subject.rfc4514_string()), markup=False)
    return 0


COMMANDS = {
    "check": cmd_check,
    "register": cmd_register,
    "wait": cmd_wait,
    "find": cmd_find,
    "registry": cmd_registry,
    "notice": cmd_notice,
}


if __name__ == "__main__":
    sys.exit(main())
