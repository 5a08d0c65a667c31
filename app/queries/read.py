"""read: ``GET [base]/[type]/[id]`` served as stored bytes from the current-state projection
(https://hl7.org/fhir/R4/http.html#read), and the ``_summary``/``_elements`` parameters that read
and vread take. A token restricted to a patient's compartment or a scope's query gets a 403 for a
resource outside it (:mod:`app.queries.visibility`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from app.auth import OPEN, Principal
from app.errors import invalid
from app.identity import gone_or_missing, require_id, require_type
from app.projections.current_state import read_head
from app.queries.subset import subset
from app.queries.visibility import require_visible


@dataclass(frozen=True, slots=True)
class VersionedBytes:
    resource: bytes
    version: int
    last_updated: datetime


async def read(
    pool: asyncpg.Pool, resource_type: str, resource_id: str, principal: Principal = OPEN, base: str = ""
) -> VersionedBytes:
    require_type(resource_type)
    require_id(resource_id)
    head = await read_head(pool, resource_type, resource_id)
    if head is None or head.deleted or head.resource is None:
        raise gone_or_missing(resource_type, resource_id, head is not None)
    if not principal.is_open:
        await require_visible(pool, principal.allows(resource_type, "read"), resource_id, base)
    return VersionedBytes(head.resource, head.version, head.last_updated)


READ_SUMMARY_VALUES = ("true", "text", "data", "false")
_TRANSPORT_PARAMS = ("_format", "_pretty")


@dataclass(frozen=True, slots=True)
class ReadShape:
    """What a read or vread asks of the resource's form: ``_summary`` (None for all of it),
    ``_elements``, and the parameters that mean nothing on a read (answered with a warning)."""

    summary: str | None = None
    elements: tuple[str, ...] | None = None
    ignored: tuple[str, ...] = ()

    def apply(self, resource_type: str, resource: bytes) -> bytes:
        return subset(resource, resource_type, self.summary, self.elements)


def read_shape(params: list[tuple[str, str]]) -> ReadShape:
    """Parse the query of a read/vread; 400 for a ``_summary`` a read cannot honour."""
    summary: str | None = None
    elements: tuple[str, ...] | None = None
    ignored: list[str] = []
    seen: set[str] = set()
    for name, value in params:
        if name in ("_summary", "_elements") and name in seen:
            raise invalid(f"{name} is given more than once; give it once")
        seen.add(name)
        if name == "_summary":
            if value == "count":
                raise invalid(
                    "_summary=count is for searches (it answers a count of matches); a read returns one resource: "
                    "use _summary=true, text, data or false"
                )
            if value not in READ_SUMMARY_VALUES:
                raise invalid(f"_summary='{value[:40]}' is not one of {', '.join(READ_SUMMARY_VALUES)}")
            summary = None if value == "false" else value
        elif name == "_elements":
            elements = tuple(e.strip() for e in value.split(",") if e.strip()) or None
        elif name not in _TRANSPORT_PARAMS:
            ignored.append(name)
    return ReadShape(summary, elements, tuple(ignored))
