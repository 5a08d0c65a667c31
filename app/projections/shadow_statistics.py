"""The statistics of a rebuild's shadow tables, gathered once they are loaded and indexed.

Each side table with a parameter hash gives that column a statistics target of 300
(:data:`app.search_types.protocol.HASH_STATISTICS`), and ANALYZE samples 300 rows per unit of the
highest target of the columns it analyzes, for every one of them: a plain ``VACUUM (ANALYZE)``
analyzes every column of those tables over 90,000 rows (300,000 while the target was 1,000, then
the largest PostgreSQL cost of a replay after the load). Here the hash and the columns of the
table's dependency statistics are analyzed so, and the other columns apart, over the 30,000 rows
their own target asks for: each column gets the statistics its target gives, for less (at the
target of 1,000: about 40% less on the token table; 15-60% less on the Observation tables of a
million resources). A table with an expression index is analyzed whole (only an ANALYZE without
columns gathers the statistics of index expressions).

An ANALYZE of some columns leaves the table's count of rows changed since the last analyze as it
was (PostgreSQL resets it only after an ANALYZE of the whole table): every row the load inserted
then still counted, and autovacuum analyzed each such table again, whole, over all the rows its
hash target asks for, soon after the swap (about a tenth of PostgreSQL's CPU in a replay, all of
it a repeat of statistics just gathered). So the counters of those tables are reset once they are
analyzed (:func:`reset_statements`), where the role may (a superuser, or one granted
``pg_stat_reset_single_table_counters``); elsewhere the tables are analyzed whole, once.

Each ``VACUUM`` skips the database-wide statistics of the oldest unfrozen transaction ids
(``SKIP_DATABASE_STATS``): by default every ``VACUUM`` ends by scanning the whole of ``pg_class``
for them (about 1.3 ms with the catalog of the registry's side tables, ~9,600 relations), once per
shadow table; a freshly loaded table never holds the oldest id, and autovacuum updates them anyway.
PostgreSQL 15 has no such option (:func:`vacuum_command`)."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from app.projections.current_state import current_table
from app.projections.rebuild_state import SHADOW
from app.search_types.registry import TABLES, search_table

VACUUM = "VACUUM (ANALYZE, SKIP_DATABASE_STATS)"
"""The vacuum (and statistics) of a shadow table (see the module docstring), PostgreSQL 16 on."""
VACUUM_15 = "VACUUM (ANALYZE)"


async def vacuum_command(pool: asyncpg.Pool) -> str:
    """:data:`VACUUM`, or :data:`VACUUM_15` on a server before PostgreSQL 16."""
    version = int(await pool.fetchval("SELECT current_setting('server_version_num')"))
    return VACUUM if version >= 160000 else VACUUM_15


_EXPRESSION_INDEXED = (
    "SELECT DISTINCT indrelid::regclass::text AS t FROM pg_index"
    " WHERE indrelid = ANY($1::regclass[]) AND indexprs IS NOT NULL"
)


async def analyzed_whole(pool: asyncpg.Pool, tables: Sequence[str]) -> set[str]:
    """Those of ``tables`` with an expression index."""
    return {r["t"] for r in await pool.fetch(_EXPRESSION_INDEXED, list(tables))}


async def may_reset_counters(pool: asyncpg.Pool) -> bool:
    """Whether this role may reset a table's statistics counters (a superuser, or granted it)."""
    return bool(await pool.fetchval(_MAY_RESET))


_MAY_RESET = "SELECT has_function_privilege('pg_stat_reset_single_table_counters(oid)', 'EXECUTE')"


def analyzed_apart(resource_type: str, whole: set[str]) -> list[str]:
    """The shadow tables of the type whose columns :func:`analyze_statements` analyzes apart."""
    tables = [search_table(resource_type, kind) + SHADOW for kind, side in TABLES.items() if side.hash is not None]
    return [t for t in tables if t not in whole]


def reset_statements(tables: Sequence[str]) -> list[str]:
    """Reset the statistics counters of ``tables`` (analyzed by columns: see the module docstring)."""
    return [f"SELECT pg_stat_reset_single_table_counters('{t}'::regclass)" for t in tables]


def analyze_statements(resource_type: str, whole: set[str], vacuum: str = VACUUM) -> list[str]:
    """``VACUUM (ANALYZE)`` of each shadow table of the type (the hash and its dependent columns
    only where they can go apart), then the ``ANALYZE`` of the other columns: after every
    ``VACUUM``, so that the two statements of a table rarely wait for each other's lock. ``vacuum``:
    the command (:func:`vacuum_command`)."""
    first = [f"{vacuum} {current_table(resource_type)}{SHADOW}"]
    then: list[str] = []
    for kind, side in TABLES.items():
        table = search_table(resource_type, kind) + SHADOW
        if side.hash is None or table in whole:
            first.append(f"{vacuum} {table}")
            continue
        sampled = ("hash", *side.depends)
        rest = [c for c in ("key", "param", *(c for c, _ in side.columns), *side.generated_names) if c not in sampled]
        first.append(f"{vacuum} {table} ({', '.join(sampled)})")
        then.append(f"ANALYZE {table} ({', '.join(rest)})")
    return first + then
