"""Storage and ingest benchmark on real Synthea patients: every public R4 bundle of
``../shared/synthea-r4`` posted to ``POST /fhir`` as a transaction (``--concurrency`` clients) on a
fresh embedded server, then the bytes on disk per stored resource, by kind of table (event log,
current state, search side tables; heap, TOAST and indexes each), from ``pg_total_relation_size``.

    python bench/storage.py [--dir ../shared/synthea-r4] [--limit N] [--concurrency 2] [--workers 1] [--keep DIR]

Prints resources/s of the ingest and bytes per resource; the per-table list names the largest.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import sys
import time
from collections.abc import Callable
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
       pg_total_relation_size(c.oid) AS total,
       c.reltuples > 0 AS filled
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind = 'r'
ORDER BY total DESC
"""
INDEX_SIZES = """
SELECT i.indexrelid::regclass::text AS name, t.relname AS table_name, pg_relation_size(i.indexrelid) AS size
FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = 'public' AND t.reltuples > 0
"""


def group_of(name: str) -> str:
    if name == "event_log":
        return "event log"
    if name.startswith("cur_"):
        return "current state (cur_*)"
    if name.startswith("sp_"):
        return "search index (sp_*)"
    return "other"


def kind_of(name: str) -> str:
    """The side-table kind of ``sp_<type>_<kind>`` (``sp_*_token``), else the table's group."""
    return "sp_*_" + name.rsplit("_", 1)[1] if name.startswith("sp_") else group_of(name)


def index_kind(name: str, table: str) -> str:
    """``sp_*_token_hash`` for ``sp_observation_token_hash``; the name itself outside side tables."""
    if not table.startswith("sp_"):
        return name if not table.startswith("cur_") else "cur_*" + name[len(table) :]
    return kind_of(table) + name[len(table) :]


def _default_dir() -> Path:
    """``shared/synthea-r4`` beside the checkout, or beside the checkout's parent (a worktree)."""
    here = Path(__file__).resolve().parents[1]
    for base in (here.parent, here.parent.parent):
        if (base / "shared" / "synthea-r4").is_dir():
            return base / "shared" / "synthea-r4"
    return here.parent / "shared" / "synthea-r4"


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


async def sizes(dsn: str) -> tuple[list[asyncpg.Record], list[asyncpg.Record]]:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CHECKPOINT")
        await conn.execute("VACUUM ANALYZE")
        return await conn.fetch(SIZES), await conn.fetch(INDEX_SIZES)
    finally:
        await conn.close()


def _mb(value: int) -> str:
    return f"{value / 2**20:8.1f}MB"


def _table(title: str, groups: dict[str, list[int]], resources: int) -> None:
    print(f"\n{title:<24} {'heap':>10} {'toast':>10} {'indexes':>10} {'total':>10}   bytes/resource")
    for name, (heap, toast, idx, tot) in sorted(groups.items(), key=lambda kv: -kv[1][3]):
        print(f"{name:<24} {_mb(heap):>10} {_mb(toast):>10} {_mb(idx):>10} {_mb(tot):>10}   {tot / resources:8.0f}")


def _sums(rows: list[asyncpg.Record], key: Callable[[str], str]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for r in rows:
        g = groups.setdefault(key(r["name"]), [0, 0, 0, 0])
        for i, k in enumerate(("heap", "toast", "indexes", "total")):
            g[i] += r[k]
    return groups


def report(rows: list[asyncpg.Record], indexes: list[asyncpg.Record], resources: int) -> None:
    """Bytes per resource by group and by kind of table; the pages of tables that hold no rows (a
    fixed cost of each table and index, whatever the data) apart."""
    filled = [r for r in rows if r["filled"]]
    empty = sum(r["total"] for r in rows if not r["filled"])
    _table("tables", _sums(filled, group_of), resources)
    total = sum(r["total"] for r in rows)
    for name, size in (("empty tables (fixed)", empty), ("all", total), ("all but empty tables", total - empty)):
        print(f"{name:<24} {'':>32} {_mb(size):>10}   {size / resources:8.0f}")
    _table("kinds (filled tables)", _sums(filled, kind_of), resources)
    by_index: dict[str, int] = {}
    for r in indexes:
        key = index_kind(r["name"], r["table_name"])
        by_index[key] = by_index.get(key, 0) + r["size"]
    print("\nindexes (filled tables)                   bytes/resource")
    for name, size in sorted(by_index.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<40} {size / resources:8.0f}")
    print("\nlargest tables:")
    for r in rows[:12]:
        print(
            f"  {r['name']:<36} {r['total'] / 2**20:8.1f} MB (heap {r['heap'] / 2**20:.1f}, "
            f"toast {r['toast'] / 2**20:.1f}, indexes {r['indexes'] / 2**20:.1f})"
        )


async def main(directory: str, limit: int, concurrency: int, workers: int, keep: str | None) -> None:
    files = sorted(Path(directory).glob("*.json*"))[: limit or None]
    with ServerProcess(data_dir=keep, workers=workers) as server:
        stored, seconds, rejected = await ingest(server.base, files, concurrency)
        print(
            f"ingested {len(files) - len(rejected)}/{len(files)} bundles, {stored} resources in {seconds:.1f} s: "
            f"{stored / seconds:,.0f} resources/s (concurrency {concurrency}, server workers {workers})"
        )
        for line in rejected[:10]:
            print("  REJECTED", line)
        report(*await sizes(server.dsn), stored)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default=str(_default_dir()))
    parser.add_argument("--limit", type=int, default=0, help="at most this many bundles (0: all)")
    parser.add_argument("--concurrency", type=int, default=2, help="concurrent clients (default 2)")
    parser.add_argument("--workers", type=int, default=1, help="server worker processes (default 1)")
    parser.add_argument("--keep", help="the server's data directory, kept afterwards (default: a temporary one)")
    a = parser.parse_args()
    asyncio.run(main(a.dir, a.limit, a.concurrency, a.workers, a.keep))
