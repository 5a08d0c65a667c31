"""The current-state projection: one table per resource type holding the current version.

Columns: ``id``, ``version``, ``deleted`` (a tombstone row keeps "gone" distinguishable from
"never existed"), ``last_updated`` and ``position`` (of the event that built the row). The JSON
bytes exactly as served are not copied here: they are the event's, read from the log by position
(:func:`resource_sql`, one probe of the log's primary key; NULL for a tombstone), so each version
is stored once. Fed only by this projector, which is a pure function of the events: replaying the
log rebuilds the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache

import asyncpg

from app.events.by_position import resource_at
from app.events.model import EventKind, VersionEvent
from app.fhirspec.resource_types import resource_types, table_suffix

COLUMNS = ("id", "version", "deleted", "last_updated", "position")


def resource_sql(alias: str) -> str:
    """The resource bytes of the current-state row ``alias``: its event's, from the log."""
    return resource_at(f"{alias}.position")


def current_table(resource_type: str) -> str:
    """The current-state table of a registry type (a safe SQL identifier)."""
    return f"cur_{table_suffix(resource_type)}"


def table_ddl(resource_type: str, suffix: str = "") -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {current_table(resource_type)}{suffix} ("
        " id text PRIMARY KEY, version integer NOT NULL, deleted boolean NOT NULL,"
        " last_updated timestamptz NOT NULL, position bigint NOT NULL);"
    )


def current_state_ddl() -> str:
    return "\n".join(table_ddl(t) for t in resource_types())


def _on_conflict(table: str) -> str:
    return (
        " ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version,"
        " deleted = EXCLUDED.deleted, last_updated = EXCLUDED.last_updated, position = EXCLUDED.position"
        f" WHERE {table}.version < EXCLUDED.version"
    )


@cache
def _upsert_sql(resource_type: str, suffix: str = "") -> str:
    table = current_table(resource_type) + suffix
    return f"INSERT INTO {table} ({', '.join(COLUMNS)}) VALUES ($1, $2, $3, $4, $5)" + _on_conflict(table)


@cache
def _upsert_many_sql(resource_type: str, suffix: str = "") -> str:
    """The upsert of many rows (distinct ids) in one statement, from one array per column."""
    table = current_table(resource_type) + suffix
    arrays = "$1::text[], $2::int[], $3::boolean[], $4::timestamptz[], $5::bigint[]"
    return f"INSERT INTO {table} ({', '.join(COLUMNS)}) SELECT * FROM unnest({arrays})" + _on_conflict(table)


def upsert_from_sql(resource_type: str, values: Sequence[str], source: str) -> str:
    """The upsert of one row as the body of a data-modifying CTE: ``values`` are SQL expressions of
    the columns in :data:`COLUMNS` order (the position one may name a column of ``source``, the
    FROM clause the row comes from, e.g. the CTE that appended its event)."""
    table = current_table(resource_type)
    return f"INSERT INTO {table} ({', '.join(COLUMNS)}) SELECT {', '.join(values)} FROM {source}" + _on_conflict(table)


CurrentRows = dict[str, list[tuple]]
"""resource type -> rows ``(id, version, deleted, last_updated, position)``."""


class CurrentStateProjector:
    """Keeps the current version of each resource; ``suffix`` names shadow tables during a rebuild.

    :meth:`rows` is pure (the last event of each resource in the batch counts) and :meth:`write`
    the one writer of the tables: the inline path, replay and its catch-up all call these two."""

    name = "current_state"
    version = "cs-1"  # bump when what this projector writes changes (cs-1 rows stay valid without ``resource``)

    def __init__(self, suffix: str = "") -> None:
        self.suffix = suffix

    def rows(self, events: Sequence[VersionEvent], positions: Sequence[int]) -> CurrentRows:
        last: dict[tuple[str, str], tuple] = {}
        for e, pos in zip(events, positions, strict=True):
            row = (e.resource_id, e.version, e.kind is EventKind.DELETED, e.recorded_at, pos)
            last[(e.resource_type, e.resource_id)] = row
        out: CurrentRows = {}
        for (resource_type, _), row in last.items():
            out.setdefault(resource_type, []).append(row)
        return out

    async def load(self, conn: asyncpg.Connection, resource_type: str, data: bytes) -> None:
        """Add the rows of resources that have none yet, as COPY text data
        (:func:`app.projections.copy_text.encode` of :meth:`rows`; replay's bulk load)."""
        table = current_table(resource_type) + self.suffix
        await conn.copy_to_table(table, source=memoryview(data), columns=list(COLUMNS), format="text")

    async def write(self, conn: asyncpg.Connection, rows: CurrentRows, bulk: bool = False) -> None:
        """Upsert (a row only ever moves to a higher version); with ``bulk`` (a replay batch in
        position order, so never behind the table), replace the rows and COPY the new ones."""
        for resource_type, type_rows in rows.items():
            table = current_table(resource_type) + self.suffix
            if bulk:
                await conn.execute(f"DELETE FROM {table} WHERE id = ANY($1)", [r[0] for r in type_rows])
                await conn.copy_records_to_table(table, records=type_rows, columns=list(COLUMNS))
            elif len(type_rows) == 1:
                await conn.execute(_upsert_sql(resource_type, self.suffix), *type_rows[0])
            else:  # one statement (``rows`` gives each id once), not one execution per row
                columns = [list(c) for c in zip(*type_rows, strict=True)]
                await conn.execute(_upsert_many_sql(resource_type, self.suffix), *columns)


