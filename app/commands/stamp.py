"""Serialising a resource as it will be stored and served: the server sets ``id``,
``meta.versionId`` and ``meta.lastUpdated`` from the event."""

from __future__ import annotations

from datetime import datetime

import orjson

from app.fhirtime import format_instant


def stamp(resource: dict, resource_id: str, version: int, last_updated: datetime) -> bytes:
    meta = dict(resource.get("meta") or {})
    meta["versionId"] = str(version)
    meta["lastUpdated"] = format_instant(last_updated)
    out = {"resourceType": resource["resourceType"], "id": resource_id, "meta": meta}
    for key, value in resource.items():
        if key not in out:
            out[key] = value
    return orjson.dumps(out)
