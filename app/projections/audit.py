"""The projection audit: a periodic job (run by the jobs leader) that samples current resources
of each type and checks that the projections still match the log: the current-state row holds the
newest event's version and bytes, and the search side tables hold exactly the rows the projector
computes from those bytes. Drift is recorded in ``projection_audit`` (shown by ``fhirledger
projections status``) and logged; the cure is ``fhirledger projections rebuild --type T``."""

from __future__ import annotations

import logging

import asyncpg
import orjson

from app.events.codec import decode
from app.events.latest import first_positions, last_events
from app.events.store import resource_types
from app.fhirspec.resource_types import is_resource_type
from app.projections.current_state import current_table, resource_sql
from app.projections.search_index import COLUMNS, KINDS, rows_of, search_table
from app.search_types.registry import TABLES

log = logging.getLogger("fhirledger.audit")

AUDIT_DDL = """
CREATE TABLE IF NOT EXISTS projection_audit (
    resource_type text PRIMARY KEY,
    checked_at    timestamptz NOT NULL DEFAULT now(),
    sampled       integer NOT NULL,
    drifted       integer NOT NULL,
    examples      jsonb
);
"""


def _norm(rows: list) -> list[tuple[str, ...]]:
    return sorted(tuple(str(v) for v in row) for row in rows)


async def _search_drifted(conn: asyncpg.Connection, resource_type: str, row: asyncpg.Record) -> bool:
    """Whether the search side tables of one current row differ from the rows its bytes give."""
    expected = {k: [] for k in KINDS}
    if not row["deleted"] and row["resource"]:
        expected = rows_of(orjson.loads(decode(row["resource"])))
    for kind in KINDS:
        columns = ", ".join(["param", *(c for c, _ in COLUMNS[kind])])  # not the generated ones
        stored = await conn.fetch(
            f"SELECT {columns} FROM {search_table(resource_type, kind)} WHERE key = $1", row["key"]
        )
        want = expected[kind]
        if want and not TABLES[kind].copyable:  # stored as PostgreSQL computes it from what is sent
            types = ["text", "text", *TABLES[kind].sent_types()]
            sql = TABLES[kind].insert_select([f"${i}::{t}[]" for i, t in enumerate(types, 1)])
            sent = [list(c) for c in zip(*[(row["id"], *r) for r in want], strict=True)]
            want = [tuple(r)[1:] for r in await conn.fetch(sql, *sent)]
            missing = TABLES[kind].companion_missing([f"${i}::{t}[]" for i, t in enumerate(types[2:], 1)])
            if missing is not None and await conn.fetchval(missing, *sent[2:]):
                return True  # a full-text document the rows refer to is missing or was changed
        if _norm([tuple(r) for r in stored]) != _norm(want):
            return True
    return False


async def audit_type(pool: asyncpg.Pool, resource_type: str, sample: int = 20) -> tuple[int, list[str]]:
    """Check ``sample`` random current resources of a type (in one snapshot, so a concurrent write
    is no drift); returns (checked, ids that drifted)."""
    cur = current_table(resource_type)
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        rows = await conn.fetch(
            f"SELECT id, version, deleted, position, key, {resource_sql('c')} AS resource FROM {cur} c"
            " ORDER BY random() LIMIT $1",
            sample,
        )
        logged, positions = await last_events(conn, resource_type, [r["id"] for r in rows])
        keys = await first_positions(conn, resource_type, [r["id"] for r in rows])
        last = {e.resource_id: (e, pos) for e, pos in zip(logged, positions, strict=True)}
        drifted: list[str] = []
        for r in rows:
            e, pos = last.get(r["id"], (None, None))
            if e is None or r["version"] != e.version or r["position"] != pos or r["key"] != keys.get(r["id"]):
                drifted.append(r["id"])
            elif await _search_drifted(conn, resource_type, r):
                drifted.append(r["id"])
    return len(rows), drifted


async def audit_projections(pool: asyncpg.Pool, sample: int = 20) -> dict[str, int]:
    """Audit every type that has events; returns type -> drifted count."""
    types = await resource_types(pool)
    out: dict[str, int] = {}
    for t in sorted(types):
        if not is_resource_type(t):
            continue
        checked, drifted = await audit_type(pool, t, sample)
        out[t] = len(drifted)
        if drifted:
            log.warning(
                "projection drift in %s: %d of %d sampled resources (%s); run "
                "`fhirledger projections rebuild --type %s`",
                t,
                len(drifted),
                checked,
                ", ".join(drifted[:5]),
                t,
            )
        await pool.execute(
            "INSERT INTO projection_audit (resource_type, sampled, drifted, examples) VALUES ($1, $2, $3, $4::jsonb)"
            " ON CONFLICT (resource_type) DO UPDATE SET checked_at = now(), sampled = $2, drifted = $3,"
            " examples = $4::jsonb",
            t,
            checked,
            len(drifted),
            orjson.dumps(drifted[:10]).decode(),
        )
    return out
