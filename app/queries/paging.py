"""Opaque keyset cursors for ``Bundle.link`` paging (never OFFSET), and ``_count``.

A cursor is URL-safe base64 of a small JSON object. Anything else a client sends as ``_page``
(forged, truncated, oversized, NUL bytes, numbers no database column holds) is refused with a 400
naming the parameter before it reaches SQL."""

from __future__ import annotations

import base64
import re

import orjson

from app.errors import FhirError, invalid

CURSOR_PARAM = "_page"
MAX_CURSOR_CHARS = 16_384  # sort values in a cursor are strings of the resources, so not tiny
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
_INT64 = (-(2**63), 2**63 - 1)
_MAX_DEPTH = 3


def encode_cursor(state: dict) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(state)).decode().rstrip("=")


def cursor_error(detail: str = "") -> FhirError:
    """The 400 for a cursor this server did not issue (or not for this search)."""
    why = f" ({detail})" if detail else ""
    return invalid(
        f"The paging cursor {CURSOR_PARAM} is not one this server issued for this search{why}; "
        "follow the Bundle's next/previous links as given, or re-run the search without it"
    )


def _plain(value: object, depth: int = 0) -> bool:
    """JSON this server could have written: no NUL in strings, integers a bigint holds, shallow."""
    if isinstance(value, str):
        return "\x00" not in value
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return True
    if isinstance(value, int):
        return _INT64[0] <= value <= _INT64[1]
    if depth >= _MAX_DEPTH:
        return False
    if isinstance(value, list):
        return all(_plain(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(_plain(v, depth + 1) for v in value.values())
    return False


def decode_cursor(text: str) -> dict:
    if len(text) > MAX_CURSOR_CHARS:
        raise cursor_error(f"{len(text)} characters, more than any cursor it issues")
    if not text or not _BASE64URL.fullmatch(text) or len(text) % 4 == 1:
        raise cursor_error(f"'{text[:60]}' is not URL-safe base64")
    try:
        state = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        raise cursor_error(f"'{text[:60]}' does not decode to a cursor") from None
    if not isinstance(state, dict) or not _plain(state):
        raise cursor_error(f"'{text[:60]}' does not decode to a cursor")
    return state


def parse_count(value: str | None, default: int, maximum: int) -> int:
    if value is None or value == "":
        return default
    if not value.isascii() or not value.isdigit():
        raise invalid(f"_count='{value[:40]}' is not a non-negative whole number")
    if len(value) > 12:  # beyond any maximum: no need to convert thousands of digits
        return maximum
    return min(int(value), maximum)
