"""Which criterion drives a search whose resource keys come from the side tables alone, the others being
probed per key (:func:`app.queries.search.plan.page_sql`).

Each criterion's rows are first counted up to :data:`ENOUGH` (a bounded probe of its index, plain
index scans only, which stop at the limit where a bitmap would read every match first; not an
estimate: the planner's estimates of a range within a parameter, ``value-quantity=gt…`` of one
code, multiply independent selectivities and fall short tenfold). If some criterion has fewer, the
smallest drives and its matches are read in full first (``MATERIALIZED``): the page then costs at
most that many rows and their probes, at any size. Left to choose, the planner (expecting
thousands of matches) walked the side table's ``key`` index in key order instead, reading every
parameter's rows (value-quantity, component-value-quantity, combo-value-quantity…) to find the
few: 287,065 rows to find 15 at 250k resources, half a second.

If all have more, one that its index hands over in key order *confined to its own rows* (a hash
equality on ``(hash, key)``: a code, a reference, a uri; ``EXPLAIN`` shows an index scan bounded
by an index condition, no sort) drives and stops after the page's ids: matches of different
parameters are mostly correlated (an Observation of a code has its quantity, a patient's vital
signs their dates), so it finds the page within its first few dozen rows. A walk of a side
table's ``key`` index is in key order too, but bounded by nothing: it reads the rows of every
parameter of that table, so it does not count as an ordered path. Otherwise the one PostgreSQL
expects fewest rows of drives.

Full-text criteria (``_content``, ``_text``, ``:text``) are counted too, in a statement of their
own: the documents' GIN index (:mod:`app.search_types.text`) answers only through a bitmap, so with
bitmaps off their count walked every document (each one's tsvector tested; before the documents were
stored once, the whole text table) exactly when the words were rare, the case where the text
criterion should drive. Their count runs with sequential scans off instead, so it always reads the
GIN index, and the rows that have the documents found through the index of their ids
(:data:`COUNT_SETTINGS`)."""

from __future__ import annotations

import asyncpg
import orjson

from app.queries.search.model import SearchQuery
from app.queries.search.plan import Driver, bounded_counts_sql, group_sql, group_types, side_driven

ENOUGH = 500
TEXT = "text"
COUNT_SETTINGS = {
    False: "enable_bitmapscan",  # a bitmap reads every match before the first: plain index scans
    True: "enable_seqscan",  # a GIN index answers only through a bitmap: never a walk of the table
}
"""The planner setting turned off while counting the groups that are (True) or are not full text."""


def count_statements(q: SearchQuery, base: str) -> list[tuple[str, list[int], str, list]]:
    """The bounded counts to run: (planner setting to turn off, the groups counted, SQL, args)."""
    types = group_types(q)
    out = []
    for text in (False, True):
        which = [i for i, t in enumerate(types) if (t == TEXT) == text]
        if which:
            sql, args = bounded_counts_sql(q, base, ENOUGH, which)
            out.append((COUNT_SETTINGS[text], which, sql, args))
    return out


async def bounded_counts(conn: asyncpg.Connection, q: SearchQuery, base: str) -> list[int]:
    """Each group's side-table rows, counted up to :data:`ENOUGH` through its index."""
    counts = [0] * len(group_types(q))
    for setting, which, sql, args in count_statements(q, base):
        await conn.execute(f"SET {setting} = off")
        try:
            found = await conn.fetchval(sql, *args)
        finally:
            await conn.execute(f"RESET {setting}")
        for i, n in zip(which, found, strict=True):
            counts[i] = n
    return counts


def confined_order(plan: dict) -> bool:
    """Whether a plan of ``… ORDER BY s.key`` hands its rows over in key order by walking an index
    bounded by the criterion's own condition (no sort; not the whole ``key`` index filtered)."""
    return plan["Node Type"] in ("Index Scan", "Index Only Scan") and "Index Cond" in plan


async def _estimate(conn: asyncpg.Connection, sql: str, args: list) -> tuple[float, bool]:
    """(rows expected, whether they come in key order from a walk of their own rows alone)."""
    plan = orjson.loads(await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql} ORDER BY s.key", *args))[0]["Plan"]
    return float(plan["Plan Rows"]), confined_order(plan)


async def choose_driver(conn: asyncpg.Connection, q: SearchQuery, base: str) -> Driver:
    """The driving criterion group (group 0 when there is no side-driven plan)."""
    if not side_driven(q):
        return Driver()
    groups = group_sql(q, base)
    counts = await bounded_counts(conn, q, base)
    smallest = min(range(len(counts)), key=lambda i: counts[i])
    if counts[smallest] < ENOUGH:
        return Driver(smallest, few=True)
    if len(groups) < 2:
        return Driver()
    estimates = [await _estimate(conn, sql, args) for sql, args in groups]
    ordered = [i for i, (_, in_order) in enumerate(estimates) if in_order]
    return Driver(min(ordered or range(len(groups)), key=lambda i: estimates[i][0]))
