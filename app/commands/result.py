"""The result of a write command (created, updated, deleted, unchanged or an existing match), with
enough for the HTTP layer and the bundle engine to answer without reading again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


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
