"""Serialising a resource as it will be stored and served: the server sets ``id``,
``meta.versionId`` and ``meta.lastUpdated`` from the event."""

from __future__ import annotations

from datetime import datetime

import orjson

from app.fhirtime import format_instant


def stamp(resource: dict, resource_id: str, version: int, last_updated: datetime) -> bytes:
    return stamped(resource, resource_id, version, last_updated)[0]


def stamped(resource: dict, resource_id: str, version: int, last_updated: datetime) -> tuple[bytes, dict]:
    """The bytes stored and served, and the JSON value they hold (it shares the unchanged parts
    with ``resource``; ``orjson.loads`` of the bytes gives an equal value)."""
    meta = dict(resource.get("meta") or {})
    meta["versionId"] = str(version)
    meta["lastUpdated"] = format_instant(last_updated)
    out = {"resourceType": resource["resourceType"], "id": resource_id, "meta": meta}
    for key, value in resource.items():
        if key not in out:
            out[key] = value
    return orjson.dumps(out), out
