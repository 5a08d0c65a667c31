"""A replay worker's whole work, alone: CPU per resource of ``bulk_load.encode_latest`` (decompress,
parse, extract the search rows, encode them and the current-state rows as COPY data) over the last
versions of bench/replay.py's generated log, in the order a replay reads them (by id, descending),
in batches of a replay's size, in this process.

    python bench/replay_worker.py [--events 400000] [--resources 120000] [--rounds 3] [--log-cache DIR]
    python bench/replay_worker.py --data-dir /work/scale-db/a [--resources 20000]

With ``--data-dir`` the resources are a real database's instead (a ``bench/scale.py build`` of
Synthea patients: Claims and ExplanationOfBenefits among them, which cost far more than the
generated log's four types): the last events of up to ``--resources`` resources of each type, read
from its log as a replay reads them (the embedded PostgreSQL must not be running already).

Its figure is CPU time of this process, each type's fastest of ``--rounds``: on these machines,
whose speed moves from second to second, it shows a change of a few percent in the workers that
whole replays alternated side by side do not (session 16: ±10% between runs of one commit). The
log is bench/replay.py's (``--log-cache``: the same pickle, generated there when missing). Run it
from two checkouts in turn (``git worktree add``) to compare commits."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from app.db.embedded import EmbeddedPostgres
from app.events.latest import finished_horizon, latest_before
from app.events.store import counts_by_type
from app.projections.bulk_load import encode_latest
from bench import replay
from bench.common import machine_speed, yardstick_text


def latest_by_type(rows: list[tuple]) -> dict[str, list[tuple]]:
    """The last event of each resource as ``latest_before`` gives it (``LatestRow``; position and
    key made up from the log order), by type, in descending id order."""
    by_type: dict[str, dict[str, tuple]] = {}
    for i, (rtype, rid, version, kind, stored, when, _, _) in enumerate(rows):
        latest = by_type.setdefault(rtype, {})
        earlier = latest.get(rid)
        latest[rid] = (i + 1, rid, version, kind, stored, when, earlier[6] if earlier else i + 1)
    return {t: sorted(latest.values(), key=lambda r: r[1], reverse=True) for t, latest in by_type.items()}


def data_dir_rows(data_dir: Path, per_type: int) -> dict[str, list[tuple]]:
    """Up to ``per_type`` last events of each type of a data directory's log, as replay reads them."""

    async def read(dsn: str) -> dict[str, list[tuple]]:
        conn = await asyncpg.connect(dsn)
        try:
            horizon, counts = await finished_horizon(conn), await counts_by_type(conn)
            by_type: dict[str, list[tuple]] = {}
            for resource_type in sorted(counts):
                rows: list[tuple] = []
                while len(rows) < per_type:
                    below = rows[-1][1] if rows else None
                    more = await latest_before(conn, resource_type, horizon, below, replay.BATCH, decode=False)
                    rows += more
                    if len(more) < replay.BATCH:
                        break
                by_type[resource_type] = rows[:per_type]
            return by_type
        finally:
            await conn.close()

    embedded = EmbeddedPostgres(data_dir)
    try:
        return asyncio.run(read(embedded.start()))
    finally:
        embedded.stop()


def worker_cpu(resource_type: str, rows: list[tuple], rounds: int) -> float:
    """The fastest round's CPU seconds of encoding ``rows`` batch by batch (each worker gets its share
    of a batch: one worker per core, as ``replay_executor`` starts them)."""
    share = -(-replay.BATCH // (os.cpu_count() or 2))
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        for i in range(0, len(rows), share):
            encode_latest(resource_type, rows[i : i + share])
        best = min(best, time.process_time() - start)
    return best


def main(events: int, resources: int, rounds: int, data_dir: Path | None) -> None:
    if data_dir is None:
        by_type = latest_by_type(replay.cached_rows(events)[:resources])
    else:
        by_type = data_dir_rows(data_dir, resources)
    speed_before = machine_speed()
    total = count = 0.0
    for resource_type, latest in sorted(by_type.items()):
        seconds = worker_cpu(resource_type, latest, rounds)
        total, count = total + seconds, count + len(latest)
        print(f"{resource_type:<26} {len(latest):>7} resources {seconds / len(latest) * 1e6:7.1f} us/resource")
    speed_after = machine_speed()
    print(f"all {count:,.0f} resources: {total / count * 1e6:.1f} us/resource of CPU")
    print(yardstick_text(speed_before, speed_after, count / total, "resources/s of one core"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=400_000, help="the log of bench/replay.py --events N")
    parser.add_argument(
        "--resources", type=int, default=120_000, help="events of the log taken from its start (per type: --data-dir)"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--log-cache", type=Path, help="bench/replay.py's --log-cache")
    parser.add_argument("--data-dir", type=Path, help="a real database's log instead of the generated one")
    a = parser.parse_args()
    replay.LOG_CACHE = a.log_cache
    main(a.events, a.resources, a.rounds, a.data_dir)
