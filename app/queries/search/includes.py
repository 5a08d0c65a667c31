"""``_include`` and ``_revinclude`` (https://hl7.org/fhir/R4/search.html#include): the resources
the page's matches reference, and those referencing them, from the reference side tables."""

from __future__ import annotations

import asyncpg

from app.projections.current_state import current_table
from app.projections.search_index import search_table
from app.queries.search.parse import SearchQuery

REVINCLUDE_LIMIT = 1000  # per _revinclude, so that one page cannot pull a whole table


async def included(pool: asyncpg.Pool, q: SearchQuery, ids: list[str]) -> list[tuple[str, str, bytes]]:
    """(type, id, resource bytes) of the resources to add with ``search.mode = include``."""
    out: list[tuple[str, str, bytes]] = []
    for inc in q.includes:
        if inc.source_type != q.resource_type:
            continue
        targets = await pool.fetch(
            f"SELECT DISTINCT target_type, target_id FROM {search_table(inc.source_type, 'reference')}"
            " WHERE id = ANY($1) AND param = $2 AND target_type IS NOT NULL AND target_id IS NOT NULL"
            " AND ($3::text IS NULL OR target_type = $3)",
            ids,
            inc.code,
            inc.target_type,
        )
        by_type: dict[str, list[str]] = {}
        for row in targets:
            by_type.setdefault(row["target_type"], []).append(row["target_id"])
        for t, wanted in by_type.items():
            try:
                table = current_table(t)
            except ValueError:
                continue  # a reference to something that is not a resource type
            rows = await pool.fetch(f"SELECT id, resource FROM {table} WHERE id = ANY($1) AND NOT deleted", wanted)
            out += [(t, r["id"], r["resource"]) for r in rows]
    for rev in q.revincludes:
        if rev.target_type not in (None, q.resource_type):
            continue
        rows = await pool.fetch(
            f"SELECT r.id, r.resource FROM {current_table(rev.source_type)} r WHERE NOT r.deleted AND EXISTS ("
            f"SELECT 1 FROM {search_table(rev.source_type, 'reference')} s WHERE s.id = r.id AND s.param = $1"
            " AND s.target_type = $2 AND s.target_id = ANY($3)) ORDER BY r.id LIMIT $4",
            rev.code,
            q.resource_type,
            ids,
            REVINCLUDE_LIMIT,
        )
        out += [(rev.source_type, r["id"], r["resource"]) for r in rows]
    return out
