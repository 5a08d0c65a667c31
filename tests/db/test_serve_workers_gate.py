"""``fhirledger serve --workers 2``: the workers share one statement of a type in flight
(app/projections/cross_process_gate.py). While the gate of Patient creates is held from outside
(another process's statement in flight), concurrent creates wait in both workers; once it is let
go every one is stored once, and no gate lock or open transaction is left behind."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from app.projections import cross_process_gate
from tests.db.test_serve_worker_deaths import WORKERS
from tests.helpers import new_id
from tests.server_process import embedded_data_dir, free_port, start_server

CREATES = 40


@pytest.fixture
def data_dir() -> Iterator[Path]:
    with embedded_data_dir() as path:
        yield path


def _gate_key() -> int:
    return int(cross_process_gate.gate_sql(("Patient", True)).rsplit(", ", 1)[1].rstrip(")"))


async def test_creates_in_two_workers_wait_for_the_gate_and_are_each_stored_once(data_dir: Path) -> None:
    port = free_port()
    proc = start_server(data_dir, port, timeout=120, args=WORKERS)
    base = f"http://127.0.0.1:{port}/fhir"
    family = "Gate" + new_id()[:10]
    try:
        db = await asyncpg.connect(f"postgresql://postgres@/fhirledger?host={data_dir / 'pgdata'}")
        try:
            await db.execute(f"SELECT pg_advisory_lock(7245004, {_gate_key()})")
            async with httpx.AsyncClient(base_url=base, timeout=60, limits=httpx.Limits(max_connections=64)) as client:
                body = {"resourceType": "Patient", "name": [{"family": family}]}
                posts = [asyncio.create_task(client.post("/Patient", json=body)) for _ in range(CREATES)]
                await asyncio.sleep(1.5)
                waiting = sum(not p.done() for p in posts)
                await db.execute(f"SELECT pg_advisory_unlock(7245004, {_gate_key()})")
                responses = await asyncio.wait_for(asyncio.gather(*posts), 60)
                found = await client.get("/Patient", params={"family": family, "_summary": "count"})
            assert waiting >= CREATES - 8, waiting  # all but the few written alone waited at the gate
            assert [r.status_code for r in responses] == [201] * CREATES
            assert len({r.json()["id"] for r in responses}) == CREATES
            assert found.json()["total"] == CREATES
            assert (
                await db.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 7245004")
                == 0
            )
            idle = "SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%'"
            assert await db.fetchval(idle) == 0
        finally:
            await db.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
