"""A replay worker's CPU per resource, without PostgreSQL in the measured part: a sample of a real
database's last events, read as the bulk load reads them (``latest_before``, stored bytes), each
type in proportion to its share of the log, then encoded round after round by the workers' own
function (``app/projections/bulk_load.py`` ``encode_latest``) in the workers' batch sizes. The
baseline, measured in the same run: decompressing and parsing the same rows alone (what any
encoding of them must do first). Under callgrind, the instruction count of the rounds is exact from
run to run: the A/B instrument where CPU times on these machines swing by tens of percent.

    python bench/replay_encode.py --data-dir /work/scale-db/b [--resources 20000] [--rounds 5]
    valgrind --tool=callgrind --instr-atstart=no python bench/replay_encode.py --data-dir D \\
        --resources 4000 --rounds 1 --callgrind     # then: grep summary callgrind.out.*.1, / resources

Run it with ``PYTHONPATH`` naming the tree to measure (its own is searched after it); the data
directory's embedded PostgreSQL must not be running (it is started to read the sample, then
stopped before the rounds).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import asyncpg
import orjson

sys.path.append(str(Path(__file__).resolve().parent.parent))  # after PYTHONPATH: its tree is measured
from app.collector import tune_collector
from app.db.embedded import EmbeddedPostgres
from app.events.codec import decode
from app.events.latest import LatestRow, latest_before
from app.events.store import counts_by_type
from app.projections.bulk_load import encode_latest
from bench.common import callgrind_control

WORKER_BATCH = 2500
"""Resources per call, as a replay's batch of 5,000 split over two workers."""


async def sample(data_dir: Path, resources: int) -> dict[str, list[LatestRow]]:
    """Up to ``resources`` last events, each type by its share of the log (at least one)."""
    embedded = EmbeddedPostgres(data_dir)
    dsn = embedded.start()
    try:
        conn = await asyncpg.connect(dsn)
        try:
            counts = {t: n for t, (n, _) in (await counts_by_type(conn)).items()}
            total = sum(counts.values()) or 1
            out = {}
            for resource_type, n in sorted(counts.items(), key=lambda item: -item[1]):
                share = max(1, resources * n // total)
                out[resource_type] = await latest_before(conn, resource_type, None, None, share, decode=False)
            return out
        finally:
            await conn.close()
    finally:
        embedded.stop()


def batches(rows: dict[str, list[LatestRow]]) -> list[tuple[str, list[LatestRow]]]:
    return [(t, r[i : i + WORKER_BATCH]) for t, r in rows.items() for i in range(0, len(r), WORKER_BATCH)]


def encode_all(work: list[tuple[str, list[LatestRow]]]) -> None:
    for resource_type, rows in work:
        encode_latest(resource_type, rows)


def parse_all(work: list[tuple[str, list[LatestRow]]]) -> None:
    for _, rows in work:
        [orjson.loads(decode(r[4])) for r in rows if r[4] is not None]


def timed(function: Callable[[list], None], work: list, grind: bool) -> float:
    """CPU seconds of one round (``grind``: instructions counted during it only, one dump)."""
    gc.collect()
    if grind:
        callgrind_control("--instr=on")
    before = time.process_time()
    function(work)
    spent = time.process_time() - before
    if grind:
        callgrind_control("--dump", "--instr=off")
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="a built database (bench/scale.py build)")
    parser.add_argument("--resources", type=int, default=20_000, help="the sample's size (20,000)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--callgrind", action="store_true", help="count instructions during the encoding rounds only")
    a = parser.parse_args()
    rows = asyncio.run(sample(a.data_dir, a.resources))
    work = batches(rows)
    n = sum(len(r) for r in rows.values())
    tune_collector()  # as in a replay worker (app/projections/rebuild.py _init_worker)
    encode_all(work)  # warm-up: row functions built, caches filled
    parse_all(work)
    encode = [timed(encode_all, work, a.callgrind) * 1e6 / n for _ in range(a.rounds)]
    if a.callgrind:
        print(f"{n} resources of {len(rows)} types; instructions: callgrind's dumps, one per round (divide by {n})")
        return
    parse = [timed(parse_all, work, False) * 1e6 / n for _ in range(a.rounds)]
    e, p = statistics.median(encode), statistics.median(parse)
    print(f"{n} resources of {len(rows)} types from {a.data_dir}")
    print(f"encode_latest: {' '.join(f'{x:.1f}' for x in encode)}, median {e:.1f} us CPU per resource")
    print(f"baseline, decompress and parse only: median {p:.1f} us; ratio {e / p:.2f}x")


if __name__ == "__main__":
    main()
