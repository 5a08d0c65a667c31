"""create: ``POST [base]/[type]`` with a server-assigned id (https://hl7.org/fhir/R4/http.html#create),
and conditional create with ``If-None-Exist`` criteria (#ccreate): no match creates, one match
answers the existing resource (200, nothing written), several are a 412."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from app.commands.conditional import Target, aim, speaking_of, with_references
from app.commands.preconditions import require_body_type
from app.commands.result import WriteResult, WriteStatus
from app.commands.stamp import stamped
from app.commands.unit_of_work import WriteTransaction
from app.commands.validate import check_resource
from app.errors import Issue
from app.events.model import EventKind, RequestContext, VersionEvent
from app.identity import new_id, require_type


def decide_create(
    resource_type: str, resource_id: str, resource: dict, recorded_at: datetime, context: RequestContext
) -> VersionEvent:
    body, parsed = stamped(resource, resource_id, 1, recorded_at)
    return VersionEvent(resource_type, resource_id, 1, EventKind.CREATED, body, recorded_at, context, parsed)


async def create(
    tx: WriteTransaction,
    resource_type: str,
    resource: dict,
    criteria: str | None = None,
    target: Target | None = None,
) -> WriteResult:
    """Create ``resource`` inside ``tx``. ``criteria``: a conditional create, aimed here unless a
    transaction Bundle gives its ``target`` (the id it assigned, or the resource its criteria
    matched, references already resolved)."""
    if target is None and criteria is not None:
        with speaking_of("POST", resource_type, criteria):
            target = await aim(tx, "POST", resource_type, criteria)
            body = await with_references(tx, resource) if target.existing_id is None else resource
            return await _create_at(tx, resource_type, body, target)
    return await _create_at(tx, resource_type, resource, target or Target(new_id()))


async def _create_at(tx: WriteTransaction, resource_type: str, resource: dict, target: Target) -> WriteResult:
    if target.existing_id is not None:
        head = await tx.head(resource_type, target.existing_id)
        assert head is not None  # it matched, so it is current
        return WriteResult(
            WriteStatus.EXISTING, resource_type, target.existing_id, head.version, head.last_updated, head.resource
        )
    assert target.write_id is not None
    return await tx.write(decide_create(resource_type, target.write_id, resource, tx.recorded_at(None), tx.context))


@dataclass(frozen=True)
class Create:
    """``POST [type]`` (``criteria``: ``If-None-Exist``, a conditional create)."""

    resource_type: str
    resource: dict
    criteria: str | None = None
    method: ClassVar[str] = "POST"

    @property
    def url(self) -> str:
        return self.resource_type

    async def __call__(self, tx: WriteTransaction, target: Target | None = None) -> WriteResult:
        return await create(tx, self.resource_type, self.resource, self.criteria, target)


def prepare_create(
    resource_type: str, body: object, lenient: bool = False, criteria: str | None = None
) -> tuple[Create, list[Issue]]:
    """Everything that can be checked before the transaction starts: the command and any
    validation warnings."""
    require_type(resource_type)
    resource = require_body_type(body, resource_type)
    return Create(resource_type, resource, criteria), check_resource(resource, lenient=lenient)
