"""create: ``POST [base]/[type]`` with a server-assigned id (https://hl7.org/fhir/R4/http.html#create)."""

from __future__ import annotations

import uuid

from app.commands.outcome import WriteOutcome, WriteStatus
from app.commands.rules import require_body_type
from app.commands.stamp import stamp
from app.commands.unit_of_work import WriteTransaction
from app.commands.validate import check_resource
from app.errors import Issue
from app.events.model import EventKind, RequestContext, VersionEvent
from app.identity import require_type


def decide_create(resource_type: str, resource: dict, recorded_at: object, context: RequestContext) -> VersionEvent:
    resource_id = str(uuid.uuid4())
    return VersionEvent(
        resource_type,
        resource_id,
        1,
        EventKind.CREATED,
        stamp(resource, resource_id, 1, recorded_at),
        recorded_at,
        context,  # type: ignore[arg-type]
    )


def prepare_create(resource_type: str, body: object, lenient: bool = False) -> tuple[dict, list[Issue]]:
    """Everything that can be checked before the transaction starts; returns the resource and any
    validation warnings."""
    require_type(resource_type)
    resource = require_body_type(body, resource_type)
    return resource, check_resource(resource, lenient=lenient)


async def create(tx: WriteTransaction, resource_type: str, resource: dict) -> WriteOutcome:
    event = decide_create(resource_type, resource, tx.recorded_at(None), tx.context)
    (position,) = await tx.record([event])
    return WriteOutcome(
        WriteStatus.CREATED, resource_type, event.resource_id, 1, event.recorded_at, event.resource, position
    )
