"""read: ``GET [base]/[type]/[id]`` served as stored bytes from the current-state projection
(https://hl7.org/fhir/R4/http.html#read)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from app.identity import gone_or_missing, require_id, require_type
from app.projections.current_state import read_head


@dataclass(frozen=True, slots=True)
class VersionedBytes:
    resource: bytes
    version: int
    last_updated: datetime


async def read(pool: asyncpg.Pool, resource_type: str, resource_id: str) -> VersionedBytes:
    require_type(resource_type)
    require_id(resource_id)
    head = await read_head(pool, resource_type, resource_id)
    if head is None or head.deleted or head.resource is None:
        raise gone_or_missing(resource_type, resource_id, head is not None)
    return VersionedBytes(head.resource, head.version, head.last_updated)
