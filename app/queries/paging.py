"""Opaque keyset cursors for ``Bundle.link`` paging (never OFFSET)."""

from __future__ import annotations

import base64

import orjson

from app.errors import invalid

CURSOR_PARAM = "_page"


def encode_cursor(state: dict) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(state)).decode().rstrip("=")


def decode_cursor(text: str) -> dict:
    try:
        state = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        raise invalid(f"The paging cursor {CURSOR_PARAM}='{text[:60]}' is not one this server issued") from None
    if not isinstance(state, dict):
        raise invalid(f"The paging cursor {CURSOR_PARAM}='{text[:60]}' is not one this server issued")
    return state


def parse_count(value: str | None, default: int, maximum: int) -> int:
    if value is None or value == "":
        return default
    if not value.isdigit():
        raise invalid(f"_count='{value[:40]}' is not a non-negative whole number")
    return min(int(value), maximum)
