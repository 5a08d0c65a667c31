"""Replay benchmark: bulk-append N generated events (Synthea-shaped: patients, encounters,
observations, conditions; about 5% of them updates; their resources compressed as the server stores
them, app/events/codec.py) straight into the event log with COPY, then
rebuild every projection from the log (``rebuild_type`` with worker processes, two types at a time,
exactly what ``fhirledger projections rebuild --all`` runs) and report events/s and the total time.
The phases' figures are summed over the types; two types rebuild side by side, so their sums may
exceed the whole (and a phase's PostgreSQL CPU then includes some of the other type's).

Baseline in the same run: raw asyncpg reading the same log in the same batches and COPYing the
latest version of each resource into a plain table: what a replay costs without extracting search
values, without the search side tables and without the swap.

The split: CPU seconds per event of this process (reading the log, forwarding COPY data), of the
worker processes (extracting search values, encoding rows) and of PostgreSQL (COPY, the text
documents' ``to_tsvector``, index builds, ``VACUUM (ANALYZE)``, WAL), all read from ``/proc``. On
a machine busy with other work the wall clock says little; the CPU split and the projection
``2 cores / CPU per event`` say what an idle 2-core machine would do. (A split of the workers'
CPU into extraction and the rest, timed on a sample in this process, was dropped in session 16:
another code path on other events, it came out above the workers' whole CPU. ``bench/extract.py``
times the extraction alone.)

    python bench/replay.py [--events 1000000] [--log-cache DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pickle
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from app.collector import tune_collector
from app.commands.stamp import stamp
from app.db.embedded import EmbeddedPostgres
from app.db.migrations import migrate
from app.db.postmaster import live_postmaster
from app.events.codec import encode
from app.projections import rebuild, shadow_indexes
from app.projections.rebuild import custom_definitions, rebuild_type, replay_executor
from app.projections.rebuild_many import each_type, largest_first
from app.projections.state import check_projections
from bench.common import machine_speed, wal_figures, yardstick_text
from bench.generate import patient_bundle
from bench.import_bulk import cpu_seconds

COLUMNS = ["resource_type", "resource_id", "version", "kind", "resource", "recorded_at", "method", "url"]


def resolved(resource: dict, targets: dict[str, str]) -> dict:
    """``resource`` with its ``urn:uuid`` references rewritten to the ``[type]/[id]`` the server
    assigned, as a transaction stores them (the log of a server never holds a bundle's fullUrl)."""
    text = orjson.dumps(resource)
    for url, target in targets.items():
        text = text.replace(b'"' + url.encode() + b'"', b'"' + target.encode() + b'"')
    return orjson.loads(text)


def event_rows(count: int, seed: int = 5) -> list[tuple]:
    """``count`` events: creates of generated resources (their bundle's ``urn:uuid`` references
    resolved to the ids given, as a transaction does), and about 5% updates of earlier ones."""
    rng = random.Random(seed)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    rows: list[tuple] = []
    made: list[tuple[str, str, dict, int]] = []
    n = 0
    while len(rows) < count:
        bundle = patient_bundle(rng, n, 200)
        n += 1
        ids = {e["fullUrl"]: str(uuid.uuid4()) for e in bundle["entry"]}
        targets = {
            url: f"{e['resource']['resourceType']}/{ids[url]}"
            for url, e in ((e["fullUrl"], e) for e in bundle["entry"])
        }
        for entry in bundle["entry"]:
            if len(rows) >= count:
                break
            resource = resolved(entry["resource"], targets)
            if rng.random() < 0.05 and made:
                i = rng.randrange(len(made))
                rtype, rid, old, version = made[i]
                version += 1
                made[i] = (rtype, rid, old, version)
                resource, kind, method = old, "updated", "PUT"
            else:
                rtype, rid, version, kind, method = (
                    resource["resourceType"],
                    ids[entry["fullUrl"]],
                    1,
                    "created",
                    "POST",
                )
                made.append((rtype, rid, resource, 1))
            when = start + timedelta(milliseconds=len(rows))
            stored = encode(stamp(resource, rid, version, when))  # as the server stores it (app/events/codec.py)
            rows.append((rtype, rid, version, kind, stored, when, method, rtype))
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


BATCH = 5000  # resources per batch of the rebuild (``--batch``)

LOG_CACHE: Path | None = None
"""``--log-cache DIR``: where each generated log is kept (pickled) and read again, so that runs
compared side by side replay the same events (their ids are random otherwise) and skip generating
them (~35 s per 100,000 events)."""


def cached_rows(count: int) -> list[tuple]:
    """:func:`event_rows`, from :data:`LOG_CACHE` when set."""
    if LOG_CACHE is None:
        return event_rows(count)
    path = LOG_CACHE / f"replay-log-{count}.pickle"
    if path.exists():
        return pickle.loads(path.read_bytes())
    rows = event_rows(count)
    LOG_CACHE.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(rows))
    return rows


