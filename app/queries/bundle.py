"""Assembling Bundles from stored JSON bytes without re-serialising each resource
(ARCHITECTURE.md invariant 5)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from urllib.parse import urlencode

import orjson

from app.fhirtime import format_instant, now_millis


def entry_bytes(entry: dict, resource: bytes | None) -> bytes:
    """One ``Bundle.entry``; ``resource`` is spliced in as stored bytes right after ``fullUrl``."""
    if resource is None:
        return orjson.dumps(entry)
    full_url = entry.pop("fullUrl", None)
    head = b'{"fullUrl":' + orjson.dumps(full_url) + b"," if full_url is not None else b"{"
    rest = orjson.dumps(entry)
    body = head + b'"resource":' + resource
    return body + (b"," + rest[1:] if rest != b"{}" else b"}")


def bundle_bytes(
    bundle_type: str,
    links: list[dict],
    entries: Iterable[bytes],
    total: int | None = None,
    extra: dict | None = None,
) -> bytes:
    head: dict = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": format_instant(now_millis())},
        "type": bundle_type,
    }
    if total is not None:
        head["total"] = total
    if links:
        head["link"] = links
    if extra:
        head.update(extra)
    out = orjson.dumps(head)
    parts = list(entries)
    if not parts:
        return out
    return out[:-1] + b',"entry":[' + b",".join(parts) + b"]}"


def page_url(url: str, params: list[tuple[str, str]], replace: dict[str, str | None]) -> str:
    """``url`` (absolute, without query) with ``params`` where the keys of ``replace`` are set anew."""
    kept = [(k, v) for k, v in params if k not in replace]
    kept += [(k, v) for k, v in replace.items() if v is not None]
    query = urlencode(kept, safe=":/|,$")
    return f"{url}?{query}" if query else url
