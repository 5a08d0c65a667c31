"""The periodic projection audit finds drift between the projections and the log."""

from __future__ import annotations

import asyncpg
import httpx

from app.projections.audit import audit_projections, audit_type


async def test_audit_reports_no_drift_then_finds_tampering(client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    for i in range(3):
        r = await client.post(
            "/fhir/Specimen", json={"resourceType": "Specimen", "status": "available", "note": [{"text": f"n{i}"}]}
        )
        assert r.status_code == 201
    checked, drifted = await audit_type(pool, "Specimen", sample=50)
    assert checked >= 3 and drifted == []
    victim = r.json()["id"]
    await pool.execute(
        "DELETE FROM sp_specimen_token WHERE key = (SELECT key FROM cur_specimen WHERE id = $1)", victim
    )  # a projection row lost
    checked, drifted = await audit_type(pool, "Specimen", sample=50)
    assert drifted == [victim]
    result = await audit_projections(pool, sample=50)
    assert result["Specimen"] == 1
    row = await pool.fetchrow("SELECT sampled, drifted FROM projection_audit WHERE resource_type = 'Specimen'")
    assert row["drifted"] == 1
    from app.projections.rebuild import rebuild_type

    await rebuild_type(pool, "Specimen")
    assert (await audit_type(pool, "Specimen", sample=50))[1] == []
