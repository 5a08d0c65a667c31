"""history at instance, type and system level, read from the event log
(https://hl7.org/fhir/R4/http.html#history).

Newest first; ``_since``, ``_at``, ``_count``, ``actor`` and ``client`` (only the versions that
actor, or that token client, wrote: audit filters of this server, see app/api/actor.py); paging by
``Bundle.link`` ``next``/``previous`` with a keyset cursor (a version for one resource, a log position otherwise).

Entries a token's scopes do not reach (types it may not read, versions outside its patient's
compartment or its scopes' query) are left out of each page, so a page may hold fewer than
``_count`` entries while ``next`` still leads on; the instance history of a resource outside them
is a 403 (:mod:`app.queries.visibility`).
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from app.auth import OPEN, Principal
from app.errors import invalid, not_found
from app.events.history import HistoryFilter, read_history
from app.events.model import EventKind, StoredEvent
from app.events.store import last_version, read_version, version_count
from app.fhirtime import FhirDateError, format_instant, parse_range
from app.identity import require_id, require_type
from app.queries.bundle import bundle_bytes, entry_bytes, page_url
from app.queries.paging import CURSOR_PARAM, cursor_error, decode_cursor, encode_cursor, parse_count
from app.queries.visibility import require_version_visible, visible_events

_STATUS = {EventKind.CREATED: "201 Created", EventKind.UPDATED: "200 OK", EventKind.DELETED: "204 No Content"}


@dataclass(frozen=True)
class HistoryRequest:
    base: str  # absolute FHIR base URL, e.g. http://host:8080/fhir
    url: str  # absolute URL of this request, without its query
    params: list[tuple[str, str]]
    resource_type: str | None = None
    resource_id: str | None = None


def history_entry(base: str, e: StoredEvent) -> dict:
    """A history ``Bundle.entry`` for an event, without its resource (spliced in as bytes)."""
    method = "DELETE" if e.kind is EventKind.DELETED else e.method
    return {
        "fullUrl": f"{base}/{e.resource_type}/{e.resource_id}",
        "request": {"method": method, "url": e.url},
        "response": {
            "status": _STATUS[e.kind],
            "etag": f'W/"{e.version}"',
            "lastModified": format_instant(e.recorded_at),
        },
    }


def _entry(base: str, e: StoredEvent) -> bytes:
    return entry_bytes(history_entry(base, e), e.resource)


def _filter(req: HistoryRequest, default_count: int, max_count: int) -> HistoryFilter:
    values: dict[str, str] = {}
    for key, value in req.params:
        if key in values and key in ("_since", "_at", "_count", "actor", "client"):
            raise invalid(f"{key} may be given only once in a history request")
        values[key] = value
    try:
        since = parse_range(values["_since"])[0] if "_since" in values else None
        at = parse_range(values["_at"]) if "_at" in values else None
    except FhirDateError as exc:
        raise invalid(f"History parameter: {exc}") from None
    key, forward = None, False
    if CURSOR_PARAM in values:
        state = decode_cursor(values[CURSOR_PARAM])
        k = state.get("k")
        limit = 2**31 if req.resource_id is not None else 2**63  # a version is an integer, a position a bigint
        if (
            not isinstance(k, int)
            or isinstance(k, bool)
            or not 0 <= k < limit
            or state.get("d") not in ("next", "prev")
        ):
            raise cursor_error("not a history cursor")
        key, forward = state["k"], state["d"] == "prev"
    limit = parse_count(values.get("_count"), default_count, max_count)
    actor = values.get("actor")
    if actor is not None and not actor.strip():
        raise invalid("actor must name an actor, e.g. actor=alice or actor=anonymous")
    client = values.get("client")
    if client is not None and not client.strip():
        raise invalid("client must name a client (the client_id of the writing token), e.g. client=my-app")
    return HistoryFilter(req.resource_type, req.resource_id, since, at, key, forward, limit, actor, client)


async def _versions(pool: asyncpg.Pool, resource_type: str, resource_id: str) -> int:
    versions = await version_count(pool, resource_type, resource_id)
    if versions == 0:
        raise not_found(f"{resource_type}/{resource_id} is not known to this server, so it has no history")
    return versions


async def _require_instance_visible(pool: asyncpg.Pool, req: HistoryRequest, principal: Principal) -> None:
    """403 unless the token may see the resource's latest version (or, if deleted, the one before)."""
    assert req.resource_type is not None and req.resource_id is not None
    decision = principal.allows(req.resource_type, "history-instance")
    await _versions(pool, req.resource_type, req.resource_id)  # 404 when never written
    newest = await last_version(pool, req.resource_type, req.resource_id)
    latest = await read_version(pool, req.resource_type, req.resource_id, newest)
    if latest is not None:
        await require_version_visible(pool, decision, latest)


async def history(
    pool: asyncpg.Pool, req: HistoryRequest, default_count: int, max_count: int, principal: Principal = OPEN
) -> bytes:
    if req.resource_type is not None:
        require_type(req.resource_type)
    if req.resource_id is not None:
        require_id(req.resource_id)
    f = _filter(req, default_count, max_count)
    instance = req.resource_id is not None
    if instance and not principal.is_open:
        await _require_instance_visible(pool, req, principal)
    events, more = await read_history(pool, f) if f.limit > 0 else ([], False)

    def key_of(e: StoredEvent) -> int:
        return e.version if instance else e.position

    links = [{"relation": "self", "url": page_url(req.url, req.params, {})}]
    older = more if not f.forward else True
    newer = f.key is not None and (more if f.forward else True)
    if events and older:
        cursor = encode_cursor({"k": key_of(events[-1]), "d": "next"})
        links.append({"relation": "next", "url": page_url(req.url, req.params, {CURSOR_PARAM: cursor})})
    if events and newer:
        cursor = encode_cursor({"k": key_of(events[0]), "d": "prev"})
        links.append({"relation": "previous", "url": page_url(req.url, req.params, {CURSOR_PARAM: cursor})})
    total = None
    if instance:
        assert req.resource_type is not None and req.resource_id is not None
        versions = await _versions(pool, req.resource_type, req.resource_id)
        unrestricted = principal.allows(req.resource_type, "history-instance").unrestricted
        if f.since is None and f.at is None and f.actor is None and f.client is None and unrestricted:
            total = versions
    shown = await visible_events(pool, principal, events, req.base)
    return bundle_bytes("history", links, (_entry(req.base, e) for e in shown), total)
