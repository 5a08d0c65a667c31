"""Python CPU per resource of Synthea transaction ingest in the server's application, called in
process as uvicorn calls it (``bench/create_cpu.py``'s ASGI caller: every middleware, the route,
parsing, validation, the commands, the projections' rows and statements) on a fresh embedded
database. PostgreSQL runs in its own processes, so this process's CPU time (all its threads: the
body and extraction offloading) over a phase is the server's Python part of an ingest alone, far
less noisy than ``bench/scale.py build``'s figure, which shares the machine with the database.

    PYTHONPATH=<tree> python bench/bundle_cpu.py [--files 24] [--concurrency 4] [--rounds 3]
        [--callgrind] [--young N]

Run it with ``PYTHONPATH`` naming the tree to measure, old and new trees alternated. Each round
posts a fresh-id copy (``bench/scale_build.copy_bytes``) of the first ``--files`` Synthea Bundles
(their bodies made before the clock starts) at ``--concurrency``; it prints the CPU µs per resource
and the share of it the garbage collector took (``gc.callbacks``), then the medians.
``--callgrind``: under ``valgrind --tool=callgrind --instr-atstart=no``, the instructions are
counted only during the rounds, one dump per round. ``--young N``: the collector's youngest
generation collected every ``N`` net allocations instead of the server's setting (an experiment).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import gzip
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # bench.* beside app
from bench.common import callgrind_control, run_fast
from bench.create_cpu import Call, app_in_process
from bench.scale_build import copy_bytes, layout, synthea_files


class CollectorClock:
    """The process time spent in the garbage collector since the last ``reset``."""

    def __init__(self) -> None:
        self.spent = 0.0
        self._start = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, _: dict) -> None:
        if phase == "start":
            self._start = time.process_time()
        else:
            self.spent += time.process_time() - self._start

    def reset(self) -> None:
        self.spent = 0.0


async def post_all(call: Call, bodies: list[bytes], concurrency: int) -> None:
    queue = iter(bodies)

    async def worker() -> None:
        for body in queue:
            status, _ = await call("POST", "/fhir", body)
            assert status == 200, status

    await asyncio.gather(*[worker() for _ in range(concurrency)])


async def main(files: int, concurrency: int, rounds: int, grind: bool, young: int | None) -> None:
    raws = [(p.name, gzip.decompress(p.read_bytes())) for p in synthea_files()[:files]]
    async with app_in_process("fhirledger-bundle-cpu-") as call:
        if young is not None:
            gc.set_threshold(young, *gc.get_threshold()[1:])
        clock = CollectorClock()
        await post_all(call, [copy_bytes(raws[0][1], 1)], 1)  # warm-up: statements prepared, caches filled
        figures: list[tuple[float, float]] = []
        for r in range(rounds):
            copy = r + 2
            bodies, resources = [], 0
            for name, raw in raws:
                known = layout(name, raw)
                bodies.append(copy_bytes(raw, copy, known.starts))
                resources += known.entries
            gc.collect()
            clock.reset()
            if grind:
                callgrind_control("--instr=on")
            before = time.process_time()
            await post_all(call, bodies, concurrency)
            spent = time.process_time() - before
            if grind:
                callgrind_control("--dump", "--instr=off")
            per, share = spent * 1e6 / resources, clock.spent / spent
            figures.append((per, share))
            print(f"round {r + 1}: {resources} resources, {per:.1f} µs CPU per resource, collector {share:.1%}")
        print(
            f"median {statistics.median(f[0] for f in figures):.1f} µs CPU per resource, "
            f"collector {statistics.median(f[1] for f in figures):.1%}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=24)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--callgrind", action="store_true", help="count instructions during the rounds only")
    parser.add_argument("--young", type=int, help="the youngest generation's threshold (default: the server's)")
    a = parser.parse_args()
    run_fast(main(a.files, a.concurrency, a.rounds, a.callgrind, a.young))
