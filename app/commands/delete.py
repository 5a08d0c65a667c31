"""delete: ``DELETE [base]/[type]/[id]`` (https://hl7.org/fhir/R4/http.html#delete).

Deleting something absent or already deleted succeeds without a new version (the spec allows
idempotent deletes)."""

from __future__ import annotations

from datetime import datetime

from app.commands.preconditions import check_if_match
from app.commands.result import WriteResult, WriteStatus
from app.commands.unit_of_work import WriteTransaction
from app.events.model import EventKind, RequestContext, VersionEvent
from app.identity import require_id, require_type
from app.projections.current_state import Head


def prepare_delete(resource_type: str, resource_id: str) -> None:
    require_type(resource_type)
    require_id(resource_id)


def decide_delete(
    head: Head | None,
    resource_type: str,
    resource_id: str,
    if_match: int | None,
    recorded_at: datetime,
    context: RequestContext,
) -> VersionEvent | None:
    check_if_match(if_match, head.version if head else None, f"{resource_type}/{resource_id}")
    if head is None or head.deleted:
        return None
    return VersionEvent(resource_type, resource_id, head.version + 1, EventKind.DELETED, None, recorded_at, context)


async def delete(
    tx: WriteTransaction, resource_type: str, resource_id: str, if_match: int | None = None
) -> WriteResult:
    await tx.lock(resource_type, resource_id)
    head = await tx.head(resource_type, resource_id)
    event = decide_delete(head, resource_type, resource_id, if_match, tx.recorded_at(head), tx.context)
    if event is None:
        return WriteResult(
            WriteStatus.UNCHANGED,
            resource_type,
            resource_id,
            head.version if head else None,
            head.last_updated if head else None,
            None,
        )
    (position,) = await tx.record([event])
    return WriteResult(
        WriteStatus.DELETED, resource_type, resource_id, event.version, event.recorded_at, None, position
    )
