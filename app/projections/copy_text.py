"""Rows as the data of ``COPY … FROM STDIN`` in PostgreSQL's text format
(https://www.postgresql.org/docs/current/sql-copy.html#id-1.9.3.55.9.2): one line per row, fields
separated by a tab, ``\\N`` for NULL, backslash escapes for backslash, tab, newline and carriage
return. A replay's worker processes encode the rows they compute, so the parent only forwards bytes
to the server (no pickling of row tuples between processes, no encoding in the parent).

The values are those the projectors' ``rows`` produce: text, integers, decimals, booleans, aware
datetimes (timestamptz) and bytes (bytea, sent as ``\\x`` and hex digits)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from operator import itemgetter

from app.joined_text import instant_text
from app.native import copyrows

_SPECIAL = re.compile(r"[\\\t\n\r]")


NULL = "\\N"
_ESCAPES = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    return _ESCAPES[match.group()]


def field(value: object) -> str:
    """One value as a field of the text format."""
    if value is None:
        return "\\N"
    if value.__class__ is str:
        return _SPECIAL.sub(_escape, value) if _SPECIAL.search(value) else value  # type: ignore[arg-type]
    if value is True or value is False:
        return "t" if value else "f"
    if isinstance(value, int | Decimal | float):
        return str(value)
    if isinstance(value, datetime):
        return instant_text(value) if value.tzinfo is not None else value.isoformat() + "+00:00"
    if isinstance(value, bytes):
        return "\\\\x" + value.hex()
    if isinstance(value, str):  # a str subclass (an enum's value)
        return field(str.__str__(value))
    raise TypeError(f"no COPY text form for {type(value).__name__}")


def _clean(rows: list[tuple]) -> bool:
    """Whether no text value of the rows holds a character the format escapes (the common case:
    one scan of all the text, instead of one per value)."""
    text = "".join([v for row in rows for v in row if v.__class__ is str])
    return "\\" not in text and "\t" not in text and "\n" not in text and "\r" not in text


def encode(rows: list[tuple]) -> bytes:
    """The rows as COPY text data."""
    if not _clean(rows):
        return "".join(["\t".join([field(v) for v in row]) + "\n" for row in rows]).encode()
    return "".join(
        ["\t".join([v if v.__class__ is str else NULL if v is None else field(v) for v in row]) + "\n" for row in rows]
    ).encode()


_ROWS = itemgetter(1)
_MARK = "\x00"  # NULL while a batch is encoded: no stored text holds it (PostgreSQL text cannot)

KeyedRows = Sequence[tuple[str, Sequence[tuple]]]
"""Rows by resource: (the resource's key as decimal text, its rows)."""


def _field_sql(sql_type: str, v: str) -> str:
    """The f-string expression of the value ``v`` (an expression) of ``sql_type`` as a field."""
    if sql_type == "text":
        return f"{{{v} if {v}.__class__ is str else mark if {v} is None else field({v})}}"
    if sql_type in ("bigint", "integer", "int", "numeric"):
        return f"{{mark if {v} is None else str({v})}}"
    if sql_type == "boolean":
        return f"{{mark if {v} is None else 't' if {v} else 'f'}}"
    if sql_type == "timestamptz":
        return f"{{mark if {v} is None else stamped({v}) or stamp({v})}}"
    return f"{{mark if {v} is None else field({v})}}"


_STAMPS: dict[datetime, str] = {}
"""The text of UTC datetimes already encoded by this process (a date row's bounds are its sort
row's too, and resources of one encounter share their times): ``isoformat`` costs about a
microsecond, a lookup a twentieth of that. Cleared when it holds :data:`_STAMPS_KEPT`."""
_STAMPS_KEPT = 50_000


def _stamp(value: object) -> str:
    """A timestamptz field (:func:`field`), remembered in :data:`_STAMPS` when in UTC (a datetime of
    another offset equal to one remembered is then sent as the UTC text: the same instant, which
    is all a timestamptz stores)."""
    if value.__class__ is not datetime or value.tzinfo is not UTC:  # type: ignore[attr-defined]
        return field(value)
    if len(_STAMPS) >= _STAMPS_KEPT:
        _STAMPS.clear()
    text = _STAMPS[value] = instant_text(value)  # type: ignore[arg-type]
    return text


@cache
def _encoder(types: tuple[str, ...], keyed: bool) -> Callable[[Sequence], str]:
    """A function turning rows of values of the SQL ``types`` into lines (``keyed``: rows by
    resource, :data:`KeyedRows`, each line starting with the key): NULL as :data:`_MARK`, nothing
    escaped (:func:`_checked` checks)."""
    line = "\\t".join(([] if not keyed else ["{k}"]) + [_field_sql(t, f"r[{i}]") for i, t in enumerate(types)])
    loop = "for k, rows in data for r in rows" if keyed else "for r in data"
    args = "data, mark=mark, field=field, stamped=stamped, stamp=stamp"
    source = f'def encode({args}):\n    return "".join([f"{line}\\n" {loop}])\n'
    namespace: dict = {"mark": _MARK, "field": field, "stamped": _STAMPS.get, "stamp": _stamp}
    exec(source, namespace)  # generated from the column types above, never from data
    return namespace["encode"]


def _checked(text: str, rows: int, fields: int) -> bytes | None:
    """The lines ``text`` as COPY data, or None when a value holds a character the format escapes
    (one pass over the text, instead of one per value)."""
    if "\\" in text or "\r" in text or text.count("\n") != rows or text.count("\t") != rows * (fields - 1):
        return None
    return text.replace(_MARK, NULL).encode()


_CODES = {"text": "t", "bigint": "i", "integer": "i", "int": "i", "numeric": "i", "boolean": "b", "timestamptz": "s"}


@cache
def _codes(types: tuple[str, ...]) -> bytes:
    """The column codes of the compiled encoder (:mod:`app.native`, ``copyrows.c``) for ``types``."""
    return "".join(_CODES.get(t, "o") for t in types).encode()


def encode_typed(rows: Sequence[tuple], types: tuple[str, ...]) -> bytes:
    """Rows of values of the SQL ``types`` as COPY text data: by the compiled encoder, or
    :func:`python_encode_typed` where it is not built."""
    if copyrows is None:
        return python_encode_typed(rows, types)
    return copyrows.encode_rows(rows, _codes(types), False, field, _STAMPS, _stamp)


def encode_keyed(data: KeyedRows, types: tuple[str, ...]) -> bytes:
    """Rows by resource (:data:`KeyedRows`; values of the SQL ``types``) as COPY text data, each line
    starting with its resource's key (as :func:`encode_typed`)."""
    if copyrows is None:
        return python_encode_keyed(data, types)
    return copyrows.encode_rows(data, _codes(types), True, field, _STAMPS, _stamp)


def python_encode_typed(rows: Sequence[tuple], types: tuple[str, ...]) -> bytes:
    """:func:`encode_typed` in Python: the lines of a generated function (one f-string per row),
    several times faster than :func:`encode` (which it falls back to when a value must be escaped)."""
    data = _checked(_encoder(types, False)(rows), len(rows), len(types))
    return data if data is not None else encode(list(rows))


def python_encode_keyed(data: KeyedRows, types: tuple[str, ...]) -> bytes:
    """:func:`encode_keyed` in Python (as :func:`python_encode_typed`)."""
    count = sum(map(len, map(_ROWS, data)))  # counted in C (a generator step per resource before)
    out = _checked(_encoder(types, True)(data), count, len(types) + 1)
    return out if out is not None else encode([(k, *r) for k, rows in data for r in rows])
