"""``$reindex`` for work already queued is merged: the 202 points at the waiting job, which is not
queued again; a rebuild of every type covers a later request for one type."""

from __future__ import annotations

import asyncpg
import httpx

from app.jobs.runner import run_pending


def _job(r: httpx.Response) -> int:
    assert r.status_code == 202, r.text
    return int(r.headers["content-location"].rsplit("/", 1)[1])


async def _pending(pool: asyncpg.Pool) -> int:
    return await pool.fetchval("SELECT count(*) FROM jobs WHERE status = 'pending'")


async def test_a_repeated_type_reindex_returns_the_queued_job(client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    await run_pending(pool)  # jobs other tests left queued (a rebuild of every type would cover Flag and Device)
    first = await client.post("/fhir/Flag/$reindex")
    pending = await _pending(pool)
    again = await client.post("/fhir/Flag/$reindex")
    assert _job(again) == _job(first)
    assert "already queued" in again.json()["issue"][0]["diagnostics"]
    assert await _pending(pool) == pending
    other = await client.post("/fhir/Device/$reindex")
    assert _job(other) != _job(first)
    await run_pending(pool)
    after = await client.post("/fhir/Flag/$reindex")  # the earlier job ran: new work is queued
    assert _job(after) > _job(other)
    await run_pending(pool)


async def test_a_queued_rebuild_of_every_type_covers_one_type(client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    everything = _job(await client.post("/fhir/$reindex"))
    try:
        one = await client.post("/fhir/Patient/$reindex")
        assert _job(one) == everything
        assert "covers Patient" in one.json()["issue"][0]["diagnostics"]
    finally:  # other tests run queued jobs; a rebuild of every type is not theirs to wait for
        await pool.execute("UPDATE jobs SET status = 'done', finished_at = now() WHERE id = $1", everything)