@dataclass(frozen=True, slots=True)
class Head:
    """The current version of one resource, as the projection holds it."""

    version: int
    deleted: bool
    last_updated: datetime
    resource: bytes | None


def _head_sql(resource_type: str, where: str) -> str:
    return (
        f"SELECT c.id, c.version, c.deleted, c.last_updated, {resource_sql('c')} AS resource"
        f" FROM {current_table(resource_type)} c WHERE {where}"
    )


async def read_head(conn: asyncpg.Connection | asyncpg.Pool, resource_type: str, resource_id: str) -> Head | None:
    row = await conn.fetchrow(_head_sql(resource_type, "c.id = $1"), resource_id)
    if row is None:
        return None
    return Head(row["version"], row["deleted"], row["last_updated"], row["resource"])


# Take a write's per-resource advisory lock, then read the resource's current row: one round trip.
# A VOLATILE plpgsql function runs each statement in a new snapshot, so the read sees every write
# that committed while the lock was awaited (the statement's own snapshot predates the wait).
LOCK_THEN_HEAD_DDL = f"""
CREATE OR REPLACE FUNCTION lock_then_head(lock_key text, cur_table regclass, rid text)
RETURNS TABLE (version integer, deleted boolean, last_updated timestamptz, resource bytea)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(lock_key, 0));
    RETURN QUERY EXECUTE format('SELECT c.version, c.deleted, c.last_updated, {resource_sql("c")}'
        ' FROM %s c WHERE c.id = $1', cur_table)
        USING rid;
END $$;
"""


async def lock_then_read_head(
    conn: asyncpg.Connection, lock_key: str, resource_type: str, resource_id: str
) -> Head | None:
    """Inside a transaction: take the advisory lock ``lock_key``, then read the current row."""
    row = await conn.fetchrow(
        "SELECT * FROM lock_then_head($1, $2::regclass, $3)", lock_key, current_table(resource_type), resource_id
    )
    if row is None:
        return None
    return Head(row["version"], row["deleted"], row["last_updated"], row["resource"])


async def read_heads(conn: asyncpg.Connection, resource_type: str, ids: list[str]) -> dict[str, Head]:
    rows = await conn.fetch(_head_sql(resource_type, "c.id = ANY($1)"), ids)
    return {r["id"]: Head(r["version"], r["deleted"], r["last_updated"], r["resource"]) for r in rows}


async def drop_resource_copies(conn: asyncpg.Connection) -> list[str]:
    """Migration 18: the current-state tables (shadows of an unfinished rebuild too) of the layout
    that copied the resource bytes lose that column. Dropping it only hides it (no rewrite): the
    bytes' space is reclaimed when the table is next rebuilt (``fhirledger projections rebuild``)
    or rewritten. Returns the tables changed."""
    rows = await conn.fetch(
        "SELECT table_name FROM information_schema.columns WHERE table_schema = current_schema()"
        " AND table_name LIKE 'cur\\_%' AND column_name = 'resource' ORDER BY table_name"
    )
    tables = [r["table_name"] for r in rows or ()]  # none from the schema printer (app/cli_schema.py)
    if tables:
        await conn.execute("".join(f'ALTER TABLE "{t}" DROP COLUMN resource;' for t in tables))
    await conn.execute(LOCK_THEN_HEAD_DDL)
    return tables
