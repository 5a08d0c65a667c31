"""``Last-Modified`` dates (RFC 7231), remembered per instant: the same text as formatting anew."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from app.fhirtime import format_http_date, format_instant


def test_http_date_is_the_utc_second_of_any_aware_instant() -> None:
    instant = datetime(2026, 3, 1, 23, 59, 59, 999_000, tzinfo=UTC)
    assert format_http_date(instant) == "Sun, 01 Mar 2026 23:59:59 GMT"
    eastern = instant.astimezone(timezone(timedelta(hours=-5)))
    assert format_http_date(eastern) == "Sun, 01 Mar 2026 23:59:59 GMT"  # remembered, still exact
    later = instant + timedelta(milliseconds=1)
    assert format_http_date(later) == "Mon, 02 Mar 2026 00:00:00 GMT"
    assert format_http_date(datetime(1969, 7, 20, 20, 17, 40, tzinfo=UTC)) == "Sun, 20 Jul 1969 20:17:40 GMT"


def test_instant_text_is_strftimes_in_utc_with_milliseconds() -> None:
    """``format_instant`` puts the fields of a four-digit year together itself: the text of
    ``strftime`` as it was, for UTC and other offsets, before and after the year 1000."""

    def reference(value: datetime) -> str:
        value = value.astimezone(UTC)
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"

    start = datetime(900, 1, 1, tzinfo=UTC)
    step = timedelta(days=3652, seconds=3607, microseconds=123457)
    for i in range(0, 900):
        value = start + step * i
        for each in (value, value.replace(microsecond=0), value.astimezone(timezone(timedelta(hours=-5)))):
            assert format_instant(each) == reference(each)
    assert format_instant(datetime(2026, 3, 1, 23, 59, 59, 999_000, tzinfo=UTC)) == "2026-03-01T23:59:59.999Z"


def test_http_date_is_strftimes_of_the_whole_second() -> None:
    """``format_http_date`` puts a UTC datetime's fields together itself: the text ``strftime``
    gives of its whole second, for UTC and other offsets, before and after the year 1000."""

    def reference(value: datetime) -> str:
        whole = value.astimezone(UTC).replace(microsecond=0)
        return whole.strftime("%a, %d %b %Y %H:%M:%S GMT")

    start = datetime(900, 1, 1, tzinfo=UTC)
    step = timedelta(days=3652, seconds=3607, microseconds=123457)
    for i in range(0, 900):
        value = start + step * i
        for each in (value, value.replace(microsecond=0), value.astimezone(timezone(timedelta(hours=3)))):
            assert format_http_date(each) == reference(each)
