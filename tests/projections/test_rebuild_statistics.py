"""A rebuild leaves the planner the statistics of every column of the side tables (the parameter
hash over its larger sample, the other columns apart), the dependency statistics, and those of
the string table's expression index."""

from __future__ import annotations

import asyncpg
import httpx

from app.projections.rebuild import rebuild_type
from app.projections.search_index import search_table

LOINC = "http://loinc.org"


async def test_rebuild_gathers_every_statistic(client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    for i in range(30):
        r = await client.post(
            "/fhir/Observation",
            json={
                "resourceType": "Observation",
                "status": "final",
                "code": {"coding": [{"system": LOINC, "code": f"{i % 3}-1", "display": "Body weight"}]},
                "subject": {"reference": f"Patient/p{i}"},
                "valueQuantity": {"value": i, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"},
                "note": [{"text": f"note {i}"}],
            },
        )
        assert r.status_code == 201, r.text
    await rebuild_type(pool, "Observation")
    token = search_table("Observation", "token")
    analyzed = {r["attname"] for r in await pool.fetch("SELECT attname FROM pg_stats WHERE tablename = $1", token)}
    assert {"key", "param", "system_hash", "code", "hash"} <= analyzed
    deps = await pool.fetchval(
        "SELECT count(*) FROM pg_statistic_ext e JOIN pg_statistic_ext_data d ON d.stxoid = e.oid"
        " WHERE e.stxrelid = $1::regclass AND d.stxddependencies IS NOT NULL",
        token,
    )
    assert deps == 1
    reference = search_table("Observation", "reference")
    target = "SELECT count(*) FROM pg_stats WHERE tablename = $1 AND attname = 'target_id'"
    assert await pool.fetchval(target, reference)
    assert await pool.fetchval("SELECT reltuples FROM pg_class WHERE relname = $1", token) > 0
