"""Which criterion drives a search whose ids come from the side tables alone, the others being
probed per id (:func:`app.queries.search.plan.page_sql`).

Each criterion's rows are first counted up to :data:`ENOUGH` (a bounded probe of its index, plain
index scans only, which stop at the limit where a bitmap would read every match first; not an
estimate: the planner's estimates of a range within a parameter, ``value-quantity=gt…`` of one
code, multiply independent selectivities and fall short tenfold). If some criterion has fewer, the
smallest drives: the page then costs at most that many rows and their probes, at any size. If all
have more, one that its index hands over in id order (a hash equality on ``(hash, id)``: a code, a
reference, a uri; ``EXPLAIN`` shows no sort) drives and stops after the page's ids: matches of
different parameters are mostly correlated (an Observation of a code has its quantity, a patient's
vital signs their dates), so it finds the page within its first few dozen rows. Otherwise the one
PostgreSQL expects fewest rows of drives."""

from __future__ import annotations

import asyncpg
import orjson

from app.queries.search.model import SearchQuery
from app.queries.search.plan import bounded_counts_sql, group_sql, side_driven

ENOUGH = 500


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
    sql, args = bounded_counts_sql(q, base, ENOUGH)
    await conn.execute("SET enable_bitmapscan = off")  # a bitmap reads every match before the first
    try:
        counts = list(await conn.fetchval(sql, *args))
    finally:
        await conn.execute("RESET enable_bitmapscan")
    smallest = min(range(len(counts)), key=lambda i: counts[i])
    if counts[smallest] < ENOUGH:
        return smallest
    estimates = [await _estimate(conn, sql, args) for sql, args in groups]
    ordered = [i for i, (_, in_order) in enumerate(estimates) if in_order]
    return min(ordered or range(len(groups)), key=lambda i: estimates[i][0])
