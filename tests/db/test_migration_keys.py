"""Migration 24 brings a database of the layout before integer resource keys up to date: the
current-state rows get their keys from the log (the position of each resource's first event), the
side tables are created anew with a ``key`` column instead of the text ``id`` (empty: the
projection is rebuilt from the log), and reads, searches after the rebuild and updates work."""

from __future__ import annotations

import asyncpg
import httpx

from app.db.migrations import MIGRATIONS
from app.projections.rebuild import rebuild_type
from app.projections.search_index import KINDS, search_table
from tests.helpers import column_names

OLD_CURRENT = "ALTER TABLE cur_specimen DROP COLUMN key;"


def _old_side_table(table: str) -> str:
    return f"TRUNCATE {table}; ALTER TABLE {table} DROP COLUMN key; ALTER TABLE {table} ADD COLUMN id text;"


async def test_migration_24_upgrades_an_existing_database(client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    body = {"resourceType": "Specimen", "status": "available", "subject": {"reference": "Patient/m24"}}
    r = await client.post("/fhir/Specimen", json=body)
    assert r.status_code == 201
    sid, served = r.json()["id"], r.content
    first = await pool.fetchval(
        "SELECT position FROM event_log WHERE resource_type = 'Specimen' AND resource_id = $1", sid
    )
    step = next(m for v, _, m in MIGRATIONS if v == 24)
    async with pool.acquire() as conn:
        await conn.execute(OLD_CURRENT + "".join(_old_side_table(search_table("Specimen", k)) for k in KINDS))
        assert "key" not in await column_names(conn, "cur_specimen")
        await step(conn)
        assert await conn.fetchval("SELECT key FROM cur_specimen WHERE id = $1", sid) == first
        for kind in KINDS:
            columns = await column_names(conn, search_table("Specimen", kind))
            assert "key" in columns and "id" not in columns, kind
        await step(conn)  # run again: nothing left to change
    read = await client.get(f"/fhir/Specimen/{sid}")
    assert read.status_code == 200 and read.content == served
    await rebuild_type(pool, "Specimen")
    found = await client.get(f"/fhir/Specimen?subject=Patient/m24&_id={sid}")
    assert [e["resource"]["id"] for e in found.json()["entry"]] == [sid]
    updated = await client.put(f"/fhir/Specimen/{sid}", json={**body, "id": sid, "status": "unavailable"})
    assert updated.status_code == 200
    assert await pool.fetchval("SELECT key FROM cur_specimen WHERE id = $1", sid) == first
    found = await client.get("/fhir/Specimen?subject=Patient/m24&status=unavailable")
    assert sid in [e["resource"]["id"] for e in found.json()["entry"]]
