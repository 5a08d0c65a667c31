"""delete: ``DELETE [base]/[type]/[id]`` (https://hl7.org/fhir/R4/http.html#delete) and conditional
delete ``DELETE [type]?criteria`` (no match changes nothing, one match is deleted, several are a
412).

Deleting something absent or already deleted succeeds without a new version (the spec allows
idempotent deletes)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from app.commands.conditional import Target, aim, request_path, speaking_of
from app.commands.preconditions import check_if_match
from app.commands.result import WriteResult, WriteStatus
from app.commands.unit_of_work import WriteTransaction
from app.events.model import EventKind, RequestContext, VersionEvent
from app.identity import require_id, require_type
from app.projections.current_state import Head


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
    tx: WriteTransaction,
    resource_type: str,
    resource_id: str | None,
    if_match: int | None = None,
    criteria: str | None = None,
    target: Target | None = None,
) -> WriteResult:
    """Delete inside ``tx``. ``criteria`` (and no id): a conditional delete, aimed here unless a
    transaction Bundle gives its ``target``."""
    if target is None and criteria is not None:
        with speaking_of("DELETE", resource_type, criteria):
            target = await aim(tx, "DELETE", resource_type, criteria)
            return await _delete_at(tx, resource_type, target.write_id, if_match)
    return await _delete_at(tx, resource_type, target.write_id if target else resource_id, if_match)


async def _delete_at(
    tx: WriteTransaction, resource_type: str, resource_id: str | None, if_match: int | None
) -> WriteResult:
    if resource_id is None:  # a conditional delete matching nothing
        return WriteResult(WriteStatus.UNCHANGED, resource_type, "", None, None, None)
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
    return await tx.write(event)


@dataclass(frozen=True)
class Delete:
    """``DELETE [type]/[id]``, or ``DELETE [type]?criteria`` (``resource_id`` None)."""

    resource_type: str
    resource_id: str | None
    if_match: int | None = None
    criteria: str | None = None
    method: ClassVar[str] = "DELETE"

    @property
    def url(self) -> str:
        return request_path(self.resource_type, self.resource_id, self.criteria)

    async def __call__(self, tx: WriteTransaction, target: Target | None = None) -> WriteResult:
        return await delete(tx, self.resource_type, self.resource_id, self.if_match, self.criteria, target)


def prepare_delete(
    resource_type: str, resource_id: str | None, if_match: int | None = None, criteria: str | None = None
) -> Delete:
    require_type(resource_type)
    if resource_id is not None:
        require_id(resource_id)
    return Delete(resource_type, resource_id, if_match, criteria)
