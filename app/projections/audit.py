"""The projection audit: a periodic job (run by the jobs leader) that samples current resources
of each type and checks that the projections still match the log: the current-state row holds the
newest event's version and bytes, and the search side tables hold exactly the rows the projector
computes from those bytes. Drift is recorded in ``projection_audit`` (shown by ``fhirledger
projections status``) and logged; the cure is ``fhirledger projections rebuild --type T``."""

from __future__ import annotations

import logging

import asyncpg
import orjson

from app.fhirspec.resource_types import is_resource_type
from app.projections.current_state import current_table
from app.projections.search_index import KINDS, rows_of, search_table

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


async def audit_type(pool: asyncpg.Pool, resource_type: str, sample: int = 20) -> tuple[int, list[str]]:
    """Check ``sample`` random current resources of a type; returns (checked, ids that drifted)."""
    cur = current_table(resource_type)
    rows = await pool.fetch(
        f"SELECT c.id, c.version, c.deleted, c.resource, e.version AS log_version, e.resource AS log_resource"
        f" FROM (SELECT * FROM {cur} ORDER BY random() LIMIT $1) c"
        " LEFT JOIN LATERAL (SELECT version, resource FROM event_log WHERE resource_type = $2 AND resource_id = c.id"
        " ORDER BY version DESC LIMIT 1) e ON true",
        sample,
        resource_type,
    )
    drifted: list[str] = []
    for r in rows:
        if r["version"] != r["log_version"] or r["resource"] != r["log_resource"]:
            drifted.append(r["id"])
            continue
        expected = {k: [] for k in KINDS}
        if not r["deleted"] and r["resource"]:
            expected = rows_of(orjson.loads(r["resource"]))
        for kind in KINDS:
            table = search_table(resource_type, kind)
            stored = await pool.fetch(f"SELECT * FROM {table} WHERE id = $1", r["id"])
            if _norm([tuple(row)[1:] for row in stored]) != _norm(expected[kind]):
                drifted.append(r["id"])
                break
    return len(rows), drifted


async def audit_projections(pool: asyncpg.Pool, sample: int = 20) -> dict[str, int]:
    """Audit every type that has events; returns type -> drifted count."""
    types = [r["resource_type"] for r in await pool.fetch("SELECT DISTINCT resource_type FROM event_log")]
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
