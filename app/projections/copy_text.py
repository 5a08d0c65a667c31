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
from datetime import datetime
from decimal import Decimal
from functools import cache

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
        return value.isoformat() if value.tzinfo is not None else value.isoformat() + "+00:00"
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


_MARK = "\x00"  # NULL while a batch is encoded: no stored text holds it (PostgreSQL text cannot)
_AS_TEXT = frozenset({"text"})
_AS_STR = frozenset({"bigint", "integer", "numeric"})
_AS_BOOL = frozenset({"boolean"})

RowEncoder = Callable[[Sequence[tuple], dict[str, str]], str]


@cache
def _row_encoder(types: tuple[str, ...], keyed: bool = True) -> RowEncoder:
    """A function turning rows (values of the SQL ``types``) into lines; ``keyed``: the rows are
    ``(id, *values)`` and the first field is ``keys[id]``. NULL as :data:`_MARK`, no escaping
    (:func:`encode_typed` checks)."""
    fields = ["{keys[r[0]]}"] if keyed else []
    for i, sql_type in enumerate(types, 1 if keyed else 0):
        if sql_type in _AS_TEXT:
            fields.append(f"{{r[{i}] if r[{i}].__class__ is str else mark if r[{i}] is None else field(r[{i}])}}")
        elif sql_type in _AS_STR:
            fields.append(f"{{mark if r[{i}] is None else str(r[{i}])}}")
        elif sql_type in _AS_BOOL:
            fields.append(f"{{mark if r[{i}] is None else 't' if r[{i}] else 'f'}}")
        else:
            fields.append(f"{{mark if r[{i}] is None else field(r[{i}])}}")
    line = "\\t".join(fields) + "\\n"
    source = f'def encode(rows, keys, mark=mark, field=field):\n    return "".join([f"{line}" for r in rows])\n'
    namespace: dict = {"mark": _MARK, "field": field}
    exec(source, namespace)  # generated from the column types above, never from data
    return namespace["encode"]


def encode_typed(rows: Sequence[tuple], types: tuple[str, ...], keys: dict[str, str] | None = None) -> bytes:
    """Rows of values of the SQL ``types`` as COPY text data; with ``keys``, the rows are
    ``(id, *values)`` and each id is replaced by ``keys[id]`` (a decimal key). The lines of a
    generated function (one f-string per row), checked in one pass for a value holding a character
    the format escapes (then encoded value by value): several times faster than :func:`encode`."""
    text = _row_encoder(types, keys is not None)(rows, keys or {})
    if (
        "\\" not in text
        and "\r" not in text
        and text.count("\n") == len(rows)
        and text.count("\t") == len(rows) * (len(types) - (keys is None))
    ):
        return text.replace(_MARK, NULL).encode()
    if keys is None:
        return encode(list(rows))
    return encode([(keys[row[0]], *row[1:]) for row in rows])
