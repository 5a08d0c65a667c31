"""FHIR date, dateTime and instant values as half-open UTC ranges ``[low, high)``.

A FHIR date is a range at its own precision (https://hl7.org/fhir/R4/search.html#date):
``2020`` covers the whole year, ``2020-03`` the month, ``2020-03-04T10:00`` the minute.
A value without a timezone is read as UTC (this server's local time).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache

_PATTERN = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2})(?::(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d+))?)?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


class FhirDateError(ValueError):
    pass


def _add_months(value: datetime, months: int) -> datetime:
    month0 = value.month - 1 + months
    return value.replace(year=value.year + month0 // 12, month=month0 % 12 + 1)


def parse_range(text: str) -> tuple[datetime, datetime]:
    """Parse a FHIR date/dateTime/instant into the UTC range it denotes."""
    m = _PATTERN.match(text)
    if not m:
        raise FhirDateError(f"'{text}' is not a valid FHIR date or dateTime (expected e.g. 2020-03-04T10:00:00Z)")
    g = m.groupdict()
    try:
        tz = UTC
        if g["tz"] and g["tz"] != "Z":
            sign = 1 if g["tz"][0] == "+" else -1
            hours, minutes = int(g["tz"][1:3]), int(g["tz"][4:6])
            from datetime import timezone

            tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
        year = int(g["y"])
        if g["m"] is None:
            low = datetime(year, 1, 1, tzinfo=tz)
            return low.astimezone(UTC), _safe(lambda: low.replace(year=year + 1)).astimezone(UTC)
        month = int(g["m"])
        if g["d"] is None:
            low = datetime(year, month, 1, tzinfo=tz)
            return low.astimezone(UTC), _safe(lambda: _add_months(low, 1)).astimezone(UTC)
        day = int(g["d"])
        if g["H"] is None:
            low = datetime(year, month, day, tzinfo=tz)
            return low.astimezone(UTC), _safe(lambda: low + timedelta(days=1)).astimezone(UTC)
        if g["M"] is None:
            raise FhirDateError(f"'{text}': a time needs at least hours and minutes")
        hour, minute = int(g["H"]), int(g["M"])
        if g["S"] is None:
            low = datetime(year, month, day, hour, minute, tzinfo=tz)
            return low.astimezone(UTC), (low + timedelta(minutes=1)).astimezone(UTC)
        second = int(g["S"])
        frac = g["f"] or ""
        micro = int((frac + "000000")[:6]) if frac else 0
        low = datetime(year, month, day, hour, minute, min(second, 59), micro, tzinfo=tz)
        digits = min(len(frac), 6)
        step = timedelta(microseconds=10 ** (6 - digits)) if digits else timedelta(seconds=1)
        return low.astimezone(UTC), (low + step).astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        if isinstance(exc, FhirDateError):
            raise
        raise FhirDateError(f"'{text}' is not a valid FHIR date or dateTime: {exc}") from None


def _safe(make: object) -> datetime:
    try:
        return make()  # type: ignore[operator]
    except (ValueError, OverflowError):
        return datetime.max.replace(tzinfo=UTC)


@lru_cache(maxsize=256)
def format_instant(value: datetime) -> str:
    """Render a UTC datetime as a FHIR instant with millisecond precision: ``2020-01-02T03:04:05.678Z``.
    Remembered for recent values: all versions a transaction writes share one time, which their
    ``meta.lastUpdated`` and the response's ``lastModified`` each render."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    if 999 < value.year:  # strftime's %Y, four digits (and the fields put together: a third the work)
        d = TWO_DIGITS
        day = f"{value.year}-{d[value.month]}-{d[value.day]}"
        return f"{day}T{d[value.hour]}:{d[value.minute]}:{d[value.second]}.{_THREE_DIGITS[value.microsecond // 1000]}Z"
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


TWO_DIGITS = [f"{i:02d}" for i in range(100)]
"""``00`` to ``99``: the two-digit fields of a date or time, looked up rather than formatted."""
_THREE_DIGITS = [f"{i:03d}" for i in range(1000)]


def now_millis() -> datetime:
    """The current UTC time truncated to milliseconds (the precision of ``meta.lastUpdated``)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def format_http_date(value: datetime) -> str:
    """RFC 7231 date for ``Last-Modified`` (whole seconds: the fraction is dropped). A UTC datetime
    of a four-digit year is put together from its fields (the English names ``strftime`` gives in
    the C locale, which is Python's for dates), about a third of the work of ``timestamp`` and
    the look-up."""
    if value.tzinfo is UTC and 999 < value.year:
        d = TWO_DIGITS
        day = f"{_WEEKDAYS[value.weekday()]}, {d[value.day]} {_MONTHS[value.month]} {value.year}"
        return f"{day} {d[value.hour]}:{d[value.minute]}:{d[value.second]} GMT"
    return _http_date(float(int(value.timestamp() // 1)))


_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@lru_cache(maxsize=4096)
def _http_date(seconds: float) -> str:
    # remembered per instant: the reads of a resource repeat its Last-Modified, and strftime is a
    # visible share of a plain read's CPU
    return datetime.fromtimestamp(seconds, UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")
