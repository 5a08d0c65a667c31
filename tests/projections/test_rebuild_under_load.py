"""Rebuilds (with their swaps) while clients keep searching and writing over HTTP: no request fails
and no write is lost."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx

from app.projections.rebuild import rebuild_type
from tests.helpers import side_rows_sql


async def test_rebuilds_under_search_and_write_load(client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    stop = asyncio.Event()
    statuses: list[int] = []
    failures: list[str] = []
    created: list[str] = []

    async def searcher() -> None:
        while not stop.is_set():
            r = await client.get("/fhir/Basic?code=under-load&_count=5")
            statuses.append(r.status_code)
            if r.status_code != 200:
                failures.append(r.text[:300])

    async def writer() -> None:
        while not stop.is_set():
            body = {"resourceType": "Basic", "code": {"coding": [{"code": "under-load"}]}}
            r = await client.post("/fhir/Basic", json=body)
            statuses.append(r.status_code)
            if r.status_code != 201:
                failures.append(r.text[:300])
            else:
                created.append(r.json()["id"])

    tasks = [asyncio.create_task(searcher()) for _ in range(3)] + [asyncio.create_task(writer()) for _ in range(2)]
    try:
        for _ in range(4):
            await rebuild_type(pool, "Basic", batch=50)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    assert failures == []
    assert len(statuses) > 100
    current = {r["id"] for r in await pool.fetch("SELECT id FROM cur_basic WHERE id = ANY($1)", created)}
    indexed = {
        r["id"]
        for r in await pool.fetch(
            side_rows_sql(
                "sp_basic_token", "cur_basic", "c.id", "s.param = 'code' AND s.code = 'under-load' AND c.id = ANY($1)"
            ),
            created,
        )
    }
    assert current == set(created), "every write made during the rebuilds is in the current state"
    assert indexed == set(created), "every write made during the rebuilds is in the search index"
