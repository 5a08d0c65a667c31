"""Which criterion drives a search whose ids come from the side tables alone, the others being
probed per id (:func:`app.queries.search.plan.page_sql`).

PostgreSQL's per-parameter statistics estimate each criterion's rows (``EXPLAIN`` of its id set
in id order: planned, never run). A criterion its index hands over in id order (a hash equality
on ``(hash, id)``: a code, a reference, a uri) stops after the page's ids; any other must be read
whole and sorted. So the smallest in-order criterion drives unless another is expected to be
:data:`ORDERED_ADVANTAGE` times smaller: matches of different parameters are mostly correlated
(an Observation of a code has its quantity, a patient's vital signs their dates), and the
estimates, which assume independence, undercount them; an in-order driver then finds the page
within its first few dozen rows."""

from __future__ import annotations

import asyncpg
import orjson

from app.queries.search.model import SearchQuery
from app.queries.search.plan import group_sql, side_driven

ORDERED_ADVANTAGE = 10


async def _estimate(conn: asyncpg.Connection, sql: str, args: list) -> tuple[float, bool]:
    """(rows expected, whether they come in id order without a sort)."""
    plan = orjson.loads(await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql} ORDER BY s.id", *args))[0]["Plan"]
    return float(plan["Plan Rows"]), plan["Node Type"] != "Sort"


async def choose_driver(conn: asyncpg.Connection, q: SearchQuery, base: str) -> int:
    """The index of the driving criterion group (0 when there is one, or no side-driven plan)."""
    if not side_driven(q):
        return 0
    groups = group_sql(q, base)
    if len(groups) < 2:
        return 0
    estimates = [await _estimate(conn, sql, args) for sql, args in groups]
    smallest = min(range(len(estimates)), key=lambda i: estimates[i][0])
    ordered = [i for i, (_, in_order) in enumerate(estimates) if in_order]
    if ordered:
        best = min(ordered, key=lambda i: estimates[i][0])
        if estimates[best][0] <= ORDERED_ADVANTAGE * max(estimates[smallest][0], 1.0):
            return best
    return smallest
