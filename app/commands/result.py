"""The result of a write command (created, updated, deleted, unchanged or an existing match), with
enough for the HTTP layer and the bundle engine to answer without reading again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from app.events.model import EventKind, VersionEvent


class WriteStatus(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"
    UNCHANGED = "unchanged"  # an idempotent delete of something absent or already deleted
    EXISTING = "existing"  # a conditional create that matched


@dataclass(frozen=True, slots=True)
class WriteResult:
    status: WriteStatus
    resource_type: str
    resource_id: str
    version: int | None
    last_updated: datetime | None
    resource: bytes | None
    position: int | None = None

    def at(self, position: int) -> WriteResult:
        """The same result, at ``position`` in the log (``dataclasses.replace``, without its cost)."""
        return WriteResult(
            self.status, self.resource_type, self.resource_id, self.version, self.last_updated, self.resource, position
        )


_STATUS = {EventKind.CREATED: WriteStatus.CREATED, EventKind.DELETED: WriteStatus.DELETED}


def written(event: VersionEvent, position: int | None = None) -> WriteResult:
    """The result of a write that appended ``event`` (at ``position`` in the log, once known)."""
    status = _STATUS.get(event.kind, WriteStatus.UPDATED)
    return WriteResult(
        status, event.resource_type, event.resource_id, event.version, event.recorded_at, event.resource, position
    )
