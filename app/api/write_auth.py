"""Authorization of what a write writes, and who is recorded as writing it.

The routes check the scope letter of every interaction before any work (:mod:`app.api.auth`). When
the token's scopes confine writes (``patient/`` scopes: the patient's compartment; v2 scopes with a
query: resources matching it), :class:`WriteCheck` runs inside the write's database transaction
(:meth:`app.commands.unit_of_work.WriteTransaction.record`) on every event, single writes and
transaction entries alike:

- before the append, the resource as stored now (update, patch, delete of an existing resource)
  must be within the confinement: a token cannot take over, or delete, another patient's data;
- after the append and the inline projections, the resource as written must be within it: a token
  cannot move data out of its patient's compartment, or out of its query (the query is evaluated by
  the search index inside the same transaction, so it agrees with a search).

A refusal raises the 403 and the transaction rolls back: nothing is written.

What a conditional write's criteria match (``If-None-Exist``, ``PUT/PATCH/DELETE [type]?criteria``,
conditional references, in single writes and Bundle entries alike) is confined by
:func:`matcher_for` to what the token could find by searching the type: a resource it cannot see
does not exist for it, so 404/201 vs 200 vs 412 never tells it about resources beyond its reach.

``Patient`` resources under ``patient/`` scopes: only the patient in context may be written
(``PUT Patient/<its id>``). A Patient created by ``POST`` gets a new id, so it is refused: a
patient-context app cannot mint patients, nor other Patients that ``link`` to its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlencode

import asyncpg
import orjson
from fastapi import Request

from app.api.actor import actor_of
from app.auth import OPEN, Access, Decision, Principal, forbidden, in_compartment
from app.auth.outcomes import challenge
from app.commands.unit_of_work import Matcher, WriteTransaction
from app.errors import FhirError
from app.events.model import VersionEvent
from app.identity import require_type
from app.queries.search.match import match_ids
from app.queries.search.restriction import restriction_for

_NO_HEADERS: dict[str, str] = {}
INTERACTION_OF_METHOD = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def principal_of(request: Request) -> Principal:
    """The request's caller, as the authentication middleware (app/api/auth.py) found it."""
    state = request.scope.get("state")  # what ``request.state`` wraps, without building the wrapper
    principal = state.get("principal") if state is not None else None
    if principal is None:
        if request.app.state.settings.auth_issuer:
            raise RuntimeError("no principal on the request: the Authentication middleware is not installed")
        return OPEN
    return principal


def write_identity(request: Request) -> dict:
    """The ``RequestContext`` fields naming the writer: actor, client, scope kind, and the check of
    what is written when the token's scopes confine writes."""
    principal = principal_of(request)
    actor_header = request.app.state.settings.actor_header
    # the headers are read only for the configured actor header (building them is a cost of every write)
    actor = actor_of(request.headers if actor_header else _NO_HEADERS, actor_header, principal)
    if principal.is_open:
        return {"actor": actor}
    confined = any(s.level == "patient" or s.query for s in principal.grants.scopes)
    return {
        "actor": actor,
        "client_id": principal.client_id,
        "scope_kind": principal.kind,
        "check": WriteCheck(principal) if confined else None,
    }


def matcher_for(principal: Principal) -> Matcher:
    """The matcher of a write's conditional criteria: every current resource for the open principal,
    else only those a search of the type with the token would return (403 when it may not search
    the type at all)."""
    if principal.is_open:
        return match_ids

    async def visible_ids(conn: asyncpg.Connection, resource_type: str, query: str) -> list[str]:
        require_type(resource_type)
        restriction = restriction_for(principal.allows(resource_type, "search-type"))
        return await match_ids(conn, resource_type, query, restriction)

    return visible_ids


def matcher_of(request: Request) -> Matcher:
    """:func:`matcher_for` the request's caller."""
    return matcher_for(principal_of(request))


def _refusal(event: VersionEvent, decision: Decision, stored: bool) -> FhirError:
    what = f"{event.resource_type}/{event.resource_id}"
    state = "as stored now" if stored else "as it would be written"
    limits = []
    for access in decision.alternatives:
        parts = [f"in the compartment of Patient/{access.patient}"] if access.patient else []
        if access.params:
            parts.append(f"matching {urlencode(access.params)}")
        limits.append(" and ".join(parts))
    text = (
        f"The token's scopes allow {decision.interaction} on {event.resource_type} only for resources "
        f"{' or '.join(limits)}; {what} {state} is not (a write under patient/ scopes may touch only the "
        f"patient in context and resources in its compartment). Scope {decision.needed} without a query, "
        "at user/ or system/ level, would allow it"
    )
    header = challenge("insufficient_scope", f"{what} is outside the token's scopes", decision.needed)
    return FhirError(403, "forbidden", text, headers={"WWW-Authenticate": header})


class WriteCheck:
    """The ``RequestContext.check`` of a token whose scopes confine what it may write."""

    def __init__(self, principal: Principal) -> None:
        self.principal = principal

    async def __call__(self, tx: WriteTransaction, events: Sequence[VersionEvent], written: bool) -> None:
        for event in events:
            interaction = INTERACTION_OF_METHOD.get(event.context.method, "update")
            decision = self.principal.allows(event.resource_type, interaction)
            if decision.unrestricted:
                continue
            if not decision.allowed:
                raise forbidden(decision)
            resource = await _state(tx, event, written)
            if resource is None:
                continue  # nothing stored before (a create), nothing after (a deletion)
            for access in decision.alternatives:
                if await _within(tx, event, resource, access):
                    break
            else:
                raise _refusal(event, decision, stored=not written)


async def _state(tx: WriteTransaction, event: VersionEvent, written: bool) -> dict | None:
    if written:
        return orjson.loads(event.resource) if event.resource is not None else None
    if event.version == 1:
        return None
    head = await tx.head(event.resource_type, event.resource_id)
    if head is None or head.deleted or head.resource is None:
        return None
    return orjson.loads(head.resource)


async def _within(tx: WriteTransaction, event: VersionEvent, resource: dict, access: Access) -> bool:
    if access.patient is not None:
        if event.resource_type == "Patient" and event.resource_id != access.patient:
            return False
        if not in_compartment(resource, access.patient):
            return False
    if access.params:
        query = urlencode([*access.params, ("_id", event.resource_id)])
        return event.resource_id in await match_ids(tx.conn, event.resource_type, query)
    return True
