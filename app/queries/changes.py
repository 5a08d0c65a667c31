"""The change feed: every event of the log, in the gap-free order of :mod:`app.events.feed`
(ARCHITECTURE.md invariant 7), as ``GET [base]/_events``, and the audit trail (who did what when).

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
from app.events import audit
from app.events.audit import AUDIT_LIMIT
from app.events.feed import FeedCursor, read_after
from app.events.model import StoredEvent
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


class Cursor(FeedCursor):
    """A place in the feed (after the event ``position`` of transaction ``tx``), in its text form
    ``<tx>.<position>``."""

    __slots__ = ()

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
    return await read_after(conn, after, limit)


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
    resource = None
    if resource_type is not None and resource_id is not None:
        require_type(resource_type)
        require_id(resource_id)
        resource = (resource_type, resource_id)
    return await audit.read_trail(conn, resource, actor, client, limit)


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
