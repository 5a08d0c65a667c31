"""A text column of many rows sent as ONE string, split by PostgreSQL (``string_to_array``).

asyncpg encodes an array parameter element by element, and checks each element against the
``Iterable`` and ``Sized`` ABCs first (to find nested arrays): for the search rows of a transaction
Bundle (some 15 rows of 3 to 7 text columns per resource) that was the largest single cost of the
server's Python CPU on Synthea ingest (about 0.045 ms per resource). Joining a column's values with
a separator is one C call, and PostgreSQL's ``string_to_array`` splits it for about what
``array_recv`` costs (measured equal). A value holding the separator or the NULL marker (control
characters that FHIR JSON forbids, so stored resources do not hold them) makes :func:`joined`
refuse the column, and the caller sends arrays as before: the rows written are the same either
way."""

from __future__ import annotations

from collections.abc import Sequence

SEPARATOR = "\x1f"  # unit separator
NULL_MARK = "\x1e"  # record separator: a field holding exactly this is NULL


def joined(column: Sequence[str | None]) -> str | None:
    """The values as one string for :func:`split_sql`, or None when that would not give them back
    (a value holding a control character used here, a value that is not text, or a single empty
    string, which ``string_to_array`` reads as no element)."""
    try:
        if None in column:
            text = SEPARATOR.join([NULL_MARK if v is None else v for v in column])
        else:
            text = SEPARATOR.join(column)  # the common case: no list to build
    except TypeError:
        return None
    if not text or text.count(SEPARATOR) != len(column) - 1:
        return None
    if NULL_MARK in text and text.count(NULL_MARK) != sum(1 for v in column if v is None):
        return None
    return text


def split_sql(parameter: str) -> str:
    """The SQL array of the values :func:`joined` put in the text ``parameter`` (e.g. ``$3``)."""
    return f"string_to_array({parameter}::text, E'\\x1f', E'\\x1e')"
