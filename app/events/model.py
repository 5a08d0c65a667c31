"""Version events: frozen values with a fixed envelope (type, id, version, time, request context)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class EventKind(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Who asked for a write, and how: recorded on every event."""

    method: str
    url: str
    actor: str | None = None
    client_addr: str | None = None
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class VersionEvent:
    resource_type: str
    resource_id: str
    version: int
    kind: EventKind
    resource: bytes | None  # the resource exactly as served; None for a deletion
    recorded_at: datetime  # = meta.lastUpdated
    context: RequestContext


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as read back from the log, with its global position."""

    position: int
    resource_type: str
    resource_id: str
    version: int
    kind: EventKind
    resource: bytes | None
    recorded_at: datetime
    method: str
    url: str
    tx: int | None = None  # the writing transaction's id (read by the change feed and audit)
    actor: str | None = None
    client_addr: str | None = None
    request_id: str | None = None
