"""Migration 25 gives the string side tables of an existing database the index of their values'
words (a string parameter's ``:text`` searches the string rows), and ``:text`` then finds
through it; run again, it changes nothing."""

from __future__ import annotations

import uuid

import asyncpg
import httpx

from app.db.migrations import MIGRATIONS
from app.projections.search_layout import upgrade_search_layout

TABLE = "sp_practitioner_string"


async def _indexes(conn: asyncpg.Connection) -> set[str]:
    return {r["indexname"] for r in await conn.fetch("SELECT indexname FROM pg_indexes WHERE tablename = $1", TABLE)}


async def test_migration_25_adds_the_words_index(client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    family = f"Migrated{uuid.uuid4().hex[:8]}"
    r = await client.post("/fhir/Practitioner", json={"resourceType": "Practitioner", "name": [{"family": family}]})
    assert r.status_code == 201
    pid = r.json()["id"]
    step = next(m for v, _, m in MIGRATIONS if v == 25)
    async with pool.acquire() as conn:
        await conn.execute(f"DROP INDEX {TABLE}_words")
        assert f"{TABLE}_words" not in await _indexes(conn)
        await step(conn)
        assert f"{TABLE}_words" in await _indexes(conn)
        definition = await conn.fetchval("SELECT indexdef FROM pg_indexes WHERE indexname = $1", f"{TABLE}_words")
        assert "gin" in definition and "to_tsvector('english'::regconfig" in definition
        assert await upgrade_search_layout(conn) == []
    found = await client.get(f"/fhir/Practitioner?name:text={family.lower()}")
    assert [e["resource"]["id"] for e in found.json()["entry"]] == [pid]
