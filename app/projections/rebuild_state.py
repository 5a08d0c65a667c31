"""The state of a rebuild in progress, stored in ``projection_state.rebuild`` (JSON) in the same
transaction as each batch it records, so a killed rebuild resumes where it was:

- ``versions``: the projectors' versions the shadow tables are built for (a rebuild whose code
  changed meanwhile starts again);
- ``checkpoint``: the highest log position replayed so far (shown by ``projections status``);
- while the bulk load runs, ``load``: ``horizon`` (the transaction id below which it loads the last
  event of each resource) and ``after`` (the log position it goes on after; None: it is done);
- then the gap-free reader's cursor: ``tx`` and ``position`` (``checkpoint`` when absent);
- ``indexes``: the shadow tables' indexes still to build (:mod:`app.projections.shadow_indexes`).
"""

from __future__ import annotations

import asyncpg
import orjson

from app.events.feed import FeedCursor
from app.projections.state import expected_version, projection_name

SHADOW = "__s"  # the suffix of the shadow tables a rebuild fills

LAST_POSITION = 2**63 - 1
"""A cursor ``(horizon - 1, LAST_POSITION)`` lies after every event of a transaction below the
horizon and before every event of the others."""


class RebuildInterrupted(Exception):
    """Raised by a test hook to simulate a rebuild killed between batches."""


def versions_of(resource_type: str) -> dict[str, str]:
    return {k: expected_version(k, resource_type) for k in ("current_state", "search_index")}


def resume_cursor(state: dict | None) -> FeedCursor | None:
    """The reader's cursor stored in a rebuild's state (None: from the start)."""
    if not state or "tx" not in state:
        return None
    return FeedCursor(int(state["tx"]), int(state.get("position", state["checkpoint"])))


def feed_state(versions: dict, cursor: FeedCursor | None, checkpoint: int | None = None) -> dict:
    """The state of the replay by the gap-free reader, at ``cursor``."""
    if cursor is None:
        return {"versions": versions, "checkpoint": checkpoint or 0}
    state = {"versions": versions, "checkpoint": cursor.position, "tx": cursor.tx}
    if checkpoint is not None and checkpoint != cursor.position:
        state.update(checkpoint=checkpoint, position=cursor.position)
    return state


async def load_state(conn: asyncpg.Connection | asyncpg.Pool, resource_type: str) -> dict | None:
    row = await conn.fetchrow(
        "SELECT rebuild FROM projection_state WHERE name = $1", projection_name("current_state", resource_type)
    )
    return orjson.loads(row["rebuild"]) if row and row["rebuild"] else None


async def save(conn: asyncpg.Connection, resource_type: str, state: dict | None, status: str | None) -> None:
    for kind in ("current_state", "search_index"):
        await conn.execute(
            "INSERT INTO projection_state (name, kind, resource_type, version, status, rebuild)"
            " VALUES ($1, $2, $3, $4, COALESCE($6, 'ready'), $5::jsonb)"
            " ON CONFLICT (name) DO UPDATE SET rebuild = EXCLUDED.rebuild,"
            " status = COALESCE($6, projection_state.status), updated_at = now()",
            projection_name(kind, resource_type),
            kind,
            resource_type,
            expected_version(kind, resource_type),
            orjson.dumps(state).decode() if state else None,
            status,
        )
