"""SearchApplications' total through the gateway: exact, or "more than search_count_limit"."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

from persistence.bulk import bulk_insert_applications
from tests.e2e.conftest import DEMO_VOEN, Stack, sibling_stack
from tests.e2e.test_registration_flow import service
from tests.persistence.conftest import T0, application


def test_total_says_more_than_the_count_limit_and_paging_still_works(
    stack: Stack, tmp_path: Path
) -> None:
    bulk_insert_applications(stack.gateway.database, [
        application(f"F{n:06d}", voen=DEMO_VOEN, created_at=T0 + timedelta(hours=n))
        for n in range(5)
    ])
    exact = service(stack)
    assert [exact.SearchApplications(voen=DEMO_VOEN, paging={"page": p, "pageSize": 2}).total
            for p in (1, 2, 3)] == [5, 5, 5]
    with sibling_stack(stack, tmp_path / "capped", search_count_limit=2) as capped:
        svc = service(capped)
        pages = [svc.SearchApplications(voen=DEMO_VOEN, paging={"page": p, "pageSize": 1})
                 for p in range(1, 6)]
        # Counted up to max(limit, the page's end) + 1: 3, 3, 4, 5 say "more"; page 5 is exact.
        assert [int(p.total) for p in pages] == [3, 3, 4, 5, 5]
        assert [len(p.application) for p in pages] == [1, 1, 1, 1, 1]
        fins = [p.application[0].fin for p in pages]
        assert fins == [f"F{n:06d}" for n in (4, 3, 2, 1, 0)]
        # A next page exists exactly when total > page × pageSize.
        assert [int(p.total) > n for n, p in enumerate(pages, start=1)] == [True] * 4 + [False]


def test_serve_refreshes_the_planner_statistics_periodically(stack: Stack,
                                                             tmp_path: Path) -> None:
    from tests.persistence.test_bulk import _analyzed

    with sibling_stack(stack, tmp_path / "optimizing", optimize_every_seconds=0.2) as sibling:
        database = sibling.gateway.database
        bulk_insert_applications(database, [
            application(f"G{n:06d}", voen=DEMO_VOEN) for n in range(20)])
        assert not _analyzed(database)
        sibling.gateway.start_worker()
        deadline = time.monotonic() + 20
        while not _analyzed(database) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _analyzed(database)
