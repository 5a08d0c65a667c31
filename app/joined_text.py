"""A column of many rows sent as ONE string, split (``string_to_array``) and cast by PostgreSQL.

asyncpg encodes an array parameter element by element, and checks each element against the
``Iterable`` and ``Sized`` ABCs first (to find nested arrays): for the search rows of a transaction
Bundle (some 15 rows of 3 to 7 text columns per resource) that was the largest single cost of the
server's Python CPU on Synthea ingest (about 0.045 ms per resource). Joining a column's values with
a separator is one C call, and PostgreSQL's ``string_to_array`` splits it for about what
``array_recv`` costs (measured equal). A value holding the separator or the NULL marker (control
characters that FHIR JSON forbids, so stored resources do not hold them) makes :func:`joined`
refuse the column, and the caller sends arrays as before: the rows written are the same either
way.

Columns of other types travel so too (:func:`joined_as`, :func:`sent_columns`), cast back by
PostgreSQL: integers, decimals and UUIDs as their text, booleans as ``t``/``f``, a ``timestamptz`` as
its ISO 8601 text with its UTC offset (read the same whatever the session's ``TimeZone`` and
``DateStyle``), or as ``infinity`` where asyncpg sends that: the values PostgreSQL stores are those
the arrays gave. First for the one statement of a create or update
(:mod:`app.projections.one_statement`: a Patient's token hashes and date bounds were about 6% of a
create's Python instructions), then for every statement of many rows: the event log's append, the
current-state upsert and the search rows of a transaction. Over Synthea transaction Bundles, those
statements' remaining arrays (event context, versions, flags, times, hashes, bounds) were 16% of
the server's Python instructions in asyncpg's encoding (``bench/bundle_cpu.py --callgrind``: 1.11
million instructions per resource ingested before, 0.97 million after)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal

from app.fhirtime import TWO_DIGITS

SEPARATOR = "\x1f"  # unit separator
NULL_MARK = "\x1e"  # record separator: a field holding exactly this is NULL
_LOWEST = datetime.min.replace(tzinfo=UTC)
_HIGHEST = datetime.max.replace(tzinfo=UTC)


def instant_text(value: datetime) -> str:
    """An aware datetime as the text of the timestamptz that asyncpg stores for it: asyncpg sends the
    first and the last instant Python has (the open ends of date ranges, ``DATE_MIN`` and
    ``DATE_MAX``) as ``-infinity`` and ``infinity``, so a replay's COPY and a write's joined
    columns (:func:`joined_as`) store what a write's arrays store. The text is
    ``value.isoformat()``'s."""
    year = value.year
    if value.tzinfo is UTC and 999 < year < 9999:
        return utc_isoformat(value, year)
    if 1 < year < 9999 or _LOWEST < value < _HIGHEST:  # (comparing aware datetimes is slow)
        return value.isoformat()
    return "-infinity" if value == _LOWEST else "infinity"


def utc_isoformat(value: datetime, year: int) -> str:
    """``value.isoformat()`` of a UTC datetime of a four-digit ``year``, put together from its
    fields: ``isoformat`` formats through ``sprintf`` and its offset through the time zone's
    ``utcoffset``, some 11,000 instructions against 6,000 here (two per date search row)."""
    d = TWO_DIGITS
    text = f"{year}-{d[value.month]}-{d[value.day]}T{d[value.hour]}:{d[value.minute]}:{d[value.second]}"
    micro = value.microsecond
    return f"{text}.{micro:06d}+00:00" if micro else text + "+00:00"


def joined(column: Sequence[str | None]) -> str | None:
    """The values as one string for :func:`split_sql`, or None when that would not give them back
    (a value holding a control character used here, a value that is not text, or a single empty
    string, which ``string_to_array`` reads as no element)."""
    if not column or column[0] is None:
        return _joined_nulls(column)
    try:
        text = SEPARATOR.join(column)  # the common case: text only (no scan for NULLs first)
    except TypeError:  # a NULL, or a value that is not text
        return _joined_nulls(column)
    if not text or text.count(SEPARATOR) != len(column) - 1 or NULL_MARK in text:
        return None
    return text


def _joined_nulls(column: Sequence[str | None]) -> str | None:
    """:func:`joined` of a column holding NULLs (None when it holds none: a value is not text)."""
    nulls = column.count(None)
    if not nulls:
        return None
    if nulls == len(column):  # only NULLs: a token's of-type column, most often
        return _nulls(nulls)
    try:
        text = SEPARATOR.join([NULL_MARK if v is None else v for v in column])
    except TypeError:
        return None
    if text.count(SEPARATOR) != len(column) - 1 or text.count(NULL_MARK) != nulls:
        return None
    return text


