"""The desk tool's journal on its own: what a rerun with an edited file sends."""

from __future__ import annotations

from pathlib import Path

from gateway.client.journal import DONE, PENDING, SENT, Journal, Outcome
from gateway.client.service import PreparedRequest


def item(fin: str, email: str = "") -> dict[str, object]:
    found: dict[str, object] = {"clientRef": fin, "documentType": "ID_CARD", "fin": fin,
                                "actualAddressDiffers": False}
    if email:
        found["contacts"] = {"email": email}
    return found


def test_a_rerun_with_an_edited_file(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    journal.add_rows([(f, f, n, item(f)) for n, f in enumerate(["AAAAAA1", "AAAAAA2", "AAAAAA3",
                                                                  "AAAAAA4"], start=2)])
    request = PreparedRequest("SubmitRegistrationBatch", "m-1", b"<signed/>", {})
    chunk = journal.open_chunk(request, ["AAAAAA1", "AAAAAA2"])
    journal.close_chunk(chunk, {"AAAAAA2": Outcome("FAILED", fault_code="Client.Validation.Phone")},
                        back_to_pending=[])
    journal.open_chunk(PreparedRequest("SubmitRegistrationBatch", "m-2", b"<x/>", {}),
                       ["AAAAAA3"])
    # The HR accountant fixes AAAAAA2, changes AAAAAA3 (already sent) and AAAAAA4 (not yet),
    # and drops AAAAAA1 and AAAAAA3 from the file.
    journal.add_rows([("AAAAAA2", "AAAAAA2", 3, item("AAAAAA2", "a@b.az")),
                      ("AAAAAA4", "AAAAAA4", 5, item("AAAAAA4", "d@b.az"))], retry_failed=True)
    rows = {r.fin: r for r in journal.rows()}
    # What was in a request stays as it was signed; what was not takes the file's new data.
    assert rows["AAAAAA3"].state == SENT and rows["AAAAAA3"].item == item("AAAAAA3")
    assert rows["AAAAAA4"].state == PENDING and rows["AAAAAA4"].item == item("AAAAAA4", "d@b.az")
    # A FAILED row is sent again with its corrected data only because retry_failed was asked.
    assert rows["AAAAAA2"].state == PENDING
    assert rows["AAAAAA2"].item == item("AAAAAA2", "a@b.az")
    # AAAAAA1's answer said nothing about it: it went back to PENDING, and is out of the file.
    assert "AAAAAA1" not in rows
    assert [c.request.message_id for c in journal.open_chunks()] == ["m-2"]


def test_a_pending_row_taken_out_of_the_file_is_not_sent(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    journal.add_rows([("AAAAAA1", "r1", 2, item("AAAAAA1")), ("AAAAAA2", "r2", 3,
                                                              item("AAAAAA2"))])
    journal.add_rows([("AAAAAA2", "r2", 2, item("AAAAAA2"))])
    assert [(r.fin, r.state) for r in journal.rows()] == [("AAAAAA2", PENDING)]
    assert DONE not in journal.counts()
