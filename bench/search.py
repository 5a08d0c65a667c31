"""Search benchmark: load ≥ 100,000 Synthea-shaped resources through the API (transaction
Bundles), then measure p50/p99 latency per query of a fixed mix over HTTP and, in the same run,
the same SQL run directly with asyncpg (the baseline: no HTTP, no parsing, no Bundle), and show
with EXPLAIN that each query is index-backed.

    python bench/search.py [--patients 500] [--data-dir DIR]   # DIR is reused if already loaded
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from urllib.parse import parse_qsl

import asyncpg
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import ServerProcess, run_load
from bench.generate import bundles
from bench.rawhttp import RawConnection

MIX = [
    ("Patient by name", "Patient", "name=smi"),
    ("Patient by identifier", "Patient", "identifier=http://hospital.example.org/mrn|MRN00000123"),
    ("Patient by birthdate range", "Patient", "birthdate=ge1960-01-01&birthdate=lt1961-01-01"),
    ("Observation by code", "Observation", "code=http://loinc.org|718-7"),
    ("Observation by patient+code", "Observation", "patient={patient}&code=http://loinc.org|718-7"),
    ("Observation by date range", "Observation", "date=ge2020-01-01&date=lt2020-01-15"),
    ("Observation by value-quantity", "Observation", "value-quantity=gt180|http://unitsofmeasure.org|mg/dL"),
    ("Observation _sort=-date", "Observation", "_sort=-date"),
    ("Observation code _sort=-date", "Observation", "code=http://loinc.org|2339-0&_sort=-date"),
    ("Condition by code, total", "Condition", "code=http://snomed.info/sct|44054006&_total=accurate"),
]


async def load(base: str, patients: int, clients: int = 2) -> float:
    data = [orjson.dumps(b) for b in bundles(patients, 200, seed=11)]
    queue = list(range(len(data)))
    conns = [RawConnection(base) for _ in range(clients)]
    headers = {"Content-Type": "application/fhir+json"}
    start = time.perf_counter()
    done = 0

    async def worker(conn: RawConnection) -> None:
        nonlocal done
        while queue:
            i = queue.pop()
            status, _, body = await conn.request("POST", "", data[i], headers)
            assert status == 200, body[:300]
            done += 1
            if done % 50 == 0:
                print(f"  loaded {done}/{len(data)} bundles", flush=True)

    await asyncio.gather(*[worker(c) for c in conns])
    return time.perf_counter() - start


def baseline_sql(pid: str) -> dict[str, tuple[str, list, str, list]]:
    """The SQL the engine runs for each query (page + count), to run raw."""
    from app.queries.search.parse import parse_search
    from app.queries.search.plan import count_sql, page_sql

    out = {}
    for name, rtype, query in MIX:
        q = parse_search(
            rtype,
            parse_qsl(query.replace("{patient}", f"Patient/{pid}")),
            strict=True,
            default_count=20,
            max_count=1000,
        )
        page = page_sql(q, "")
        out[name] = (page.sql, page.args, *count_sql(q, ""))
    return out


def _plan_summary(plan: list[dict]) -> str:
    nodes: list[str] = []

    def walk(node: dict) -> None:
        kind = node["Node Type"]
        if "Index" in kind:
            nodes.append(f"{kind}({node.get('Index Name', '')})")
        elif kind == "Seq Scan":
            nodes.append(f"SeqScan({node.get('Relation Name')})")
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    return ", ".join(dict.fromkeys(nodes))


async def main(patients: int, data_dir: str | None, repeat: int) -> None:
    with ServerProcess(data_dir) as server:
        pool = await asyncpg.create_pool(server.dsn, min_size=2, max_size=8)
        have = await pool.fetchval("SELECT count(*) FROM event_log")
        if have < patients * 201:
            seconds = await load(server.base, patients - have // 201)
            print(
                f"loaded {patients * 201 - have} resources in {seconds:.1f} s "
                f"({(patients * 201 - have) / seconds:.0f} resources/s)"
            )
        total = await pool.fetchval("SELECT count(*) FROM event_log")
        await pool.execute("ANALYZE")
        pid = await pool.fetchval("SELECT id FROM cur_patient ORDER BY id LIMIT 1")
        print(f"database holds {total} resources\n")
        raw = baseline_sql(pid)
        conn = RawConnection(server.base)
        head = ("query", "http p50", "http p99", "sql p50", "sql p99", "ratio", "hits")
        print(f"{head[0]:<32} {head[1]:>9} {head[2]:>9} {head[3]:>8} {head[4]:>8} {head[5]:>6} {head[6]:>6}  plan")
        for name, rtype, query in MIX:
            query = query.replace("{patient}", f"Patient/{pid}")
            path = f"/{rtype}?{query}"
            hits = 0

            async def http_op(_: int, path: str = path) -> None:
                nonlocal hits
                status, _, body = await conn.request("GET", path)
                assert status == 200, body[:300]
                hits = orjson.loads(body).get("total", 0)

            sql, args, csql, cargs = raw[name]

            async def sql_op(_: int, sql: str = sql, args: list = args, csql: str = csql, cargs: list = cargs) -> None:
                async with pool.acquire() as c:
                    await c.fetch(sql, *args)
                    await c.fetchval(csql, *cargs)

            await run_load(name, 1, 5, http_op)  # warm
            http = await run_load(name, 1, repeat, http_op)
            base = await run_load(name, 1, repeat, sql_op)
            plan = orjson.loads(await pool.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args))
            ratio = f"{base.pct(0.5) / http.pct(0.5):.0%}"
            print(
                f"{name:<32} {http.pct(0.5):9.2f} {http.pct(0.99):9.2f} {base.pct(0.5):8.2f} "
                f"{base.pct(0.99):8.2f} {ratio:>6} {hits:>6}  "
                f"{_plan_summary(plan)}"
            )
        mix_paths = [f"/{r}?{q.replace('{patient}', f'Patient/{pid}')}" for _, r, q in MIX]
        conns = [RawConnection(server.base) for _ in range(8)]

        async def mix_op(i: int) -> None:
            c = conns.pop()  # each request in flight has a connection of its own
            try:
                status, _, _ = await c.request("GET", mix_paths[i % len(mix_paths)])
            finally:
                conns.append(c)
            assert status == 200

        await run_load("mix", 1, 8, mix_op)
        mix = await run_load("mix c=8", 8, 40 * len(MIX), mix_op)
        print(
            f"\nmixed load, 8 connections (one at a time each): {mix.throughput:.0f} searches/s, "
            f"p50 {mix.pct(0.5):.1f} ms, p99 {mix.pct(0.99):.1f} ms"
        )
        await pool.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", type=int, default=500)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--repeat", type=int, default=60)
    a = parser.parse_args()
    asyncio.run(main(a.patients, a.data_dir, a.repeat))
