"""A replay worker's whole work, alone: CPU per resource of ``bulk_load.encode_latest`` (decompress,
parse, extract the search rows, encode them and the current-state rows as COPY data) over the last
versions of bench/replay.py's generated log, in the order a replay reads them (by id, descending),
in batches of a replay's size, in this process.

    python bench/replay_worker.py [--events 400000] [--resources 120000] [--rounds 3] [--log-cache DIR]

Its figure is CPU time of this process, each type's fastest of ``--rounds``: on these machines,
whose speed moves from second to second, it shows a change of a few percent in the workers that
whole replays alternated side by side do not (session 16: ±10% between runs of one commit). The
log is bench/replay.py's (``--log-cache``: the same pickle, generated there when missing). Run it
from two checkouts in turn (``git worktree add``) to compare commits."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
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


def main(events: int, resources: int, rounds: int) -> None:
    rows = replay.cached_rows(events)[:resources]
    speed_before = machine_speed()
    total = count = 0.0
    for resource_type, latest in sorted(latest_by_type(rows).items()):
        seconds = worker_cpu(resource_type, latest, rounds)
        total, count = total + seconds, count + len(latest)
        print(f"{resource_type:<12} {len(latest):>7} resources {seconds / len(latest) * 1e6:7.1f} us/resource")
    speed_after = machine_speed()
    print(f"all {count:,.0f} resources: {total / count * 1e6:.1f} us/resource of CPU")
    print(yardstick_text(speed_before, speed_after, count / total, "resources/s of one core"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=400_000, help="the log of bench/replay.py --events N")
    parser.add_argument("--resources", type=int, default=120_000, help="events of the log taken, from its start")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--log-cache", type=Path, help="bench/replay.py's --log-cache")
    a = parser.parse_args()
    replay.LOG_CACHE = a.log_cache
    main(a.events, a.resources, a.rounds)
