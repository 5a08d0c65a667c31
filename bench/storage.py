"""Storage and ingest benchmark on real Synthea patients: every public R4 bundle of
``../shared/synthea-r4`` posted to ``POST /fhir`` as a transaction (``--concurrency`` clients) on a
fresh embedded server, then the bytes on disk per stored resource, by kind of table (event log,
current state, search side tables; heap, TOAST and indexes each), from ``pg_total_relation_size``.

    python bench/storage.py [--dir ../shared/synthea-r4] [--limit N] [--concurrency 2] [--workers 1]

Prints resources/s of the ingest and bytes per resource; the per-table list names the largest.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import sys
import time
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import ServerProcess
from bench.rawhttp import RawConnection

SIZES = """
SELECT c.relname AS name,
       pg_relation_size(c.oid) AS heap,
       coalesce(pg_total_relation_size(c.reltoastrelid), 0) AS toast,
       pg_indexes_size(c.oid) AS indexes,
       pg_total_relation_size(c.oid) AS total
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind = 'r'
ORDER BY total DESC
"""


def group_of(name: str) -> str:
    if name == "event_log":
        return "event log"
    if name.startswith("cur_"):
        return "current state (cur_*)"
    if name.startswith("sp_"):
        return "search index (sp_*)"
    return "other"


async def ingest(base: str, files: list[Path], concurrency: int) -> tuple[int, float, list[str]]:
    """Post every bundle; returns (resources stored, seconds, rejections)."""
    conns = [RawConnection(base) for _ in range(concurrency)]
    queue = iter(files)
    stored = 0
    rejected: list[str] = []
    headers = {"Content-Type": "application/fhir+json"}

    async def worker(conn: RawConnection) -> None:
        nonlocal stored
        for path in queue:
            raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
            status, _, data = await conn.request("POST", "/", raw, headers)
            if status == 200:
                stored += data.count(b'"location"')
            else:
                rejected.append(f"{path.name}: {status} {data[:300]!r}")

    start = time.perf_counter()
    try:
        await asyncio.gather(*[worker(c) for c in conns])
    finally:
        for c in conns:
            await c.close()
    return stored, time.perf_counter() - start, rejected


async def sizes(dsn: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CHECKPOINT")
        await conn.execute("VACUUM ANALYZE")
        return await conn.fetch(SIZES)
    finally:
        await conn.close()


def report(rows: list[asyncpg.Record], resources: int) -> None:
    groups: dict[str, list[int]] = {}
    for r in rows:
        g = groups.setdefault(group_of(r["name"]), [0, 0, 0, 0])
        for i, k in enumerate(("heap", "toast", "indexes", "total")):
            g[i] += r[k]
    total = sum(g[3] for g in groups.values())
    print(f"\n{'tables':<24} {'heap':>10} {'toast':>10} {'indexes':>10} {'total':>10}   bytes/resource")
    for name, (heap, toast, idx, tot) in sorted(groups.items(), key=lambda kv: -kv[1][3]):
        mb = lambda v: f"{v / 2**20:8.1f}MB"  # noqa: E731
        print(f"{name:<24} {mb(heap):>10} {mb(toast):>10} {mb(idx):>10} {mb(tot):>10}   {tot / resources:8.0f}")
    print(f"{'all':<24} {'':>10} {'':>10} {'':>10} {total / 2**20:8.1f}MB   {total / resources:8.0f}")
    print("\nlargest tables:")
    for r in rows[:12]:
        print(
            f"  {r['name']:<36} {r['total'] / 2**20:8.1f} MB (heap {r['heap'] / 2**20:.1f}, "
            f"toast {r['toast'] / 2**20:.1f}, indexes {r['indexes'] / 2**20:.1f})"
        )


async def main(directory: str, limit: int, concurrency: int, workers: int) -> None:
    files = sorted(Path(directory).glob("*.json*"))[: limit or None]
    with ServerProcess(workers=workers) as server:
        stored, seconds, rejected = await ingest(server.base, files, concurrency)
        print(
            f"ingested {len(files) - len(rejected)}/{len(files)} bundles, {stored} resources in {seconds:.1f} s: "
            f"{stored / seconds:,.0f} resources/s (concurrency {concurrency}, server workers {workers})"
        )
        for line in rejected[:10]:
            print("  REJECTED", line)
        report(await sizes(server.dsn), stored)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "synthea-r4"))
    parser.add_argument("--limit", type=int, default=0, help="at most this many bundles (0: all)")
    parser.add_argument("--concurrency", type=int, default=2, help="concurrent clients (default 2)")
    parser.add_argument("--workers", type=int, default=1, help="server worker processes (default 1)")
    a = parser.parse_args()
    asyncio.run(main(a.dir, a.limit, a.concurrency, a.workers))
