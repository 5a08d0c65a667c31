"""A rebuild of a type whose side tables have long names gives the live tables their indexes'
full names: a shadow table's index name is cut to PostgreSQL's 63 bytes, and renamed by cutting
the shadow suffix out of it, it lost a letter, so every later layout check dropped and rebuilt it."""

from __future__ import annotations

import asyncpg

from app.projections.rebuild import rebuild_type
from app.projections.search_index import search_table
from app.projections.search_layout import upgrade_search_layout

LONG_TYPE = "MedicinalProductUndesirableEffect"


async def test_a_rebuilt_long_type_keeps_its_index_names(pool: asyncpg.Pool) -> None:
    await rebuild_type(pool, LONG_TYPE)
    table = search_table(LONG_TYPE, "reference")
    names = {r["indexname"] for r in await pool.fetch("SELECT indexname FROM pg_indexes WHERE tablename = $1", table)}
    assert f"{table}_ident_value" in names
    assert not any(n.startswith(table) and n.endswith("_ident_valu") for n in names)
    async with pool.acquire() as conn:
        assert await upgrade_search_layout(conn) == []  # nothing for the layout check to mend
