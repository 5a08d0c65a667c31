"""Custom-parameter reindex benchmark: a database of N generated events (bench/replay.py's log,
its projections rebuilt), then a custom SearchParameter over Observation posted through the API
and its index build (the ``reindex-param`` job, exactly what the server's scheduler runs) timed.

Baseline in the same run: raw asyncpg doing the minimal work of the same index build: read the
last version of each Observation from the log in the same batches, parse it, take the codings of
the parameter's element and COPY ``(id, param, system, code)`` rows into a plain table.

CPU split as in bench/replay.py: this process (reading, forwarding COPY data), the worker
processes (extraction, encoding), PostgreSQL.

    python bench/reindex.py [--events 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import sys
import time
from pathlib import Path

import asyncpg
import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from app.api.app import create_app
from app.collector import tune_collector
from app.events.codec import decode
from app.jobs.runner import run_pending
from app.settings import Settings
from bench.import_bulk import cpu_seconds
from bench.replay import rebuild_all, scratch_log

DEFINITION = {
    "resourceType": "SearchParameter",
    "url": "http://fhirledger.test/sp/bench-code",
    "name": "bench-code",
    "status": "active",
    "description": "Observation.code under another name (a custom token parameter)",
    "code": "bench-code",
    "base": ["Observation"],
    "type": "token",
    "expression": "Observation.code",
}

_LATEST = (
    "SELECT DISTINCT ON (resource_id) resource_id, resource FROM event_log"
    " WHERE resource_type = 'Observation' AND resource_id > $1 ORDER BY resource_id, version DESC LIMIT $2"
)


async def baseline(pool: asyncpg.Pool, batch: int) -> tuple[float, int]:
    """Seconds and resources of the raw asyncpg index build."""
    t0, done, after = time.perf_counter(), 0, ""
    async with pool.acquire() as conn:
        await conn.execute("CREATE UNLOGGED TABLE bench_rows (id text, param text, system text, code text)")
        while rows := await conn.fetch(_LATEST, after, batch):
            out = []
            for r in rows:
                resource = orjson.loads(decode(r["resource"]))  # stored compressed, as the server does
                for coding in resource.get("code", {}).get("coding", []):
                    out.append((r["resource_id"], "bench-code", coding.get("system"), coding.get("code")))
            await conn.copy_records_to_table("bench_rows", records=out)
            after, done = rows[-1]["resource_id"], done + len(rows)
        await conn.execute("DROP TABLE bench_rows")
    return time.perf_counter() - t0, done


async def reindex(pool: asyncpg.Pool, dsn: str, profile: bool) -> float:
    app = create_app(Settings(database_url=dsn), pool)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
        r = await client.post("/fhir/SearchParameter", json=DEFINITION)
        assert r.status_code == 201, r.text
    profiler = cProfile.Profile() if profile else None
    t0 = time.perf_counter()
    if profiler:
        profiler.enable()
    ran = await run_pending(pool)
    took = time.perf_counter() - t0
    if profiler:
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(35)
    status = await pool.fetchval("SELECT status FROM search_param_state WHERE url = $1", DEFINITION["url"])
    assert ran >= 1 and status == "ready", (ran, status)
    return took


async def main(events: int, batch: int, profile: bool) -> None:
    tune_collector()  # as a serving process (whose scheduler runs the job) does
    async with scratch_log("fhirledger-reindex-", events, 8) as (data_dir, dsn, pool, types):
        await rebuild_all(pool, types, batch)
        await pool.execute("VACUUM ANALYZE")
        base_seconds, resources = await baseline(pool, batch)
        print(f"Observations: {resources}; load average {os.getloadavg()[0]:.1f}")
        print(
            f"baseline (raw asyncpg: read latest, parse, COPY rows): {base_seconds:.1f} s, "
            f"{resources / base_seconds:,.0f} resources/s"
        )
        before = cpu_seconds(data_dir)
        seconds = await reindex(pool, dsn, profile)
        main_s, workers_s, postgres_s = (
            (a - b) / resources * 1e6 for a, b in zip(cpu_seconds(data_dir), before, strict=True)
        )
        rows = await pool.fetchval("SELECT count(*) FROM sp_observation_token WHERE param = 'bench-code'")
        print(
            f"reindex job (custom token parameter over Observation): {seconds:.1f} s, {resources / seconds:,.0f} "
            f"resources/s, {rows} token rows; ratio to baseline {base_seconds / seconds:.0%}"
        )
        print(
            f"CPU per resource: main {main_s:.0f} us, workers {workers_s:.0f} us, PostgreSQL {postgres_s:.0f} us "
            f"(load average now {os.getloadavg()[0]:.1f})"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--profile", action="store_true", help="cProfile this process during the job")
    a = parser.parse_args()
    asyncio.run(main(a.events, a.batch, a.profile))
