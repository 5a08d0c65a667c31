"""The indexes of a rebuild's shadow tables: dropped while the bulk load fills the tables, built
afterwards (one sorted build is far cheaper than maintaining an index row by row), the builds
spread over several connections so that every core works.

:func:`strip_indexes` reads the definitions of the indexes the tables were created with (the
``id`` indexes, the current-state table's primary key) from the catalog, so whatever DDL created
the tables is what gets built again; the definitions are kept in the rebuild's state, so a rebuild
killed before the build still builds them when it resumes."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import asyncpg

IndexDDL = list[str]
"""[index name, the statement building it]: the statement runs unless the index exists."""

_CONSTRAINTS = (
    "SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint"
    " WHERE conrelid = $1::regclass AND conindid <> 0"
)
_INDEXES = (
    "SELECT c.relname AS name, pg_get_indexdef(i.indexrelid) AS def FROM pg_index i"
    " JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = $1::regclass"
)


async def strip_indexes(conn: asyncpg.Connection, tables: Sequence[str]) -> list[IndexDDL]:
    """Drop the indexes (and index-backed constraints) of the empty ``tables``; returns what
    builds them again (:func:`build_indexes`)."""
    out: list[IndexDDL] = []
    for table in tables:
        for row in await conn.fetch(_CONSTRAINTS, table):
            out.append([row["conname"], f'ALTER TABLE {table} ADD CONSTRAINT "{row["conname"]}" {row["def"]}'])
            await conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{row["conname"]}"')
        for row in await conn.fetch(_INDEXES, table):
            definition = row["def"].replace("CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ", 1)
            out.append(
                [row["name"], definition.replace("CREATE UNIQUE INDEX ", "CREATE UNIQUE INDEX IF NOT EXISTS ", 1)]
            )
            await conn.execute(f'DROP INDEX "{row["name"]}"')
    return out


async def run_spread(pool: asyncpg.Pool, statements: Sequence[str], connections: int = 2) -> None:
    """Run independent statements (index builds, ``VACUUM``) over ``connections`` connections at a
    time, each taking the next statement when it is done."""
    queue = list(reversed(statements))

    async def work() -> None:
        async with pool.acquire() as conn:
            while queue:
                await conn.execute(queue.pop())

    await asyncio.gather(*(work() for _ in range(max(1, min(connections, len(statements))))))


async def build_indexes(pool: asyncpg.Pool, stripped: Sequence[IndexDDL], more: Sequence[str]) -> None:
    """Build the stripped indexes that do not exist yet and the statements ``more`` (lookup indexes,
    ``CREATE INDEX IF NOT EXISTS``)."""
    names = [name for name, _ in stripped]
    existing = {
        r["n"] for r in await pool.fetch("SELECT n FROM unnest($1::text[]) n WHERE to_regclass(n) IS NOT NULL", names)
    }
    await run_spread(pool, [sql for name, sql in stripped if name not in existing] + list(more))
