"""Bringing the search side tables of an older layout to the current one (migration 13).

Columns the layout no longer has (the token table's ``text``, migration 18) are dropped. A table
that lacks a generated column of its kind (the parameter hashes, the date ``span``) is emptied and
given it, its dependency statistics made anew: computing the column would rewrite every row, and
the projection is stale anyway (its layout version changed, so searches of the type answer 503
until ``fhirledger projections rebuild`` has replayed the log into it). Lookup indexes the layout
no longer has are dropped, missing ones (and the dependency statistics) created. A table that
lacks a column the projector writes (the integer ``key`` before migration 24; the token
``system_hash`` and the reference ``target_uuid`` before migration 27) is dropped and created
anew, empty (its projection is stale too; its generated columns' expressions may have changed
with it, and the new table has the layout's column order). A database created by this code has
nothing to change."""

from __future__ import annotations

import asyncpg

from app.fhirspec.resource_types import resource_types
from app.search_types.protocol import HASH_STATISTICS, SideTable, stored_name
from app.search_types.registry import TABLES, search_table
from app.search_types.text import PENDING_LIST_KB

_COLUMNS = (
    "SELECT table_name, column_name FROM information_schema.columns"
    " WHERE table_schema = current_schema() AND table_name LIKE 'sp\\_%'"
)
_STATISTICS = "SELECT stxname FROM pg_statistic_ext WHERE stxnamespace = current_schema()::regnamespace"
_INDEXES = "SELECT tablename, indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename LIKE 'sp\\_%'"


async def upgrade_search_layout(conn: asyncpg.Connection) -> list[str]:
    """Apply what the live side tables lack, one transaction per resource type (all types at once
    can take more locks than a server grants one transaction: ``max_locks_per_transaction``, about
    ten per dropped table; each type's step is whole, and a run stopped midway is finished by the
    next, since only what is still lacking is applied); returns the statements run."""
    found = await conn.fetch(_COLUMNS)
    if found is None:  # the schema printer (app/cli_schema.py): a database this code creates is current
        return []
    live = _Live(found, await conn.fetch(_INDEXES), await conn.fetch(_STATISTICS))
    done: list[str] = []
    for resource_type in resource_types():
        ddl = [statement for kind, table in TABLES.items() for statement in live.lacking(resource_type, kind, table)]
        if ddl:
            async with conn.transaction():
                await conn.execute("\n".join(ddl))
            done += ddl
    return done


class _Live:
    """The side tables' columns, indexes and statistics objects as the database has them."""

    def __init__(self, columns: list, indexes: list, statistics: list) -> None:
        self.columns: dict[str, set[str]] = {}
        for r in columns:
            self.columns.setdefault(r["table_name"], set()).add(r["column_name"])
        self.indexes: dict[str, set[str]] = {}
        for r in indexes:
            self.indexes.setdefault(r["tablename"], set()).add(r["indexname"])
        self.statistics = {r["stxname"] for r in statistics}

    def lacking(self, resource_type: str, kind: str, table: SideTable) -> list[str]:
        """The DDL that brings one live side table to the layout."""
        name = search_table(resource_type, kind)
        have_columns = self.columns.get(name, set())
        written = ("key", *(c for c, _ in table.columns))
        if name in self.columns and any(c not in have_columns for c in written):
            return ["DROP TABLE " + name + ";", *table.create_ddl(name), *table.lookup_ddl(name)]
        kept = {"key", "param", *(c for c, _ in table.columns), *table.generated_names}
        ddl = [f"ALTER TABLE {name} DROP COLUMN {c};" for c in sorted(have_columns) if c not in kept]
        deps = stored_name(f"{name}_deps")
        fresh_statistics = deps not in self.statistics
        if any(column not in have_columns for column in table.generated_names):
            ddl.append(f"TRUNCATE {name};")
            ddl += table.add_generated_ddl(name)
            if not fresh_statistics:  # the statistics may name the new columns (the token system hash)
                ddl.append(f"DROP STATISTICS IF EXISTS {deps};")
                fresh_statistics = True
        have = self.indexes.get(name, set())
        wanted = {n for n in table.object_names(name) if not n.endswith("_deps")}
        ddl += [f"DROP INDEX IF EXISTS {index};" for index in sorted(have - wanted)]
        if not wanted <= have:
            ddl += table.lookup_ddl(name)
        if table.depends and fresh_statistics:
            ddl += table.statistics_ddl(name)
        return ddl


async def upgrade_text_indexes(conn: asyncpg.Connection) -> None:
    """Give the live full-text indexes of the layout then (one per type's text table) the current
    small GIN pending list (migration 20; the text tables lost them in migration 31, and the
    documents' index is created with it)."""
    ddl = [
        f"ALTER INDEX IF EXISTS {search_table(t, 'text')}_doc SET (gin_pending_list_limit = {PENDING_LIST_KB});"
        for t in resource_types()
    ]
    await conn.execute("\n".join(ddl))


_HASH_TARGETS = (
    "SELECT c.relname, a.attstattarget FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
    " WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'"
    " AND c.relname LIKE 'sp\\_%' AND a.attname = 'hash' AND NOT a.attisdropped"
)


async def upgrade_hash_statistics(conn: asyncpg.Connection) -> list[str]:
    """Give the hash column of every live side table the current statistics target
    (:data:`HASH_STATISTICS`; migrations 29 and 30), a hundred tables per transaction (one lock each); the
    statistics gathered before stay until the next ANALYZE. Returns the statements run."""
    found = await conn.fetch(_HASH_TARGETS)
    if found is None:  # the schema printer (app/cli_schema.py): a database this code creates is current
        return []
    ddl = [
        f"ALTER TABLE {r['relname']} ALTER COLUMN hash SET STATISTICS {HASH_STATISTICS};"
        for r in found
        if r["attstattarget"] != HASH_STATISTICS
    ]
    for start in range(0, len(ddl), 100):
        async with conn.transaction():
            await conn.execute("\n".join(ddl[start : start + 100]))
    return ddl