_NULLS: list[str] = []


def _nulls(n: int) -> str:
    """:func:`joined` of ``n`` NULLs (kept for the small ``n`` of a resource's rows)."""
    while len(_NULLS) <= min(n, 64):
        _NULLS.append(SEPARATOR.join([NULL_MARK] * len(_NULLS)))
    return _NULLS[n] if n <= 64 else SEPARATOR.join([NULL_MARK] * n)


def split_sql(parameter: str, sql_type: str = "text") -> str:
    """The SQL array of the values :func:`joined` (or :func:`joined_as` ``sql_type``) put in the
    text ``parameter`` (e.g. ``$3``)."""
    split = f"string_to_array({parameter}::text, E'\\x1f', E'\\x1e')"
    return split if sql_type == "text" else f"{split}::{sql_type}[]"


JOINED_TYPES = frozenset({"text", "uuid", "bigint", "int", "numeric", "boolean", "timestamptz"})
"""The column types :func:`joined_as` sends as one string."""
_RANGES = {"bigint": (-(2**63), 2**63), "int": (-(2**31), 2**31)}
_BOOLEANS = {True: "t", False: "f"}


def joined_as(column: Sequence[object], sql_type: str, texts: dict[int, str] | None = None) -> str | None:
    """:func:`joined` for a column of ``sql_type`` (one of :data:`JOINED_TYPES`): UUIDs as the text
    they are given in, integers and finite decimals as their decimal text (``Decimal``'s own, an
    exponent included: PostgreSQL reads it to the same value and scale), booleans as ``t``/``f``,
    UTC datetimes as ISO 8601 text; None when a value is of another kind (a bool or a float for a
    number, an integer out of the type's range, a decimal NaN or infinity, a datetime of another or
    no time zone): send the array. ``texts``: the datetimes already written, by identity (a date
    row's bounds are its sort row's)."""
    if sql_type == "text" or sql_type == "uuid":
        return joined(column)  # type: ignore[arg-type]
    parts: list[str] = []
    if sql_type in _RANGES:
        low, end = _RANGES[sql_type]
        for v in column:
            if v is None:
                parts.append(NULL_MARK)
            elif type(v) is int and low <= v < end:
                parts.append(str(v))
            else:
                return None
    elif sql_type == "numeric":
        for v in column:
            if v is None:
                parts.append(NULL_MARK)
            elif (type(v) is Decimal and v.is_finite()) or type(v) is int:
                parts.append(str(v))
            else:
                return None
    elif sql_type == "boolean":
        for v in column:
            if v is None:
                parts.append(NULL_MARK)
            elif type(v) is bool:
                parts.append(_BOOLEANS[v])
            else:
                return None
    elif sql_type == "timestamptz":
        texts = {} if texts is None else texts
        for v in column:
            if v is None:
                parts.append(NULL_MARK)
            elif type(v) is datetime and v.tzinfo is UTC:
                text = texts.get(id(v))
                if text is None:
                    text = texts[id(v)] = instant_text(v)
                parts.append(text)
            else:
                return None
    else:
        return None
    return SEPARATOR.join(parts)


def sent_columns(types: Sequence[str], columns: Iterable[Sequence[object]]) -> list | None:
    """One statement's array arguments, a column of each of ``types`` (in order): those of
    :data:`JOINED_TYPES` as one string each (:func:`joined_as`), the others as lists; None when a
    column cannot travel joined (a text value holding a separator, an integer out of range): the
    caller then sends every column as a list (:func:`array_sql` with ``joined`` false)."""
    out: list = []
    instants: dict[int, str] = {}
    for t, column in zip(types, columns, strict=True):
        if t not in JOINED_TYPES:
            out.append(list(column))
        elif (text := joined_as(column, t, instants)) is not None:
            out.append(text)
        else:
            return None
    return out


def array_sql(n: int, sql_type: str, joined: bool) -> str:
    """The SQL of the ``n``-th parameter as an array of ``sql_type``: split from the string
    :func:`sent_columns` made of it (``joined``), or the array sent."""
    return split_sql(f"${n}", sql_type) if joined and sql_type in JOINED_TYPES else f"${n}::{sql_type}[]"
