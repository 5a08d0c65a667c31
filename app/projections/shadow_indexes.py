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
    "SELECT conrelid::regclass::text AS tbl, conname, pg_get_constraintdef(oid) AS def FROM pg_constraint"
    " WHERE conrelid = ANY($1::regclass[]) AND conindid <> 0"
)
_INDEXES = (
    "SELECT c.relname AS name, pg_get_indexdef(i.indexrelid) AS def FROM pg_index i"
    " JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = ANY($1::regclass[])"
    " AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)"
)


def _if_not_exists(definition: str) -> str:
    definition = definition.replace("CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ", 1)
    return definition.replace("CREATE UNIQUE INDEX ", "CREATE UNIQUE INDEX IF NOT EXISTS ", 1)


async def strip_indexes(conn: asyncpg.Connection, tables: Sequence[str]) -> list[IndexDDL]:
    """Drop the indexes (and index-backed constraints) of the empty ``tables``; returns what
    builds them again (:func:`build_indexes`). Two catalog reads and one batch of statements."""
    out: list[IndexDDL] = []
    drops: list[str] = []
    for row in await conn.fetch(_CONSTRAINTS, list(tables)):
        out.append([row["conname"], f'ALTER TABLE {row["tbl"]} ADD CONSTRAINT "{row["conname"]}" {row["def"]}'])
        drops.append(f'ALTER TABLE {row["tbl"]} DROP CONSTRAINT "{row["conname"]}"')
    for row in await conn.fetch(_INDEXES, list(tables)):
        out.append([row["name"], _if_not_exists(row["def"])])
        drops.append(f'DROP INDEX "{row["name"]}"')
    if drops:
        await conn.execute(";\n".join(drops))
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
