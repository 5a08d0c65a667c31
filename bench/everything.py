"""``Patient/[id]/$everything`` benchmark: load Synthea-shaped patients (transaction Bundles of a
Patient and ~200 encounters, conditions and observations), then fetch whole records by following
the ``next`` links over HTTP, and in the same run the baseline: the same resources read with raw
asyncpg, one query per compartment type with the patient's reference (no paging, no Bundle, no
HTTP). Prints latency per record, resources/s and the ratio.

    python bench/everything.py [--patients 20] [--count 100] [--repeat 10] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import ServerProcess, run_load
from bench.rawhttp import RawConnection
from bench.search import load


async def record_over_http(conn: RawConnection, prefix: str, pid: str, count: int) -> int:
    """Every match of the patient's record, following next links; the number of match entries."""
    path: str | None = f"/Patient/{pid}/$everything?_count={count}"
    seen = 0
    while path is not None:
        status, _, body = await conn.request("GET", path)
        assert status == 200, body[:300]
        bundle = orjson.loads(body)
        seen += sum(1 for e in bundle.get("entry", []) if e["search"]["mode"] == "match")
        nxt = next((x["url"] for x in bundle.get("link", []) if x["relation"] == "next"), None)
        path = None if nxt is None else (lambda u: f"{u.path.removeprefix(prefix)}?{u.query}")(urlsplit(nxt))
    return seen


def baseline_queries() -> list[str]:
    """One SQL per Patient-compartment type: its current resources referencing the patient by any
    of the type's compartment parameters (and the Patient itself by id)."""
    from app.fhirspec.compartments import member_params, member_types
    from app.projections.current_state import current_table, resource_sql
    from app.projections.search_index import search_table

    resource = resource_sql("r")
    out = [f"SELECT {resource} FROM {current_table('Patient')} r WHERE r.id = $1 AND NOT r.deleted"]
    for t in member_types("Patient")[1:]:
        codes = ", ".join(f"'{p}'" for p in member_params("Patient", t))
        out.append(
            f"SELECT {resource} FROM {current_table(t)} r WHERE NOT r.deleted AND r.key IN (SELECT s.key FROM"
            f" {search_table(t, 'reference')} s WHERE s.param IN ({codes}) AND s.target_type = 'Patient'"
            " AND s.target_id = $1) ORDER BY r.key"
        )
    return out


async def main(patients: int, count: int, repeat: int, data_dir: str | None) -> None:
    with ServerProcess(data_dir) as server:
        pool = await asyncpg.create_pool(server.dsn, min_size=2, max_size=4)
        have = await pool.fetchval("SELECT count(*) FROM cur_patient")
        if have < patients:
            seconds = await load(server.base, patients - have)
            print(f"loaded {patients - have} patients in {seconds:.1f} s")
        await pool.execute("ANALYZE")
        pids = [r["id"] for r in await pool.fetch("SELECT id FROM cur_patient ORDER BY id LIMIT $1", patients)]
        print(f"{len(pids)} patients, {await pool.fetchval('SELECT count(*) FROM event_log')} events")
        conn = RawConnection(server.base)
        prefix = urlsplit(server.base).path
        queries = baseline_queries()
        sizes: list[int] = []

        async def http_op(i: int) -> None:
            sizes.append(await record_over_http(conn, prefix, pids[i % len(pids)], count))

        async def sql_op(i: int) -> None:
            async with pool.acquire() as c:
                for sql in queries:
                    await c.fetch(sql, pids[i % len(pids)])

        await run_load("warm", 1, min(5, len(pids)), http_op)
        sizes.clear()
        ops = repeat * len(pids)
        http = await run_load("http", 1, ops, http_op)
        base = await run_load("sql", 1, ops, sql_op)
        per_record = sum(sizes) / len(sizes)
        print(f"record size: {per_record:.0f} resources; pages of _count={count}")
        for r in (http, base):
            rate = per_record * r.throughput
            print(f"{r.name:<5} p50 {r.pct(0.5):8.1f} ms  p99 {r.pct(0.99):8.1f} ms  {rate:8.0f} resources/s")
        print(f"ratio (baseline p50 / $everything p50): {base.pct(0.5) / http.pct(0.5):.0%}")
        await pool.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", type=int, default=20)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--data-dir", default=None)
    a = parser.parse_args()
    start = time.perf_counter()
    asyncio.run(main(a.patients, a.count, a.repeat, a.data_dir))
    print(f"(run took {time.perf_counter() - start:.0f} s; a shared machine: compare ratios, not absolute figures)")
