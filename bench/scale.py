"""Scale benchmark: a ~1M-resource database built once from real Synthea Bundles, and a
realistic 38-query search mix measured at two sizes side by side in one run; ``targets`` measures
every target of the performance issue on the two databases (:mod:`bench.scale_targets`).

    python bench/scale.py build --data-dir /work/scale-db/a --copies 3    # ~190k resources
    python bench/scale.py build --data-dir /work/scale-db/b --copies 16   # ~1M resources
    python bench/scale.py measure --data-dir /work/scale-db/a --data-dir /work/scale-db/b
    python bench/scale.py targets --data-dir /work/scale-db/a --data-dir /work/scale-db/b

``build`` starts ``fhirledger serve`` on the data directory and posts the Bundles not loaded yet
(:mod:`bench.scale_build`); a data directory copied from a smaller build grows to more copies. It
ends with the CPU per resource of the server's Python processes, PostgreSQL's backends, its
autovacuum workers, its other processes and the posting client (:mod:`bench.process_cpu`): all
run on the same cores, so they say where an ingest's time goes at that size.
``measure`` starts a server on every data directory at once and lets the sizes take turns round
by round (a shared machine's load then falls on all alike); it prints, per size: each template's
p50/p99 one at a time, the mix's throughput and p99 at concurrency 8 and p50/p99 at concurrency 1,
a raw-asyncpg baseline (a read by primary key) measured in the same run, and then the ratios of
the sizes against the targets (:mod:`bench.scale_measure`). ``--explain`` prints EXPLAIN ANALYZE of
each template's page query at each size first.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from app.cli import default_workers
from bench.common import ServerProcess, wal_figures
from bench.process_cpu import RoleSampler
from bench.scale_build import build, record_step


async def wal_now(dsn: str) -> tuple[tuple[int, int, int, int], int]:
    """The WAL figures so far and the events in the log."""
    conn = await asyncpg.connect(dsn)
    try:
        return await wal_figures(conn), await conn.fetchval("SELECT count(*) FROM event_log")
    finally:
        await conn.close()


def wal_text(wal: list[int], resources: int) -> str:
    """The WAL a build wrote, per resource: after each checkpoint, the first change of every page
    goes whole to the WAL (a full-page image), so the checkpoints meanwhile show in these figures."""
    per = max(resources, 1)
    return (
        f"WAL: {wal[0] / per:,.0f} bytes, {wal[1] / per:.1f} records and {wal[2] / per:.3f} full-page images"
        f" per resource; {wal[3]} checkpoint(s) meanwhile"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="load Synthea copies into a data directory (resumable)")
    b.add_argument("--data-dir", required=True)
    b.add_argument("--copies", type=int, required=True, help="copy 0 is the files as they are")
    b.add_argument("--concurrency", type=int, default=4)
    b.add_argument(
        "--workers", type=int, default=default_workers(), help="server worker processes (default: the server's)"
    )
    b.add_argument("--base", help="post to this running server's FHIR base instead of starting one")
    m = sub.add_parser("measure", help="run the mix on each data directory, side by side")
    m.add_argument("--data-dir", action="append", required=True)
    m.add_argument("--repeat", type=int, default=30, help="runs of each template one at a time")
    m.add_argument("--mix-rounds", type=int, default=8, help="rounds of the 38-query mix (c=1, c=8, baseline)")
    m.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE of each template")
    t = sub.add_parser("targets", help="every performance target in one run (bench/scale_targets.py)")
    t.add_argument("--data-dir", action="append", required=True, help="the smaller, then the larger database")
    t.add_argument("--repeat", type=int, default=20, help="runs of each search template one at a time")
    t.add_argument("--mix-rounds", type=int, default=4, help="rounds of the search mix")
    a = parser.parse_args()
    if a.command == "build":
        data_dir = Path(a.data_dir).resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        if a.base:
            asyncio.run(build(a.base, data_dir, a.copies, a.concurrency))
        else:
            with ServerProcess(str(data_dir), workers=a.workers) as server, RoleSampler(server.pid) as cpu:
                before, events_before = asyncio.run(wal_now(server.dsn))
                resources, seconds = asyncio.run(build(server.base, data_dir, a.copies, a.concurrency))
                after, events_after = asyncio.run(wal_now(server.dsn))
            step = {
                "date": time.strftime("%Y-%m-%d %H:%M"),
                "command": f"python bench/scale.py build --data-dir {data_dir} --copies {a.copies}",
                "resources_before": events_before,
                "resources_after": events_after,
                "posted": resources,
                "seconds": round(seconds, 1),
                "cpu": cpu.per_item(resources),
                "wal": wal_text([b - a for a, b in zip(before, after, strict=True)], resources),
            }
            print(step["cpu"])
            print(step["wal"])
            if resources:
                record_step(data_dir, step)
    elif a.command == "measure":
        from bench.scale_measure import measure_all

        asyncio.run(measure_all([Path(d).resolve() for d in a.data_dir], a.repeat, a.mix_rounds, a.explain))
    else:
        from bench.scale_targets import run

        if len(a.data_dir) != 2:
            parser.error("targets takes two data directories: the smaller database, then the larger")
        asyncio.run(run([Path(d).resolve() for d in a.data_dir], a.repeat, a.mix_rounds))


if __name__ == "__main__":
    main()
