"""``Bundle.total`` of a search (https://hl7.org/fhir/R4/search.html#total): always a count of
distinct resources, and computed only when asked or free.

- ``_total=accurate``, ``_summary=count`` and ``_count=0``: the exact count (a scan of every match).
- The first page holding every match (no next page): its length, exact and free, whatever is asked
  but ``_total=none``.
- ``_total=estimate``: PostgreSQL's estimate of the matches (the planner's row estimate from its
  statistics, ``EXPLAIN``, no scan), said so in an OperationOutcome ``information`` issue.
- Not asked (the default) and not free: no total (as HAPI FHIR does; ``Bundle.total`` is optional
  and the spec lets the server choose), since counting every match of a broad search at a million
  resources costs far more than the page. The CapabilityStatement and the README say so.
- ``_total=none``: no total.
"""

from __future__ import annotations

import asyncpg
import orjson

from app.errors import Issue
from app.queries.search.model import SearchQuery
from app.queries.search.plan import count_sql, estimate_sql

ESTIMATED = Issue(
    "information",
    "informational",
    "Bundle.total is an estimate from the database's statistics (_total=estimate), not a count; "
    "ask _total=accurate for the exact count",
)


def counts_exactly(q: SearchQuery) -> bool:
    return q.total == "accurate" or q.summary == "count" or q.count == 0


async def exact_total(conn: asyncpg.Connection, q: SearchQuery, base: str) -> int:
    sql, args = count_sql(q, base)
    return await conn.fetchval(sql, *args)


async def page_total(
    conn: asyncpg.Connection, q: SearchQuery, base: str, page_rows: int, complete: bool
) -> tuple[int | None, Issue | None]:
    """The total of a search whose page was not counted exactly (``complete``: the page holds
    every match), and the issue that says what it is, if anything needs saying."""
    if q.total == "none":
        return None, None
    if complete and q.cursor is None:
        return page_rows, None
    if q.total == "estimate":
        return max(await estimated_total(conn, q, base), page_rows), ESTIMATED
    return None, None


async def estimated_total(conn: asyncpg.Connection | asyncpg.Pool, q: SearchQuery, base: str) -> int:
    """The planner's estimate of the matches (``EXPLAIN``: planned, never run)."""
    sql, args = estimate_sql(q, base)
    plan = orjson.loads(await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args))
    return int(plan[0]["Plan"]["Plan Rows"])
