"""The notice names the signer's credential for what it is: an Asan İmza phone is not a
certificate; times are Baku wall-clock times."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.services.notifications import _datetime, credential_type
from gateway.services.pdf import _credential_row, _when


def test_an_asan_phone_is_labelled_as_a_phone() -> None:
    assert credential_type("+994501234567") == "ASAN_IMZA"
    assert _credential_row("+994501234567") == ("Asan İmza telefonu", "+994501234567")


def test_a_card_is_labelled_by_its_number() -> None:
    serial = "6FCD9E18BEA0A171F6D2D3EB457BE3674B1FD0AF"
    assert credential_type(serial) == "E_SIGNATURE_CARD"
    assert _credential_row(serial) == ("Elektron imza kartının nömrəsi", serial)


def test_notice_times_are_baku_times_across_the_utc_evening() -> None:
    late = datetime(2026, 12, 6, 20, 30, tzinfo=UTC)
    assert _when(late) == "07.12.2026 00:30:00"
    assert _datetime(late) == "2026-12-07T00:30:00+04:00"
    assert _datetime(late.replace(tzinfo=None)) == "2026-12-07T00:30:00+04:00"
