"""Rebuilding the projections of a type the event log holds no event of: its tables recreated
empty, in one short transaction, instead of the shadow-table rebuild (:mod:`app.projections.rebuild`).

A rebuild of every type (``fhirledger projections rebuild --all``) meets mostly such types: a
Synthea population uses 16 of R4's 146 resource types. The shadow-table path took 0.2-0.3 s for
each of the others (shadow tables created, indexes stripped and built, ``VACUUM (ANALYZE)``, the
swap's renames, each step its own round trips and commits): 23 of the 63 s of a rebuild of a
188,028-resource Synthea database (session 18). Here one transaction does it:

1. ``LOCK`` the live current-state table in ACCESS EXCLUSIVE mode, as the swap does: every writer
   of the type writes that table before its commit, so once the lock is held every write of the
   type has committed or rolled back, or waits and projects into the new tables after the commit;
2. look for an event of the type in the log: if there is one, nothing is changed and the caller
   takes the shadow-table path (the log is looked at once before the lock too, so that a type with
   events is never locked here: its writers go on while its shadow tables are built);
3. drop the live tables (and a shadow left by an interrupted rebuild), create them with the
   current DDL, the lookup indexes at once (on empty tables they cost nothing to build), and
   record both projections ready at the current versions.

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
from app.projections.state import KINDS, expected_version, projection_name


def live_tables(resource_type: str) -> list[str]:
    """The type's projection tables: its current-state table and its search side tables."""
    return [current_table(resource_type)] + [search_table(resource_type, k) for k in SEARCH_KINDS]


async def recreate_if_empty(pool: asyncpg.Pool, resource_type: str) -> bool:
    """Recreate the type's projection tables empty if the log holds none of its events; returns
    whether it did (False: the log holds some, and nothing was changed)."""
    if await max_position(pool, resource_type):
        return False  # without the lock: a type with events is rebuilt while its writers go on
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(f"LOCK TABLE {current_table(resource_type)} IN ACCESS EXCLUSIVE MODE")
        if await max_position(conn, resource_type):
            return False  # its first event committed meanwhile
        tables = live_tables(resource_type)
        await conn.execute(
            ";\n".join(f"DROP TABLE IF EXISTS {t}{suffix}" for t in tables for suffix in ("", SHADOW))
            + ";\n"
            + table_ddl(resource_type)
            + "\n"
            + search_index_ddl(resource_type)
        )
        await conn.executemany(
            "UPDATE projection_state SET version = $2, status = 'ready', checkpoint = 0, rebuild = NULL,"
            " updated_at = now() WHERE name = $1",
            [(projection_name(kind, resource_type), expected_version(kind, resource_type)) for kind in KINDS],
        )
    return True
