"""Version events: frozen values with a fixed envelope (type, id, version, time, request context)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class EventKind(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"


WriteCheck = Callable[[Any, Sequence["VersionEvent"], bool], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Who asked for a write, and how: recorded on every event. ``client_id`` and ``scope_kind``
    are the verified token's client and the level of its scopes (patient, user, system, mixed)
    when authorization is on.

    ``check`` (not recorded) is the caller's authorization of the write's events: awaited by the
    write transaction with ``(tx, events, written)`` before the events are appended
    (``written=False``: the stored state they replace) and after they are projected
    (``written=True``); it raises to refuse them, which rolls the transaction back."""

    method: str
    url: str
    actor: str | None = None
    client_addr: str | None = None
    request_id: str | None = None
    client_id: str | None = None
    scope_kind: str | None = None
    check: WriteCheck | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class VersionEvent:
    resource_type: str
    resource_id: str
    version: int
    kind: EventKind
    resource: bytes | None  # the resource exactly as served; None for a deletion
    recorded_at: datetime  # = meta.lastUpdated
    context: RequestContext
    # the resource as the JSON value ``resource`` holds, when the writer has it (so the projectors
    # need not parse the bytes again); not part of the event: None means "parse ``resource``"
    parsed: dict | None = field(default=None, compare=False, repr=False)


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
    client_id: str | None = None
    scope_kind: str | None = None
