"""The text full-text search indexes for one resource: rows ``(param, folded text)`` of the
``text`` side table (:mod:`app.search_types.text`).

- ``_content``: every string of the resource but those that are not prose (ids, references,
  systems and other URIs, dates, UUIDs, base64 data, ``meta``, and the narrative, which ``_text``
  holds), in document order (wider than HAPI FHIR's, which keeps only values of FHIR type
  ``string``: codes and markdown are indexed here too, ``Reference.reference`` is not);
- ``_text``: the narrative (``text.div``) without its XHTML markup;
- per token parameter the texts of its values (for ``:text``; a string parameter's ``:text``
  searches its rows of the string table, :mod:`app.search_types.string`).

A UUID (an identifier's value, say: ``identifier=`` finds it) holds no word, yet its fragments were
the only words no other resource shared: every ExplanationOfBenefit of a Synthea population had a
document of its own (its claim identifier), each parsed by PostgreSQL and indexed as distinct words.

Each distinct string is kept once, where it first occurs (a Coding's display and its concept's text
are often the same words: stored twice, they would only cost bytes, positions and stemming time).
Texts are folded (case and accents) like string search values and cut at :data:`MAX_CHARS`
characters: words further into one huge resource are not found by text search."""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterator
from typing import Any

from app.native import textwalk
from app.search_types.token import TokenValue

MAX_CHARS = 100_000
"""Characters of one document indexed (PostgreSQL's tsvector holds at most 1 MB)."""
WHOLE_RESOURCE = frozenset({"_content", "_text"})

