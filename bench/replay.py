"""Replay benchmark: bulk-append N generated events (Synthea-shaped: patients, encounters,
observations, conditions; about 5% of them updates) straight into the event log with COPY, then
rebuild every projection from the log (``rebuild_type`` with worker processes, exactly what
``fhirledger projections rebuild --all`` runs) and report events/s and the total time.

Baseline in the same run: raw asyncpg reading the same log in the same batches and COPYing the
latest version of each resource into a plain table: what a replay costs without extracting search
values, without the search side tables and without the swap.

    python bench/replay.py [--events 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from app.commands.stamp import stamp
from app.db.embedded import EmbeddedPostgres
from app.db.migrations import migrate
from app.projections.rebuild import custom_definitions, rebuild_type, replay_executor
from app.projections.state import check_projections
from bench.generate import patient_bundle

COLUMNS = ["resource_type", "resource_id", "version", "kind", "resource", "recorded_at", "method", "url"]


def event_rows(count: int, seed: int = 5) -> list[tuple]:
    """``count`` events: creates of generated resources, and about 5% updates of earlier ones."""
    rng = random.Random(seed)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    rows: list[tuple] = []
    made: list[tuple[str, str, dict, int]] = []
    n = 0
    while len(rows) < count:
        bundle = patient_bundle(rng, n, 200)
        n += 1
        for entry in bundle["entry"]:
            if len(rows) >= count:
                break
            resource = entry["resource"]
            if rng.random() < 0.05 and made:
                i = rng.randrange(len(made))
                rtype, rid, old, version = made[i]
                version += 1
                made[i] = (rtype, rid, old, version)
                resource, kind, method = old, "updated", "PUT"
            else:
                rtype, rid, version, kind, method = resource["resourceType"], str(uuid.uuid4()), 1, "created", "POST"
                made.append((rtype, rid, resource, 1))
            when = start + timedelta(milliseconds=len(rows))
            rows.append((rtype, rid, version, kind, stamp(resource, rid, version, when), when, method, rtype))
    return rows


async def baseline(pool: asyncpg.Pool, types: list[str], batch: int) -> float:
    t0 = time.perf_counter()
    async with pool.acquire() as conn:
        await conn.execute(
            "CREATE UNLOGGED TABLE IF NOT EXISTS bench_latest (resource_type text, id text,"
            " version int, resource bytea)"
        )
        for t in types:
            after = 0
            while True:
                rows = await conn.fetch(
                    "SELECT position, resource_id, version, resource FROM event_log WHERE resource_type = $1"
                    " AND position > $2 ORDER BY position LIMIT $3",
                    t,
                    after,
                    batch,
                )
                if not rows:
                    break
                latest = {r["resource_id"]: (t, r["resource_id"], r["version"], r["resource"]) for r in rows}
                await conn.copy_records_to_table("bench_latest", records=list(latest.values()))
                after = rows[-1]["position"]
        await conn.execute("DROP TABLE bench_latest")
    return time.perf_counter() - t0


async def main(events: int, batch: int) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="fhirledger-replay-"))
    embedded = EmbeddedPostgres(data_dir)
    dsn = embedded.start()
    try:
        pool = await asyncpg.create_pool(dsn, min_size=2, max_size=4)
        async with pool.acquire() as conn:
            await migrate(conn)
            await check_projections(conn)
        t0 = time.perf_counter()
        rows = event_rows(events)
        t1 = time.perf_counter()
        async with pool.acquire() as conn:
            for i in range(0, len(rows), 50_000):
                await conn.copy_records_to_table("event_log", records=rows[i : i + 50_000], columns=COLUMNS)
            await conn.execute("ANALYZE event_log")
        t2 = time.perf_counter()
        types = sorted({r[0] for r in rows})
        del rows
        print(
            f"generated {events} events in {t1 - t0:.1f} s, appended with COPY in {t2 - t1:.1f} s "
            f"({events / (t2 - t1):,.0f} events/s); types: {', '.join(types)}"
        )
        base_seconds = await baseline(pool, types, batch)
        print(
            f"baseline (read the log, COPY latest versions): {base_seconds:.1f} s, "
            f"{events / base_seconds:,.0f} events/s"
        )
        start = time.perf_counter()
        with replay_executor(await custom_definitions(pool)) as executor:
            replayed = 0
            for t in types:
                t_start = time.perf_counter()
                result = await rebuild_type(pool, t, batch=batch, executor=executor)
                replayed += result.events
                took = time.perf_counter() - t_start
                print(f"  {t:<14} {result.events:>9} events {took:7.1f} s {result.events / took:>9,.0f} events/s")
        seconds = time.perf_counter() - start
        print(
            f"full rebuild (current state + search index, {len(types)} types): {replayed} events in "
            f"{seconds:.1f} s = {replayed / seconds:,.0f} events/s; "
            f"ratio to baseline {base_seconds / seconds:.0%}"
        )
        await pool.close()
    finally:
        embedded.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=5000)
    a = parser.parse_args()
    asyncio.run(main(a.events, a.batch))
