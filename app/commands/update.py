"""update: ``PUT [base]/[type]/[id]``, including update-as-create with a client-chosen id and
re-creation after a delete (https://hl7.org/fhir/R4/http.html#update)."""

from __future__ import annotations

from datetime import datetime

from app.commands.preconditions import check_if_match, check_if_none_match, require_body_type
from app.commands.result import WriteResult, WriteStatus
from app.commands.stamp import stamp
from app.commands.unit_of_work import WriteTransaction
from app.commands.validate import check_resource
from app.errors import Issue, invalid
from app.events.model import EventKind, RequestContext, VersionEvent
from app.identity import require_id, require_type
from app.projections.current_state import Head


def prepare_update(
    resource_type: str, resource_id: str, body: object, lenient: bool = False
) -> tuple[dict, list[Issue]]:
    require_type(resource_type)
    require_id(resource_id)
    resource = require_body_type(body, resource_type)
    body_id = resource.get("id")
    if body_id is None:
        raise invalid(
            f"The resource has no 'id'; an update to {resource_type}/{resource_id} must carry "
            f'"id": "{resource_id}" in its body',
            expression=(f"{resource_type}.id",),
        )
    if body_id != resource_id:
        raise invalid(
            f"The resource's id '{body_id}' does not match the id in the URL '{resource_id}'",
            expression=(f"{resource_type}.id",),
        )
    return resource, check_resource(resource, lenient=lenient)


def decide_update(
    head: Head | None,
    resource_type: str,
    resource_id: str,
    resource: dict,
    if_match: int | None,
    recorded_at: datetime,
    context: RequestContext,
) -> VersionEvent:
    check_if_match(if_match, head.version if head else None, f"{resource_type}/{resource_id}")
    version = head.version + 1 if head else 1
    kind = EventKind.CREATED if head is None or head.deleted else EventKind.UPDATED
    body = stamp(resource, resource_id, version, recorded_at)
    return VersionEvent(resource_type, resource_id, version, kind, body, recorded_at, context)


async def update(
    tx: WriteTransaction,
    resource_type: str,
    resource_id: str,
    resource: dict,
    if_match: int | None = None,
    if_none_match: frozenset[str] = frozenset(),
) -> WriteResult:
    """``if_none_match``: the versions (or ``*``) of ``If-None-Match``; the update is refused (412)
    when the live resource is one of them."""
    await tx.lock(resource_type, resource_id)
    head = await tx.head(resource_type, resource_id)
    live = head.version if head is not None and not head.deleted else None
    check_if_none_match(if_none_match, live, f"{resource_type}/{resource_id}")
    event = decide_update(head, resource_type, resource_id, resource, if_match, tx.recorded_at(head), tx.context)
    (position,) = await tx.record([event])
    status = WriteStatus.CREATED if event.kind is EventKind.CREATED else WriteStatus.UPDATED
    return WriteResult(status, resource_type, resource_id, event.version, event.recorded_at, event.resource, position)
