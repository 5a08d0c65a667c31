"""update: ``PUT [base]/[type]/[id]``, including update-as-create with a client-chosen id and
re-creation after a delete (https://hl7.org/fhir/R4/http.html#update), and conditional update
``PUT [type]?criteria`` (#cond-update): no match creates (with the body's id, if any), one match is
updated, several are a 412."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from app.commands.conditional import Target, aim, request_path, speaking_of, with_references
from app.commands.preconditions import check_if_match, check_if_none_match, require_body_type
from app.commands.result import WriteResult
from app.commands.stamp import stamped
from app.commands.unit_of_work import WriteTransaction
from app.commands.validate import check_resource
from app.errors import Issue, invalid
from app.events.model import EventKind, RequestContext, VersionEvent
from app.identity import require_id, require_type
from app.projections.current_state import Head


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
    body, parsed = stamped(resource, resource_id, version, recorded_at)
    return VersionEvent(resource_type, resource_id, version, kind, body, recorded_at, context, parsed)


async def update(
    tx: WriteTransaction,
    resource_type: str,
    resource_id: str | None,
    resource: dict,
    if_match: int | None = None,
    if_none_match: frozenset[str] = frozenset(),
    criteria: str | None = None,
    target: Target | None = None,
) -> WriteResult:
    """Write ``resource`` as the next version of ``resource_id`` inside ``tx``. ``if_none_match``:
    the versions (or ``*``) of ``If-None-Match``; the update is refused (412) when the live resource
    is one of them. ``criteria`` (and no id): a conditional update, aimed here unless a transaction
    Bundle gives its ``target``."""
    if target is None and criteria is not None:
        with speaking_of("PUT", resource_type, criteria):
            target = await aim(tx, "PUT", resource_type, criteria, resource.get("id"))
            body = await with_references(tx, resource)
            return await _update_at(tx, resource_type, target, body, if_match, if_none_match)
    return await _update_at(tx, resource_type, target or Target(resource_id), resource, if_match, if_none_match)


async def _update_at(
    tx: WriteTransaction,
    resource_type: str,
    target: Target,
    resource: dict,
    if_match: int | None,
    if_none_match: frozenset[str],
) -> WriteResult:
    rid = target.write_id
    assert rid is not None
    await tx.lock(resource_type, rid)
    head = await tx.head(resource_type, rid)
    live = head.version if head is not None and not head.deleted else None
    check_if_none_match(if_none_match, live, f"{resource_type}/{rid}")
    body = {**resource, "id": rid}
    return await tx.write(decide_update(head, resource_type, rid, body, if_match, tx.recorded_at(head), tx.context))


@dataclass(frozen=True)
class Update:
    """``PUT [type]/[id]``, or ``PUT [type]?criteria`` (``resource_id`` None)."""

    resource_type: str
    resource_id: str | None
    resource: dict
    if_match: int | None = None
    if_none_match: frozenset[str] = frozenset()
    criteria: str | None = None
    method: ClassVar[str] = "PUT"

    @property
    def url(self) -> str:
        return request_path(self.resource_type, self.resource_id, self.criteria)

    async def __call__(self, tx: WriteTransaction, target: Target | None = None) -> WriteResult:
        return await update(
            tx,
            self.resource_type,
            self.resource_id,
            self.resource,
            self.if_match,
            self.if_none_match,
            self.criteria,
            target,
        )


def prepare_update(
    resource_type: str,
    resource_id: str,
    body: object,
    lenient: bool = False,
    if_match: int | None = None,
    if_none_match: frozenset[str] = frozenset(),
) -> tuple[Update, list[Issue]]:
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
    command = Update(resource_type, resource_id, resource, if_match, if_none_match)
    return command, check_resource(resource, lenient=lenient)


def prepare_conditional_update(
    resource_type: str, criteria: str, body: object, lenient: bool = False, if_match: int | None = None
) -> tuple[Update, list[Issue]]:
    require_type(resource_type)
    resource = require_body_type(body, resource_type)
    command = Update(resource_type, None, resource, if_match, criteria=criteria)
    return command, check_resource(resource, lenient=lenient)
