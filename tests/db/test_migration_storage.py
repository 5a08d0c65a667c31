"""Migration 18 brings a database of the earlier layout up to date without losing a resource: the
current-state tables lose their copy of the resource bytes (reads take the log's), the token side
tables their text column, and the reference tables' lookup indexes become the partial ones."""

from __future__ import annotations

import asyncpg
import httpx

from app.db.migrations import MIGRATIONS
from tests.helpers import column_names

OLD_LAYOUT = """
ALTER TABLE cur_specimen ADD COLUMN resource bytea;
UPDATE cur_specimen c SET resource = e.resource FROM event_log e WHERE e.position = c.position;
ALTER TABLE sp_specimen_token ADD COLUMN text text;
DROP INDEX sp_specimen_reference_written;
CREATE INDEX sp_specimen_reference_reference ON sp_specimen_reference (param, reference) INCLUDE (key);
"""


async def test_migration_18_upgrades_an_existing_database(client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    body = {"resourceType": "Specimen", "status": "available", "subject": {"reference": "Patient/m18"}}
    r = await client.post("/fhir/Specimen", json=body)
    assert r.status_code == 201
    sid, served = r.json()["id"], r.content
    step = next(m for v, _, m in MIGRATIONS if v == 18)
    async with pool.acquire() as conn:
        await conn.execute(OLD_LAYOUT)
        assert "resource" in await column_names(conn, "cur_specimen")
        await step(conn)
        assert "resource" not in await column_names(conn, "cur_specimen")
        assert "text" not in await column_names(conn, "sp_specimen_token")
        indexes = {
            r["indexname"]
            for r in await conn.fetch("SELECT indexname FROM pg_indexes WHERE tablename = 'sp_specimen_reference'")
        }
        assert "sp_specimen_reference_reference" not in indexes and "sp_specimen_reference_written" in indexes
    read = await client.get(f"/fhir/Specimen/{sid}")
    assert read.status_code == 200 and read.content == served
    found = await client.get(f"/fhir/Specimen?subject=Patient/m18&_id={sid}")
    assert [e["resource"]["id"] for e in found.json()["entry"]] == [sid]
    updated = await client.put(f"/fhir/Specimen/{sid}", json={**body, "id": sid, "status": "unavailable"})
    assert updated.status_code == 200
    assert (await client.get(f"/fhir/Specimen/{sid}")).json()["status"] == "unavailable"
