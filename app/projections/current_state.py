"""The current-state projection: one table per resource type holding the current version.

Columns: ``id``, ``version``, ``deleted`` (a tombstone row keeps "gone" distinguishable from
"never existed"), ``last_updated``, ``position`` (of the event that built the row) and ``key``: the
position of the resource's first event (its lowest version), the integer the search side tables name
the resource by (a bigint is 8 bytes in every side-table row and index entry where the text id was
a 36-character uuid). It is a function of the log, so replay reproduces it; an upsert never changes
it and a tombstone keeps its row, so a resource keeps its key for good. The JSON
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
from app.events.codec import decoded
from app.events.latest import first_position_sql, first_positions
from app.events.model import EventKind, VersionEvent
from app.fhirspec.resource_types import resource_types, table_suffix
from app.joined_text import array_sql, sent_columns

COLUMNS = ("id", "version", "deleted", "last_updated", "position", "key")


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
        " last_updated timestamptz NOT NULL, position bigint NOT NULL, key bigint NOT NULL UNIQUE);"
    )


def current_state_ddl() -> str:
    return "\n".join(table_ddl(t) for t in resource_types())


def _on_conflict(table: str) -> str:
    return (
        " ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version,"
        " deleted = EXCLUDED.deleted, last_updated = EXCLUDED.last_updated, position = EXCLUDED.position"
        f" WHERE {table}.version < EXCLUDED.version"
    )


def key_sql(resource_type: str, key: str, rid: str, table: str) -> str:
    """The key of a new row: ``key`` (SQL; NULL when the batch did not hold the resource's first
    event), else the existing row's in ``table`` (the row the upsert's conflict keeps: one probe of
    the primary key the conflict check reads anyway), else the position of its first event, from
    the log (only a row that does not exist yet keeps it: an upsert leaves an existing row's key)."""
    existing = f"(SELECT k.key FROM {table} k WHERE k.id = {rid})"
    return f"coalesce({key}, {existing}, {first_position_sql(resource_type, rid)})"


@cache
def _upsert_sql(resource_type: str, suffix: str = "") -> str:
    table = current_table(resource_type) + suffix
    values = f"$1, $2, $3, $4, $5, {key_sql(resource_type, '$6::bigint', '$1', table)}"
    return f"INSERT INTO {table} ({', '.join(COLUMNS)}) VALUES ({values})" + _on_conflict(table)


COLUMN_TYPES = ("text", "int", "boolean", "timestamptz", "bigint", "bigint")
"""The SQL types of :data:`COLUMNS`."""


@cache
def _upsert_many_sql(resource_type: str, suffix: str = "", joined: bool = False) -> str:
    """The upsert of many rows (distinct ids) in one statement, from one array per column, each
    one string when ``joined`` (:func:`app.joined_text.sent_columns`)."""
    table = current_table(resource_type) + suffix
    arrays = ", ".join(array_sql(n, t, joined) for n, t in enumerate(COLUMN_TYPES, 1))
    values = f"u.i, u.v, u.d, u.t, u.p, {key_sql(resource_type, 'u.k', 'u.i', table)}"
    return (
        f"INSERT INTO {table} ({', '.join(COLUMNS)}) SELECT {values} FROM unnest({arrays}) AS u(i, v, d, t, p, k)"
        + _on_conflict(table)
    )


def upsert_from_sql(resource_type: str, values: Sequence[str], source: str, returning: str = "key") -> str:
    """The upsert of rows as the body of a data-modifying CTE: ``values`` are SQL expressions of
    the columns in :data:`COLUMNS` order (the position one may name a column of ``source``, the
    FROM clause the rows come from, e.g. the CTE that appended their events; the key one may be
    :func:`key_sql`). It returns ``returning``: the row's ``key`` (the existing row's, on a
    conflict) unless told otherwise."""
    table = current_table(resource_type)
    sql = f"INSERT INTO {table} ({', '.join(COLUMNS)}) SELECT {', '.join(values)} FROM {source}"
    return sql + _on_conflict(table) + f" RETURNING {returning}"


CurrentRows = dict[str, list[tuple]]
"""resource type -> rows ``(id, version, deleted, last_updated, position, key)``; ``key`` None when
the batch does not hold the resource's first event (the row's existing key stays)."""


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
            earlier = last.get((e.resource_type, e.resource_id))
            key = pos if e.version == 1 else earlier[5] if earlier is not None else None
            row = (e.resource_id, e.version, e.kind is EventKind.DELETED, e.recorded_at, pos, key)
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
                type_rows = await _keyed(conn, resource_type, table, type_rows)
                await conn.execute(f"DELETE FROM {table} WHERE id = ANY($1)", [r[0] for r in type_rows])
                await conn.copy_records_to_table(table, records=type_rows, columns=list(COLUMNS))
            elif len(type_rows) == 1:
                await conn.execute(_upsert_sql(resource_type, self.suffix), *type_rows[0])
            else:  # one statement (``rows`` gives each id once), not one execution per row
                columns = list(zip(*type_rows, strict=True))
                args = sent_columns(COLUMN_TYPES, columns)
                sql = _upsert_many_sql(resource_type, self.suffix, args is not None)
                await conn.execute(sql, *(args or [list(c) for c in columns]))


async def _keyed(conn: asyncpg.Connection, resource_type: str, table: str, rows: list[tuple]) -> list[tuple]:
    """``rows`` with every key known: the table's for a resource it holds, else the log's."""
    missing = [r[0] for r in rows if r[5] is None]
    if not missing:
        return rows
    found = await conn.fetch(f"SELECT id, key FROM {table} WHERE id = ANY($1::text[])", missing)
    keys = {r["id"]: r["key"] for r in found}
    if len(keys) < len(missing):
        keys |= await first_positions(conn, resource_type, [i for i in missing if i not in keys])
    return [r if r[5] is not None else (*r[:5], keys[r[0]]) for r in rows]


async def keys_of(conn: asyncpg.Connection, table: str, ids: list[str]) -> dict[str, int]:
    """id -> key of the resources ``ids`` the current-state table ``table`` holds."""
    rows = await conn.fetch(f"SELECT id, key FROM {table} WHERE id = ANY($1::text[])", ids)
    return {r["id"]: r["key"] for r in rows}


@dataclass(frozen=True, slots=True)
class Head:
    """The current version of one resource, as the projection holds it."""

    version: int
    deleted: bool
    last_updated: datetime
    resource: bytes | None


def _head(row: asyncpg.Record) -> Head:
    """A head from a row of :func:`_head_sql` or ``lock_then_head``: its resource the JSON bytes."""
    return Head(row["version"], row["deleted"], row["last_updated"], decoded(row["resource"]))


@cache  # per type and condition: built on every read otherwise (a visible share of its CPU)
def _head_sql(resource_type: str, where: str) -> str:
    return (
        f"SELECT c.id, c.version, c.deleted, c.last_updated, {resource_sql('c')} AS resource"
        f" FROM {current_table(resource_type)} c WHERE {where}"
    )


async def read_head(conn: asyncpg.Connection | asyncpg.Pool, resource_type: str, resource_id: str) -> Head | None:
    row = await conn.fetchrow(_head_sql(resource_type, "c.id = $1"), resource_id)
    if row is None:
        return None
    return _head(row)


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
    return _head(row)


async def read_heads(conn: asyncpg.Connection, resource_type: str, ids: list[str]) -> dict[str, Head]:
    rows = await conn.fetch(_head_sql(resource_type, "c.id = ANY($1)"), ids)
    return {r["id"]: _head(r) for r in rows}


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


async def add_keys(conn: asyncpg.Connection) -> list[str]:
    """Migration 24: the current-state tables of the layout before the integer key gain it, each
    row's from the log (the position of its resource's first event), so the table stays valid
    without a rebuild. Returns the tables changed."""
    rows = await conn.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        " AND table_name LIKE 'cur\\_%' AND table_name NOT IN (SELECT table_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND column_name = 'key')"
    )
    present = {r["table_name"] for r in rows or ()}  # none from the schema printer (app/cli_schema.py)
    changed = [(t, current_table(t)) for t in resource_types() if current_table(t) in present]
    for resource_type, table in changed:  # one transaction per table (migration 24 takes its own)
        async with conn.transaction():
            await conn.execute(
                f"ALTER TABLE {table} ADD COLUMN key bigint;"
                f"UPDATE {table} c SET key = {first_position_sql(resource_type, 'c.id')};"
                f"ALTER TABLE {table} ALTER COLUMN key SET NOT NULL, ADD UNIQUE (key);"
            )
    return [table for _, table in changed]
