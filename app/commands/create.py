"""create: ``POST [base]/[type]`` with a server-assigned id (https://hl7.org/fhir/R4/http.html#create)."""

from __future__ import annotations

import uuid
from datetime import datetime

from app.commands.preconditions import require_body_type
from app.commands.result import WriteResult, WriteStatus
from app.commands.stamp import stamp
from app.commands.unit_of_work import WriteTransaction
from app.commands.validate import check_resource
from app.errors import Issue
from app.events.model import EventKind, RequestContext, VersionEvent
from app.identity import require_type


def new_id() -> str:
    return str(uuid.uuid4())


def decide_create(
    resource_type: str, resource_id: str, resource: dict, recorded_at: datetime, context: RequestContext
) -> VersionEvent:
    body = stamp(resource, resource_id, 1, recorded_at)
    return VersionEvent(resource_type, resource_id, 1, EventKind.CREATED, body, recorded_at, context)


def prepare_create(resource_type: str, body: object, lenient: bool = False) -> tuple[dict, list[Issue]]:
    """Everything that can be checked before the transaction starts; returns the resource and any
    validation warnings."""
    require_type(resource_type)
    resource = require_body_type(body, resource_type)
    return resource, check_resource(resource, lenient=lenient)


async def create(tx: WriteTransaction, resource_type: str, resource: dict) -> WriteResult:
    event = decide_create(resource_type, new_id(), resource, tx.recorded_at(None), tx.context)
    (position,) = await tx.record([event])
    return WriteResult(
        WriteStatus.CREATED, resource_type, event.resource_id, 1, event.recorded_at, event.resource, position
    )
