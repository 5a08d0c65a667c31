"""vread: ``GET [base]/[type]/[id]/_history/[vid]`` served from the event log
(https://hl7.org/fhir/R4/http.html#vread); a version outside what the token's scopes allow is a 403
(:mod:`app.queries.visibility`)."""

from __future__ import annotations

import asyncpg

from app.auth import OPEN, Principal
from app.errors import FhirError, not_found
from app.events.model import EventKind
from app.events.store import read_version
from app.identity import require_id, require_type
from app.queries.read import VersionedBytes
from app.queries.visibility import require_version_visible


async def vread(
    pool: asyncpg.Pool, resource_type: str, resource_id: str, version_id: str, principal: Principal = OPEN
) -> VersionedBytes:
    require_type(resource_type)
    require_id(resource_id)
    if not version_id.isdigit() or len(version_id) > 9 or int(version_id) < 1:
        raise not_found(f"{resource_type}/{resource_id} has no version '{version_id[:40]}' (versions are 1, 2, 3, …)")
    event = await read_version(pool, resource_type, resource_id, int(version_id))
    if event is None:
        raise not_found(f"{resource_type}/{resource_id} has no version {version_id}")
    if event.kind is EventKind.DELETED or event.resource is None:
        raise FhirError(410, "deleted", f"Version {version_id} of {resource_type}/{resource_id} is its deletion")
    if not principal.is_open:
        await require_version_visible(pool, principal.allows(resource_type, "vread"), event)
    return VersionedBytes(event.resource, event.version, event.recorded_at)
