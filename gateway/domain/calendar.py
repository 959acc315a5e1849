"""The Fund's calendar: dates (SSN date, application date, authority periods) are Baku dates.

Azerbaijan keeps UTC+4 all year (no daylight saving since 2016), so a fixed offset is exact and
needs no time-zone database. Instants are stored in UTC; a *date* is always taken in this zone,
so "today" for an authority period and the date printed on a notice agree with the insurer's
calendar, also between 20:00 and 24:00 UTC.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

BUSINESS_TZ = timezone(timedelta(hours=4), "AZT")


def now() -> datetime:
    """The current instant, expressed in Baku time (an aware datetime)."""
    return datetime.now(BUSINESS_TZ)


def baku_time(moment: datetime) -> datetime:
    """The instant as Baku wall-clock time, offset +04:00 (naive instants are taken as UTC).

    Every dateTime in an answer, in the notice and on the PDF goes through here, so a client
    never sees one operation answer in +00:00 and another in +04:00.
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)  # noqa: UP017 - explicit for readers
    return moment.astimezone(BUSINESS_TZ)


def business_date(moment: datetime) -> date:
    """The Baku calendar date of an instant (naive instants are taken as UTC)."""
    return baku_time(moment).date()
