"""Rows as the data of ``COPY … FROM STDIN`` in PostgreSQL's text format
(https://www.postgresql.org/docs/current/sql-copy.html#id-1.9.3.55.9.2): one line per row, fields
separated by a tab, ``\\N`` for NULL, backslash escapes for backslash, tab, newline and carriage
return. A replay's worker processes encode the rows they compute, so the parent only forwards bytes
to the server (no pickling of row tuples between processes, no encoding in the parent).

The values are those the projectors' ``rows`` produce: text, integers, decimals, booleans, aware
datetimes (timestamptz) and bytes (bytea, sent as ``\\x`` and hex digits)."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal

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
