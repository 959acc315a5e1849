"""Issue #10's goals against one run's results: a table of what was measured, the goal, and
whether it is met.

    .venv/bin/python bench/goals.py RESULTS.jsonl

``RESULTS.jsonl`` is what ``bench/run`` (or the benches' ``--json FILE``) wrote: one JSON object
a line, from ``bench_hotpath`` (CPU per request against the floors, in-process), ``bench_http``
(latency and server CPU at 8 clients), ``bench_registry`` (searches at a million applications)
and ``bench_soak`` (memory). Lines of a bench that did not run are left out. Not a test: it
reports, and exits 0 either way.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

RATIO_GOAL = 2.0  # × the full floor, CPU per request
HTTP_P99_GOAL_MS = 20.0  # gunicorn, 2 workers, 8 clients
REGISTRY_P99_GOAL_MS = 50.0  # every filter, the default listing and page 50, at 1 M rows
SOAK_GOAL_MB_PER_1000 = 0.1  # "flat": RSS growth in the soak's second half


def load(paths: Iterable[Path]) -> list[dict[str, Any]]:
    records = []
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                records.append(json.loads(line))
    return records


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def table(records: Sequence[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    """(what, measured, goal, verdict) rows; a section title has empty cells."""
    rows: list[tuple[str, str, str, str]] = []
    by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by[record["bench"]].append(record)

    floors: dict[tuple[str, str], float] = {}
    if by["hotpath"]:
        rows.append(("CPU per request, in-process, × the full floor (same run)", "", "", ""))
        for r in by["hotpath"]:
            floors[(r["database"], r["operation"])] = r["full_floor_cpu_ms"]
            rows.append((
                f"  {r['operation']}, {r['database']}",
                f"{r['ratio_full_floor']:.1f}×  ({r['request_cpu_ms']:.2f} / "
                f"{r['full_floor_cpu_ms']:.2f} ms)",
                f"≤ {RATIO_GOAL:.0f}×", verdict(r["ratio_full_floor"] <= RATIO_GOAL)))
            if r.get("ratio_reused") is not None:
                rows.append((f"  {r['operation']} right after a FindPerson, {r['database']}",
                             f"{r['ratio_reused']:.1f}×", "(no goal)", ""))
    if by["http"]:
        rows.append(("over HTTP, 8 clients: p99 latency; server CPU per request", "", "", ""))
        for r in by["http"]:
            floor = floors.get((r["database"], r["operation"]))
            cpu = r["server_cpu_ms"] + (r.get("database_cpu_ms") or 0.0)
            ratio = f", {cpu / floor:.1f}× floor" if floor else ""
            measured = f"p99 {r['p99_ms']:.0f} ms, {r['rps']:.0f} req/s; CPU {cpu:.2f} ms{ratio}"
            if r.get("mean_latency_bound_ms") is not None:
                # What the machine allows whatever the server does (bench_http: Little's law).
                measured += (f"; machine {r['machine_cpu_ms']:.2f} ms, mean ≥ "
                             f"{r['mean_latency_bound_ms']:.0f} ms")
            what = f"  {r['operation']}, {r['database']}, {r['server']}"
            if r["server"] == "gunicorn":
                what += f" -w {r['workers']}"
                rows.append((what, measured, f"p99 < {HTTP_P99_GOAL_MS:.0f} ms",
                             verdict(r["p99_ms"] < HTTP_P99_GOAL_MS)))
            else:
                rows.append((what, measured, "(no goal)", ""))
    if by["registry"]:
        size = max(r["rows"] for r in by["registry"])
        rows.append((f"registry at {size:,} applications: worst p99 of the "
                     f"{len({r['query'] for r in by['registry']})} lines", "", "", ""))
        worst: dict[tuple[str, str], dict[str, Any]] = {}
        for r in by["registry"]:
            key = (r["database"], r["mode"])
            if key not in worst or r["p99_ms"] > worst[key]["p99_ms"]:
                worst[key] = r
        for (database, mode), r in worst.items():
            cpu = max(x["cpu_p99_ms"] for x in by["registry"]
                      if x["database"] == database and x["mode"] == mode)
            rows.append((f"  {database}, {mode}",
                         f"{r['p99_ms']:.1f} ms ({r['query']}); CPU p99 ≤ {cpu:.1f} ms",
                         f"< {REGISTRY_P99_GOAL_MS:.0f} ms",
                         verdict(r["p99_ms"] < REGISTRY_P99_GOAL_MS)
                         + ("" if size >= 1_000_000 else " (not at 1 M)")))
    for r in by["soak"]:
        rows.append((f"memory over a {r['seconds'] / 60:.0f}-minute soak, {r['requests']:,} "
                     f"requests, {r['failed']} failed", "", "", ""))
        rows.append(("  RSS growth after the warm-up (the first quarter)",
                     f"{r['mb_per_1000_after_warmup']:+.2f} MB per 1000 requests "
                     f"({r['rss_warm_mb']:.0f} → {r['rss_end_mb']:.0f} MB)", "(no goal)", ""))
        rows.append(("  RSS growth in the second half",
                     f"{r['mb_per_1000_second_half']:+.2f} MB per 1000 requests "
                     f"({r['rss_half_mb']:.0f} → {r['rss_end_mb']:.0f} MB)",
                     f"< {SOAK_GOAL_MB_PER_1000} MB/1000",
                     verdict(r["mb_per_1000_second_half"] < SOAK_GOAL_MB_PER_1000
                             and r["failed"] == 0)
                     + ("" if r["seconds"] >= 1800 else " (shorter than 30 min)")))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print(__doc__)
        return 2
    rows = table(load(Path(a) for a in args))
    width = max((len(r[0]) for r in rows if r[1]), default=20)
    print("\nissue #10 goals")
    for what, measured, goal, result in rows:
        if not measured:
            print(f"\n{what}")
        else:
            print(f"{what:{width}}  {measured:58}  {goal:16}  {result}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
