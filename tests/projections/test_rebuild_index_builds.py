"""A rebuild builds its shadow tables' indexes without parallel workers (two connections already
build at a time), and the live tables it swaps in keep PostgreSQL's default storage parameters."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
import httpx
import pytest

from app.projections import rebuild
from app.projections.rebuild import live_tables, rebuild_type
from app.projections.rebuild_state import SHADOW

_OPTIONS = "SELECT relname, reloptions FROM pg_class WHERE relname = ANY($1::text[])"


async def test_indexes_built_without_parallel_workers(
    client: httpx.AsyncClient, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(5):
        body = {"resourceType": "Observation", "status": "final", "code": {"text": f"w{i}"}}
        assert (await client.post("/fhir/Observation", json=body)).status_code == 201
    seen: dict[str, list[str] | None] = {}
    build = rebuild.build_indexes

    async def recorded(pool_: asyncpg.Pool, stripped: Sequence[list[str]], more: Sequence[str]) -> None:
        shadows = [t + SHADOW for t in live_tables("Observation")]
        seen.update({r["relname"]: r["reloptions"] for r in await pool_.fetch(_OPTIONS, shadows)})
        await build(pool_, stripped, more)

    monkeypatch.setattr(rebuild, "build_indexes", recorded)
    await rebuild_type(pool, "Observation")
    assert seen and all("parallel_workers=0" in (options or []) for options in seen.values()), seen
    live = await pool.fetch(_OPTIONS, live_tables("Observation"))
    assert live and all(r["reloptions"] is None for r in live), [tuple(r) for r in live]
