"""The statistics of a rebuild's shadow tables, gathered once they are loaded and indexed: one
``VACUUM (ANALYZE)`` per table, every column over the same sample.

The parameter hash's statistics target (:data:`app.search_types.protocol.HASH_STATISTICS`) is
PostgreSQL's default since migration 30, so one sample of 30,000 rows serves every column. While it
was higher (300, 1,000) the hash and its dependency columns were analyzed over the larger sample and
the others apart over 30,000 rows, and the tables' counters of rows changed since the last analyze
were reset by hand (an ANALYZE of some columns leaves them); a whole ANALYZE resets them itself, so
autovacuum finds nothing to analyze again after the swap.

Each ``VACUUM`` skips the database-wide statistics of the oldest unfrozen transaction ids
(``SKIP_DATABASE_STATS``): by default every ``VACUUM`` ends by scanning the whole of ``pg_class``
for them (about 1.3 ms with the catalog of the registry's side tables, ~9,600 relations), once per
shadow table; a freshly loaded table never holds the oldest id, and autovacuum updates them anyway.
PostgreSQL 15 has no such option (:func:`vacuum_command`)."""

from __future__ import annotations

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


def analyze_statements(resource_type: str, vacuum: str = VACUUM) -> list[str]:
    """``VACUUM (ANALYZE)`` of each shadow table of the type. ``vacuum``: the command
    (:func:`vacuum_command`)."""
    tables = [current_table(resource_type), *(search_table(resource_type, kind) for kind in TABLES)]
    return [f"{vacuum} {table}{SHADOW}" for table in tables]
