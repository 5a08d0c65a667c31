"""A text column of many rows sent as ONE string, split by PostgreSQL (``string_to_array``).

asyncpg encodes an array parameter element by element, and checks each element against the
``Iterable`` and ``Sized`` ABCs first (to find nested arrays): for the search rows of a transaction
Bundle (some 15 rows of 3 to 7 text columns per resource) that was the largest single cost of the
server's Python CPU on Synthea ingest (about 0.045 ms per resource). Joining a column's values with
a separator is one C call, and PostgreSQL's ``string_to_array`` splits it for about what
``array_recv`` costs (measured equal). A value holding the separator or the NULL marker (control
characters that FHIR JSON forbids, so stored resources do not hold them) makes :func:`joined`
refuse the column, and the caller sends arrays as before: the rows written are the same either
way.

The one statement of a create or update (:mod:`app.projections.one_statement`) sends its ``bigint``
and ``timestamptz`` columns so too (:func:`joined_as`), cast back by PostgreSQL: a token row's
system hash and a date row's bounds were the rest of asyncpg's per-element checks (about 6% of a
create's Python instructions for a Patient's 11 such values). A ``bigint`` travels as its decimal
text, a ``timestamptz`` as its ISO 8601 text with its UTC offset (read the same whatever the
session's ``TimeZone`` and ``DateStyle``), or as ``infinity`` where asyncpg sends that: the values
PostgreSQL stores are those the arrays gave."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from app.projections.copy_text import instant_text

SEPARATOR = "\x1f"  # unit separator
NULL_MARK = "\x1e"  # record separator: a field holding exactly this is NULL


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


JOINED_TYPES = frozenset({"text", "bigint", "timestamptz"})
"""The column types :func:`joined_as` sends as one string."""
_BIGINT_MIN, _BIGINT_END = -(2**63), 2**63


def joined_as(column: Sequence[object], sql_type: str, texts: dict[int, str] | None = None) -> str | None:
    """:func:`joined` for a column of ``sql_type`` (one of :data:`JOINED_TYPES`): integers as their
    decimal text, UTC datetimes as ISO 8601 text; None when a value is of another kind (a bool, an
    integer out of the ``bigint`` range, a datetime of another or no time zone): send the array.
    ``texts``: the datetimes already written, by identity (a date row's bounds are its sort row's)."""
    if sql_type == "text":
        return joined(column)  # type: ignore[arg-type]
    parts: list[str] = []
    if sql_type == "bigint":
        for v in column:
            if v is None:
                parts.append(NULL_MARK)
            elif type(v) is int and _BIGINT_MIN <= v < _BIGINT_END:
                parts.append(str(v))
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
