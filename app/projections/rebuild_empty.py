"""Rebuilding the projections of a type the event log holds no event of: its tables recreated
empty, in one short transaction, instead of the shadow-table rebuild (:mod:`app.projections.rebuild`).

A rebuild of every type (``fhirledger projections rebuild --all``) meets mostly such types: a
Synthea population uses 16 of R4's 146 resource types. The shadow-table path took 0.2-0.3 s for
each of the others (shadow tables created, indexes stripped and built, ``VACUUM (ANALYZE)``, the
swap's renames, each step its own round trips and commits): the 131 others took 36-48 s between
them, two at a time, in rebuilds of 188,028 Synthea resources that lasted 59-71 s; with this
module, 1.4-1.8 s, and the rebuilds 41 s (``bench/replay_data_dir.py``, session 18). Here one
transaction does it:

1. ``LOCK`` the live current-state table in ACCESS EXCLUSIVE mode, as the swap does: every writer
   of the type writes that table before its commit, so once the lock is held every write of the
   type has committed or rolled back, or waits and projects into the new tables after the commit;
2. look for an event of the type in the log: if there is one, nothing is changed and the caller
   takes the shadow-table path (the log is looked at once before the lock too, so that a type with
   events is never locked here: its writers go on while its shadow tables are built);
3. if the projections already are what this rebuild would make (ready at the current versions,
   no row, no shadow left), leave them; else drop the live tables (and a shadow left by an
   interrupted rebuild), create them with the current DDL, the lookup indexes at once (on empty
   tables they cost nothing to build), and record both projections ready at the current versions.

The tables are what the shadow-table path leaves for an empty log (same DDL, same names, no rows),
and any row that should not be there (drift) is gone, as after any rebuild."""

from __future__ import annotations

import asyncpg

from app.events.store import max_position
from app.projections.current_state import current_table, table_ddl
from app.projections.rebuild_state import SHADOW
from app.projections.search_ddl import search_index_ddl
from app.projections.search_index import KINDS as SEARCH_KINDS
from app.projections.search_index import search_table
from app.projections.state import current_versions, record_rebuilt


def live_tables(resource_type: str) -> list[str]:
    """The type's projection tables: its current-state table and its search side tables."""
    return [current_table(resource_type)] + [search_table(resource_type, k) for k in SEARCH_KINDS]


async def _as_rebuilt(conn: asyncpg.Connection, resource_type: str) -> bool:
    """Whether the type's projections already are what a rebuild from its empty log makes: both
    ready at the current versions at checkpoint 0, no rebuild under way, no shadow table left and
    not a row in any table (the live DDL is the current one: a version names its layout). Most
    types of a database are so; recreating their tables cost about 70 ms each."""
    names = current_versions(resource_type)
    states = await conn.fetch(
        "SELECT name, version, status, checkpoint, rebuild FROM projection_state WHERE name = ANY($1::text[])",
        list(names),
    )
    if {s["name"]: (s["version"], s["status"], s["checkpoint"], s["rebuild"]) for s in states} != {
        name: (version, "ready", 0, None) for name, version in names.items()
    }:
        return False
    tables = live_tables(resource_type)
    found = await conn.fetchval(
        "SELECT bool_or(to_regclass(n) IS NOT NULL) FROM unnest($1::text[]) AS n", [t + SHADOW for t in tables]
    )
    if found:
        return False
    return not await conn.fetchval("SELECT " + " OR ".join(f"EXISTS (SELECT FROM {t})" for t in tables))


async def recreate_if_empty(pool: asyncpg.Pool, resource_type: str) -> bool:
    """Recreate the type's projection tables empty if the log holds none of its events (unless they
    already are as rebuilt, :func:`_as_rebuilt`); returns whether the type is done (False: the log
    holds some, and nothing was changed)."""
    if await max_position(pool, resource_type):
        return False  # without the lock: a type with events is rebuilt while its writers go on
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(f"LOCK TABLE {current_table(resource_type)} IN ACCESS EXCLUSIVE MODE")
        if await max_position(conn, resource_type):
            return False  # its first event committed meanwhile
        if await _as_rebuilt(conn, resource_type):
            return True
        tables = live_tables(resource_type)
        await conn.execute(
            ";\n".join(f"DROP TABLE IF EXISTS {t}{suffix}" for t in tables for suffix in ("", SHADOW))
            + ";\n"
            + table_ddl(resource_type)
            + "\n"
            + search_index_ddl(resource_type)
        )
        await record_rebuilt(conn, resource_type, 0)
    return True
