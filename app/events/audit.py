"""Audit trails read from the event log: the events of one resource, of one actor or of one token
client (or of all the filters given), oldest first, with the whole request context."""

from __future__ import annotations

import asyncpg

from app.events.model import StoredEvent
from app.events.store import EVENT_COLUMNS, stored_event

AUDIT_LIMIT = 1000


async def read_trail(
    conn: asyncpg.Connection | asyncpg.Pool,
    resource: tuple[str, str] | None,
    actor: str | None = None,
    client: str | None = None,
    limit: int = AUDIT_LIMIT,
) -> list[StoredEvent]:
    """The events of ``resource`` (type, id), of ``actor``, of token ``client``, or those of all
    the filters given, oldest first; at most ``limit``."""
    where: list[str] = []
    args: list = []
    if resource is not None:
        args += list(resource)
        where.append(f"resource_type = ${len(args) - 1} AND resource_id = ${len(args)}")
    for column, value in (("actor", actor), ("client_id", client)):
        if value is not None:
            args.append(value)
            where.append(f"{column} = ${len(args)}")
    assert where, "give a resource, an actor or a client"
    args.append(limit)
    sql = f"SELECT {EVENT_COLUMNS} FROM event_log WHERE {' AND '.join(where)} ORDER BY position LIMIT ${len(args)}"
    return [stored_event(r) for r in await conn.fetch(sql, *args)]
