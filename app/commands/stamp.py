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
    # these three first, then the resource's other elements in their order (one copy in C: the
    # three keys keep their places and take the values set after)
    out = {"resourceType": None, "id": None, "meta": None, **resource}
    out["resourceType"], out["id"], out["meta"] = resource["resourceType"], resource_id, meta
    return orjson.dumps(out), out
