"""Reading values out of resource JSON for indexing: non-empty strings, objects, finite decimals,
and the case- and accent-folded form strings are matched in."""

from __future__ import annotations

import unicodedata
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from app.fhirpath.model import type_model


@lru_cache(maxsize=65536)
def normalize_string(text: str) -> str:
    """Case- and accent-insensitive form for string matching: NFKD, no combining marks, casefold."""
    if text.isascii():
        return text.lower()  # the same result, much faster
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def is_subtype(typ: str | None, ancestor: str) -> bool:
    return typ is not None and type_model().is_subtype(typ, ancestor)


def text_of(value: object) -> str | None:
    """``value`` if it is a non-empty string."""
    return value if isinstance(value, str) and value else None


def folded_text(value: object) -> str | None:
    """The folded form of a non-empty string (:func:`normalize_string`)."""
    text = text_of(value)
    return normalize_string(text) if text else None


def texts_of(value: object) -> list[str]:
    """The non-empty strings of a string or list."""
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str) and v]
    return []


def dicts_of(value: object) -> list[dict]:
    """The objects of an object or list."""
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, dict)]
    return []


def decimal_of(value: object) -> Decimal | None:
    """A JSON number as a finite Decimal (booleans and strings are not numbers)."""
    if isinstance(value, bool):
        return None
    try:
        if isinstance(value, int | Decimal):
            result = Decimal(value)
        elif isinstance(value, float):
            result = Decimal(repr(value))
        else:
            return None
    except (InvalidOperation, ValueError):
        return None
    return result if result.is_finite() else None