async def append_log(pool: asyncpg.Pool, events: int) -> list[str]:
    t0 = time.perf_counter()
    rows = cached_rows(events)
    t1 = time.perf_counter()
    async with pool.acquire() as conn:
        for i in range(0, len(rows), 50_000):
            await conn.copy_records_to_table("event_log", records=rows[i : i + 50_000], columns=COLUMNS)
        await conn.execute("ANALYZE event_log")
    t2 = time.perf_counter()
    types = sorted({r[0] for r in rows})
    print(
        f"generated {events} events in {t1 - t0:.1f} s, appended with COPY in {t2 - t1:.1f} s "
        f"({events / (t2 - t1):,.0f} events/s); types: {', '.join(types)}"
    )
    return types


_TICKS = os.sysconf("SC_CLK_TCK")


def postgres_cpu(pid: int) -> float:
    """CPU seconds of the postmaster ``pid``, of the children it reaped and of its live children,
    read from /proc directly: :func:`bench.import_bulk.cpu_seconds` walks every process of the
    machine through psutil (8 ms of CPU per call here), and called at each phase of each type, on
    the event loop, it took 3 us of this process's CPU per event and held the other type's
    rebuild up meanwhile."""

    def stat(p: int) -> list[str]:
        with open(f"/proc/{p}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()

    fields = stat(pid)
    total = sum(int(v) for v in fields[11:15])  # utime, stime, cutime, cstime
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            for child in f.read().split():
                try:
                    total += sum(int(v) for v in stat(int(child))[11:13])
                except (FileNotFoundError, ProcessLookupError):
                    pass  # ended meanwhile: counted in cutime at the next call
    return total / _TICKS


PHASES = {"bulk_load.load_latest": 0.0, "_build_indexes": 0.0, "replay_batches": 0.0, "_analyze": 0.0, "_swap": 0.0}
PHASES_PG = dict.fromkeys(PHASES, 0.0)


def time_phases(data_dir: Path) -> None:
    """Wall seconds and PostgreSQL CPU seconds of each phase of the rebuilds, summed over the types
    (:data:`PHASES`, :data:`PHASES_PG`)."""
    postmaster = live_postmaster(data_dir / "pgdata")
    assert postmaster is not None
    for name in PHASES:
        owner, attr = (rebuild.bulk_load, "load_latest") if "." in name else (rebuild, name)
        inner = getattr(owner, attr)

        async def timed(*args: object, _inner=inner, _name=name, **kwargs: object) -> object:
            start, pg = time.perf_counter(), postgres_cpu(postmaster.pid)
            try:
                return await _inner(*args, **kwargs)
            finally:
                PHASES[_name] += time.perf_counter() - start
                PHASES_PG[_name] += postgres_cpu(postmaster.pid) - pg

        setattr(owner, attr, timed)


SLOWEST: list[tuple[float, float, str]] = []


def backend_cpu(pid: int) -> float:
    """CPU seconds of the PostgreSQL backend ``pid`` (the embedded server runs on this machine)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def time_statements() -> None:
    """Record the CPU of its backend and the wall time of each index build and VACUUM/ANALYZE of the
    rebuilds (:data:`SLOWEST`): on a machine busy with other work the wall time says little. A
    parallel worker's CPU is not counted (the rebuild builds without them)."""

    async def run_spread(pool: asyncpg.Pool, statements: list[str], connections: int = 2) -> None:
        queue = list(reversed(statements))

        async def work() -> None:
            async with pool.acquire() as conn:
                pid = conn.get_server_pid()
                while queue:
                    sql = queue.pop()
                    start, cpu = time.perf_counter(), backend_cpu(pid)
                    await conn.execute(sql)
                    SLOWEST.append((backend_cpu(pid) - cpu, time.perf_counter() - start, sql[:90]))

        await asyncio.gather(*(work() for _ in range(max(1, min(connections, len(statements))))))

    shadow_indexes.run_spread = run_spread
    rebuild.run_spread = run_spread


async def rebuild_all(pool: asyncpg.Pool, types: list[str], batch: int) -> int:
    started = time.perf_counter()

    async def one(t: str) -> int:
        t_start = time.perf_counter()
        result = await rebuild_type(pool, t, batch=batch, executor=executor)
        took = time.perf_counter() - t_start
        print(
            f"  {t:<14} {result.events:>9} events {took:7.1f} s {result.events / took:>9,.0f} events/s"
            f" (started at {t_start - started:.1f} s)"
        )
        return result.events

    with replay_executor(await custom_definitions(pool)) as executor:
        return sum(await each_type(await largest_first(pool, types), one))


def phases_text(events: int) -> str:
    """Each phase's wall seconds and PostgreSQL CPU per event, summed over the types (:func:`time_phases`)."""
    return "phases (wall s / PostgreSQL CPU us per event, summed over the types): " + ", ".join(
        f"{k.split('.')[-1].strip('_')} {v:.1f} s / {PHASES_PG[k] / max(events, 1) * 1e6:.0f} us"
        for k, v in PHASES.items()
    )


def statements_text(events: int, limit: int) -> str:
    """The backend CPU per event of the index builds and of VACUUM/ANALYZE, and the ``limit``
    costliest statements (:func:`time_statements`)."""
    builds = sum(s[0] for s in SLOWEST if s[2].startswith("CREATE"))
    vacuums = sum(s[0] for s in SLOWEST if s[2].startswith("VACUUM"))
    lines = [
        f"backend CPU per event: index builds {builds / max(events, 1) * 1e6:.0f} us, VACUUM/ANALYZE"
        f" {vacuums / max(events, 1) * 1e6:.0f} us; the costliest statements:"
    ]
    costliest = sorted(SLOWEST, reverse=True)[:limit]
    lines += [f"  CPU {cpu:5.2f} s wall {took:5.2f} s  {sql}" for cpu, took, sql in costliest]
    return "\n".join(lines)


def report_split(events: int, cpu: tuple[float, float, float]) -> None:
    main_s, workers_s, postgres_s = (c / events * 1e6 for c in cpu)
    total = main_s + workers_s + postgres_s
    print(
        f"CPU per event: main {main_s:.0f} us, workers {workers_s:.0f} us, PostgreSQL {postgres_s:.0f} us;"
        f" total {total:.0f} us"
    )
    print(f"projected on 2 idle cores: {2e6 / total:,.0f} events/s (load average now {os.getloadavg()[0]:.1f})")


@asynccontextmanager
async def scratch_log(
    prefix: str, events: int, max_size: int
) -> AsyncIterator[tuple[Path, str, asyncpg.Pool, list[str]]]:
    """An embedded PostgreSQL in a temporary data directory, migrated, its log holding ``events``
    generated events: (data directory, DSN, pool, the types appended); removed afterwards."""
    data_dir = Path(tempfile.mkdtemp(prefix=prefix))
    embedded = EmbeddedPostgres(data_dir)
    dsn = embedded.start()
    try:
        pool = await asyncpg.create_pool(dsn, min_size=2, max_size=max_size)
        try:
            async with pool.acquire() as conn:
                await migrate(conn)
                await check_projections(conn)
            yield data_dir, dsn, pool, await append_log(pool, events)
        finally:
            await pool.close()
    finally:
        embedded.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


async def main(events: int, batch: int) -> None:
    tune_collector()  # as the CLI's rebuild and a serving process (where the jobs run) do
    speed_before = machine_speed()
    async with scratch_log("fhirledger-replay-", events, 6) as (data_dir, _, pool, types):
        base_seconds = await baseline(pool, types, batch)
        print(
            f"baseline (read the log, COPY latest versions): {base_seconds:.1f} s, "
            f"{events / base_seconds:,.0f} events/s"
        )
        time_phases(data_dir)
        time_statements()
        wal_before = await wal_figures(pool)
        before, start = cpu_seconds(data_dir), time.perf_counter()
        replayed = await rebuild_all(pool, types, batch)
        seconds, after = time.perf_counter() - start, cpu_seconds(data_dir)
        wal = [a - b for a, b in zip(await wal_figures(pool), wal_before, strict=True)]
        print(
            f"WAL of the rebuild: {wal[0] / replayed:,.0f} bytes per event, {wal[1] / replayed:.2f} records"
            f" and {wal[2] / replayed:.3f} full-page images per event; {wal[3]} checkpoint(s) meanwhile"
        )
        print(phases_text(replayed))
        speed_after = machine_speed()
        print(
            f"full rebuild (current state + search index, {len(types)} types): {replayed} events in "
            f"{seconds:.1f} s = {replayed / seconds:,.0f} events/s; ratio to baseline {base_seconds / seconds:.0%}"
        )
        print(yardstick_text(speed_before, speed_after, replayed / seconds, "events/s"))
        print(statements_text(replayed, 12))
        report_split(replayed, tuple(a - b for a, b in zip(after, before, strict=True)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=BATCH)
    parser.add_argument("--log-cache", type=Path, help="keep the generated log here and replay it again")
    a = parser.parse_args()
    LOG_CACHE = a.log_cache
    asyncio.run(main(a.events, a.batch))