_SKIPPED_KEYS = frozenset(
    {
        "resourceType",
        "id",
        "reference",
        "system",
        "url",
        "data",
        "versionId",
        "lastUpdated",
        "fullUrl",
        "profile",
        "contentType",
        "hash",
    }
)
_NOT_PROSE = re.compile(
    r"\d{4}(-\d\d(-\d\d([T ][\d:.]+(Z|[+-]\d\d:\d\d)?)?)?)?|(https?|urn|ftp|file):\S*"
    r"|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
"""Strings that are not prose: dates, URIs, UUIDs. Only a string that starts with a digit, holds a
``:`` or has a UUID's 36 characters can match (:func:`_is_prose` asks the pattern only of those)."""


def _is_prose(text: str) -> bool:
    """Whether a non-empty string is kept in ``_content`` (what the compiled walk's ``not_prose`` negates)."""
    return not ((text[0].isdigit() or ":" in text or len(text) == 36) and _NOT_PROSE.fullmatch(text))


_TAG = re.compile(r"<[^>]*>")


def fold(text: str) -> str:
    """Case- and accent-folded text (as string search folds; not cached: documents are large)."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        if value and _is_prose(value):
            yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            if key not in _SKIPPED_KEYS:
                yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _members(value: dict, parts: list[str]) -> None:
    """Append the prose strings of an object's members (what :func:`_strings` yields), recursively."""
    for key, item in value.items():
        if key in _SKIPPED_KEYS:
            continue
        cls = type(item)
        if cls is str:
            if item and _is_prose(item):
                parts.append(item)
        elif cls is dict:
            _members(item, parts)
        elif cls is list:
            _elements(item, parts)
        elif cls not in _SCALARS:
            parts.extend(_strings(item))


def _elements(value: list, parts: list[str]) -> None:
    """The same for a list's elements; an object element's members are read here, without a call
    (a list of Codings is the common case)."""
    for element in value:
        cls = type(element)
        if cls is dict:
            for key, item in element.items():
                if key in _SKIPPED_KEYS:
                    continue
                cls = type(item)
                if cls is str:
                    if item and _is_prose(item):
                        parts.append(item)
                elif cls is dict:
                    _members(item, parts)
                elif cls is list:
                    _elements(item, parts)
                elif cls not in _SCALARS:
                    parts.extend(_strings(item))
        elif cls is str:
            if element and _is_prose(element):
                parts.append(element)
        elif cls is list:
            _elements(element, parts)
        elif cls not in _SCALARS:
            parts.extend(_strings(element))


_SCALARS = frozenset({int, float, bool, type(None)})
_NOT_CONTENT = _SKIPPED_KEYS | {"text", "meta"}


def content_text(resource: dict) -> str:
    """The prose of a resource for ``_content`` (its narrative left out), each distinct string once:
    by the compiled walk (:mod:`app.native`), or :func:`python_content_text` where it is not built."""
    if textwalk is None:
        return python_content_text(resource)
    return textwalk.content_text(resource, _NOT_CONTENT, _SKIPPED_KEYS, MAX_CHARS)


def python_content_text(resource: dict) -> str:
    """:func:`content_text` in Python (the compiled walk's reference)."""
    parts: list[str] = []
    seen: dict[str, None] = {}
    size = counted = 0
    for key, item in resource.items():
        if key in _NOT_CONTENT:
            continue
        cls = type(item)
        if cls is str:
            if item and _is_prose(item):
                parts.append(item)
        elif cls is dict:
            _members(item, parts)
        elif cls is list:
            _elements(item, parts)
        elif cls not in _SCALARS:
            parts.extend(_strings(item))
        if len(parts) - counted > 64:
            size += _distinct_size(parts[counted:], seen)
            counted = len(parts)
            if size > MAX_CHARS:
                break  # the rest would be cut off
    if not counted:  # the common case: a resource of fewer than 64 strings
        return "\n".join(dict.fromkeys(parts))[:MAX_CHARS]
    seen.update(dict.fromkeys(parts[counted:]))
    return "\n".join(seen)[:MAX_CHARS]


def _distinct_size(parts: list[str], seen: dict[str, None]) -> int:
    """Add the strings not ``seen`` yet to it; their characters, a separator each."""
    size = 0
    for part in parts:
        if part not in seen:
            seen[part] = None
            size += len(part) + 1
    return size


def narrative_text(resource: dict) -> str:
    """The narrative's text without markup (empty without a narrative)."""
    text = resource.get("text")
    div = text.get("div") if isinstance(text, dict) else None
    if not isinstance(div, str):
        return ""
    return " ".join(html.unescape(_TAG.sub(" ", div[: MAX_CHARS * 4])).split())[:MAX_CHARS]


def _param_text(values: list) -> str:
    """The folded text of one token parameter's values: their texts."""
    parts = [v.text for v in values]
    return "\n".join(dict.fromkeys(p for p in parts if p))[:MAX_CHARS]


def document_rows(resource: dict) -> list[tuple]:
    """The rows ``(param, text)`` of the whole resource: ``_content``, then ``_text``."""
    out = []
    content = content_text(resource)
    if content:
        out.append(("_content", fold(content)))
    narrative = narrative_text(resource)
    if narrative:
        out.append(("_text", fold(narrative)))
    return out


def reference_content_text(resource: dict) -> str:
    """:func:`content_text` by a recursive generator (the reference it is tested against)."""
    seen: dict[str, None] = {}
    size = 0
    for key, value in resource.items():
        if key in ("text", "meta") or key in _SKIPPED_KEYS:
            continue
        for text in _strings(value):
            if text not in seen:
                seen[text] = None
                size += len(text) + 1
                if size > MAX_CHARS:
                    return "\n".join(seen)[:MAX_CHARS]
    return "\n".join(seen)


def text_rows(resource: dict, extracted: dict[str, list], codes: frozenset[str] | None, out: list[tuple]) -> None:
    """Append the rows ``(param, text)`` of a resource (only the parameters ``codes`` if given);
    ``extracted``: the values of its string and token parameters (among others), by code. (The
    reference path: :func:`app.projections.search_index.rows_of` appends the same rows faster.)"""
    if codes is None:
        content = reference_content_text(resource)
        if content:
            out.append(("_content", fold(content)))
        narrative = narrative_text(resource)
        if narrative:
            out.append(("_text", fold(narrative)))
    for code, values in extracted.items():
        if values and isinstance(values[0], TokenValue) and (codes is None or code in codes):
            text = _param_text(values)
            if text:
                out.append((code, text))
