"""The change feed: every event of the log, in an order no consumer can miss (ARCHITECTURE.md
invariant 7), and the audit trail of one resource (who did what when).

Why not simply ``position > cursor``: positions are allocated when a transaction appends, not when
it commits, so a reader could pass position 11 (committed) while 10 is still in flight and never
come back for it. Instead the feed reads only events of *finished* transactions, those whose
``tx_id`` is below ``pg_snapshot_xmin(pg_current_snapshot())`` (every transaction below the
snapshot's xmin has committed or aborted), in ``(tx_id, position)`` order. A transaction that
commits after a reader's page has a ``tx_id`` at or above the xmin of that page's snapshot, hence
above every ``tx_id`` on the page, so it lands in a later page. The price: one long-running write
transaction (in any database of the cluster) holds the feed back until it ends; the feed lags,
never skips. Served from the index ``event_log_tx (tx_id, position)``.

**Cursor**: ``<tx_id>.<position>`` of the last event returned, both decimal, e.g. ``7421.1093``.
No cursor means "from the start of the log". Consumers store the cursor and resume with
``GET [base]/_events?after=<cursor>``; an empty page links ``next`` to the same cursor (poll it).

**Response**: a ``Bundle`` of type ``history`` (this is not a FHIR interaction; the Bundle is just
the familiar envelope), oldest first, one entry per event, built like history entries:
``fullUrl``, ``resource`` (stored bytes; none for a deletion), ``request`` (method, url),
``response`` (``status``, ``location`` = ``Type/id/_history/version``, ``etag`` = ``W/"version"``,
``lastModified``). Each entry carries one extension :data:`EVENT_EXTENSION` with sub-extensions
``position`` (valueString: it is a 64-bit integer), ``tx`` (valueString), ``kind`` (valueCode:
created | updated | deleted), ``actor`` (valueString) and ``cursor`` (valueString: resume after
this entry). ``link`` ``next`` always carries the cursor after the page.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from app.errors import invalid
from app.events.model import StoredEvent
from app.events.store import stored_event
from app.identity import require_id, require_type
from app.queries.bundle import bundle_bytes, entry_bytes, page_url
from app.queries.history import history_entry
from app.queries.paging import parse_count

DEFAULT_COUNT = 100
MAX_COUNT = 1000
CURSOR_PARAM = "after"
EVENT_EXTENSION = "urn:fhirledger:extension:change-event"

_CURSOR = re.compile(r"(\d{1,20})\.(\d{1,19})")
_MAX_TX = 2**64 - 1
_MAX_POSITION = 2**63 - 1
_PARAMS = {CURSOR_PARAM, "_count", "_format"}

_COLUMNS = (
    "position, tx_id::text AS tx, resource_type, resource_id, version, kind, resource, recorded_at,"
    " method, url, actor, client_addr, request_id, client_id, scope_kind"
)
# the horizon is an InitPlan, computed once per statement from the statement's own snapshot
_FINISHED = "tx_id < (SELECT pg_snapshot_xmin(pg_current_snapshot()))"
_FEED_FROM_START = f"SELECT {_COLUMNS} FROM event_log WHERE {_FINISHED} ORDER BY tx_id, position LIMIT $1"
_FEED_AFTER = (
    f"SELECT {_COLUMNS} FROM event_log WHERE {_FINISHED} AND (tx_id, position) > ($1::text::xid8, $2::bigint)"
    " ORDER BY tx_id, position LIMIT $3"
)
AUDIT_LIMIT = 1000


@dataclass(frozen=True, order=True, slots=True)
class Cursor:
    """A place in the feed: after the event ``position`` of transaction ``tx``."""

    tx: int
    position: int

    def __str__(self) -> str:
        return f"{self.tx}.{self.position}"

    @classmethod
    def parse(cls, text: str) -> Cursor:
        match = _CURSOR.fullmatch(text.strip())
        if match is None or int(match[1]) > _MAX_TX or int(match[2]) > _MAX_POSITION:
            raise invalid(
                f"{CURSOR_PARAM}='{text[:60]}' is not a change-feed cursor: expected <tx>.<position>"
                " as given in the feed's next link or an entry's cursor, e.g. 7421.1093"
            )
        return cls(int(match[1]), int(match[2]))


ChangeEvent = StoredEvent  # with its tx, actor, client address and request id


def cursor_of(e: StoredEvent) -> Cursor:
    """The feed position of an event: (transaction id, log position)."""
    assert e.tx is not None, "read the event with its tx column"
    return Cursor(e.tx, e.position)


async def read_changes(conn: asyncpg.Connection | asyncpg.Pool, after: Cursor | None, limit: int) -> list[ChangeEvent]:
    """Up to ``limit`` events of finished transactions after ``after``, in feed order."""
    if after is None:
        rows = await conn.fetch(_FEED_FROM_START, limit)
    else:
        rows = await conn.fetch(_FEED_AFTER, str(after.tx), after.position, limit)
    return [stored_event(r) for r in rows]


async def read_trail(
    conn: asyncpg.Connection | asyncpg.Pool,
    resource_type: str | None,
    resource_id: str | None,
    actor: str | None = None,
    client: str | None = None,
    limit: int = AUDIT_LIMIT,
) -> list[ChangeEvent]:
    """The audit trail, oldest first: the events of one resource (``resource_type``/``resource_id``),
    of one actor, of one token client, or those of all the filters given; at most ``limit``."""
    where: list[str] = []
    args: list = []
    if resource_type is not None and resource_id is not None:
        require_type(resource_type)
        require_id(resource_id)
        args += [resource_type, resource_id]
        where.append(f"resource_type = ${len(args) - 1} AND resource_id = ${len(args)}")
    for column, value in (("actor", actor), ("client_id", client)):
        if value is not None:
            args.append(value)
            where.append(f"{column} = ${len(args)}")
    assert where, "give a resource, an actor or a client"
    args.append(limit)
    sql = f"SELECT {_COLUMNS} FROM event_log WHERE {' AND '.join(where)} ORDER BY position LIMIT ${len(args)}"
    return [stored_event(r) for r in await conn.fetch(sql, *args)]


@dataclass(frozen=True)
class ChangesRequest:
    base: str  # absolute FHIR base URL
    url: str  # absolute URL of this request, without its query
    params: list[tuple[str, str]]


def _parse(params: Sequence[tuple[str, str]]) -> tuple[Cursor | None, int]:
    values: dict[str, str] = {}
    for key, value in params:
        if key not in _PARAMS:
            raise invalid(f"Unknown change-feed parameter '{key[:40]}': use after=<cursor> and _count=N")
        if key in values:
            raise invalid(f"{key} may be given only once in a change-feed request")
        values[key] = value
    after = Cursor.parse(values[CURSOR_PARAM]) if values.get(CURSOR_PARAM) else None
    return after, parse_count(values.get("_count"), DEFAULT_COUNT, MAX_COUNT)


def _entry(base: str, e: ChangeEvent) -> bytes:
    ext = [
        {"url": "position", "valueString": str(e.position)},
        {"url": "tx", "valueString": str(e.tx)},
        {"url": "kind", "valueCode": e.kind.value},
    ]
    if e.actor is not None:
        ext.append({"url": "actor", "valueString": e.actor})
    ext.append({"url": "cursor", "valueString": str(cursor_of(e))})
    entry = history_entry(base, e)
    entry["response"]["location"] = f"{e.resource_type}/{e.resource_id}/_history/{e.version}"
    entry = {"fullUrl": entry.pop("fullUrl"), "extension": [{"url": EVENT_EXTENSION, "extension": ext}], **entry}
    return entry_bytes(entry, e.resource)


async def changes(pool: asyncpg.Pool, req: ChangesRequest) -> bytes:
    """One page of the change feed as a Bundle (see the module docstring)."""
    after, limit = _parse(req.params)
    events = await read_changes(pool, after, limit) if limit > 0 else []
    last = cursor_of(events[-1]) if events else after
    links = [
        {"relation": "self", "url": page_url(req.url, req.params, {})},
        {"relation": "next", "url": page_url(req.url, req.params, {CURSOR_PARAM: str(last) if last else None})},
    ]
    return bundle_bytes("history", links, (_entry(req.base, e) for e in events))
