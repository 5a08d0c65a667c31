"""The most a replay could gain from faster workers: every projection of a real database rebuilt
twice in one process, the second time with the workers' output of the first (each bulk-load batch's
encoded rows, kept in memory) handed over at once instead of computed. The second rebuild is what
the main process and PostgreSQL cost alone, so its rate is the ceiling of a replay whose workers
cost nothing: the figure that says what a faster worker (compiled code, say) must deliver to reach
a target, measured rather than worked out from the CPU split.

    python bench/replay_floor.py --data-dir /work/scale-db/b2

It runs as ``bench/replay_data_dir.py`` does (``fhirledger projections rebuild --all``'s functions);
the data directory is left with its projections rebuilt. The kept output takes memory: about
1.5 KB per event (1.5 GB for a million). The embedded PostgreSQL must not be running already."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from app.collector import tune_collector
from app.fhirspec.resource_types import resource_types
from app.projections import bulk_load
from app.projections.rebuild import custom_definitions, rebuild_type, replay_executor
from app.projections.rebuild_many import each_type, largest_first
from bench.common import machine_speed, yardstick_text
from bench.import_bulk import cpu_seconds
from bench.replay import report_split
from bench.replay_data_dir import rebuild_pool, run_on_data_dir

_computed = bulk_load._encoding
_kept: dict[tuple[str, str], asyncio.Future] = {}


def _keeping(resource_type: str, rows: list, executor: object) -> asyncio.Future:
    """The workers' encoding of a batch, kept for the second rebuild by its type and first id."""
    future = _computed(resource_type, rows, executor)  # type: ignore[arg-type]
    if rows:
        _kept[(resource_type, rows[0][1])] = future
    return future


def _handing_over(resource_type: str, rows: list, executor: object) -> asyncio.Future:
    """The kept encoding of the batch, done at once (a batch not kept is computed as usual)."""
    kept = _kept.get((resource_type, rows[0][1])) if rows else None
    if kept is None:
        return _computed(resource_type, rows, executor)  # type: ignore[arg-type]
    done = asyncio.get_running_loop().create_future()
    done.set_result(kept.result())
    return done


async def _rebuild(data_dir: Path, pool: asyncpg.Pool, batch: int, label: str) -> float:
    """Rebuild every type; prints the rate and the CPU split; returns events/s."""
    types = await largest_first(pool, list(resource_types()))
    before, start = cpu_seconds(data_dir), time.perf_counter()
    executor = replay_executor(await custom_definitions(pool))

    async def one(resource_type: str) -> int:
        return (await rebuild_type(pool, resource_type, batch=batch, executor=executor)).events

    with executor:
        replayed = sum(await each_type(types, one))
    seconds, after = time.perf_counter() - start, cpu_seconds(data_dir)
    rate = replayed / seconds
    print(f"{label}: {replayed:,} events in {seconds:.1f} s = {rate:,.0f} events/s")
    report_split(replayed, tuple(a - b for a, b in zip(after, before, strict=True)))
    return rate


async def floor(data_dir: Path, batch: int) -> None:
    async with rebuild_pool(data_dir) as pool:
        tune_collector()  # as the CLI's rebuild does
        speed_before = machine_speed()
        bulk_load._encoding = _keeping
        computed = await _rebuild(data_dir, pool, batch, "workers computing")
        bulk_load._encoding = _handing_over
        free = await _rebuild(data_dir, pool, batch, "workers' output handed over (their cost none)")
        bulk_load._encoding = _computed
        speed_after = machine_speed()
    print(f"ceiling with free workers: {free / computed:.2f}x the rebuild's rate ({len(_kept):,} batches kept)")
    print(yardstick_text(speed_before, speed_after, free, "events/s with free workers"))


def main() -> None:
    run_on_data_dir(__doc__, floor)


if __name__ == "__main__":
    main()
