"""Appending many version events at once with ``COPY`` (the bulk import): the same rows
:func:`app.events.store.append` inserts, streamed in one ``COPY`` instead of ``INSERT`` statements.

The log assigns each row its position (an identity column) and the transaction's ``tx_id``; the
positions are read back by the writing transaction's id, so they belong to the caller's events.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from app.events.model import VersionEvent
from app.events.store import event_values

_COLUMNS = [
    "resource_type",
    "resource_id",
    "version",
    "kind",
    "resource",
    "recorded_at",
    "method",
    "url",
    "actor",
    "client_addr",
    "request_id",
    "client_id",
    "scope_kind",
]

_POSITIONS = (
    "SELECT position, resource_type, resource_id, version FROM event_log"
    " WHERE tx_id = pg_current_xact_id() AND position > $1 ORDER BY position"
)


async def copy_append(conn: asyncpg.Connection, events: Sequence[VersionEvent]) -> list[int]:
    """Append ``events`` with one COPY inside the caller's transaction; returns their positions in
    the order of ``events``. The (type, id, version) constraint still guards every row."""
    if not events:
        return []
    floor = await conn.fetchval("SELECT coalesce(max(position), 0) FROM event_log WHERE tx_id = pg_current_xact_id()")
    await conn.copy_records_to_table("event_log", records=[event_values(e) for e in events], columns=_COLUMNS)
    rows = await conn.fetch(_POSITIONS, floor)
    found = {(r["resource_type"], r["resource_id"], r["version"]): r["position"] for r in rows}
    return [found[(e.resource_type, e.resource_id, e.version)] for e in events]
