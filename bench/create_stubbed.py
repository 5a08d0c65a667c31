"""Python work per create (or update) of the server's application with the database call stubbed:
the request goes through every middleware, the route, validation, the search rows, the statement's
arguments and the response as ``bench/create_cpu.py`` sends it, but the one statement returns at
once (an update finds no head, so it creates). Without PostgreSQL in the run, the instruction count
under callgrind is exact from run to run: the A/B instrument for a change of a few percent, where
CPU times on this shared machine swing by tens of percent.

    PYTHONPATH=<tree> python bench/create_stubbed.py [--ops 5000] [--rounds 5] [--update]
    PYTHONPATH=<tree> valgrind --tool=callgrind --instr-atstart=no python bench/create_stubbed.py \\
        --ops 300 --rounds 1 --callgrind     # then: grep summary callgrind.out.*.1, / ops

Run it with ``PYTHONPATH`` naming the tree to measure (this file may come from another tree: its
own is searched after ``PYTHONPATH``); it prints the CPU microseconds per request
of each round (``--callgrind``: instructions are counted during the rounds only, one dump each).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson

sys.path.append(str(Path(__file__).resolve().parent.parent))  # after PYTHONPATH: its tree is measured
from app.api.app import create_app
from app.settings import Settings
from app.validation import warm
from bench.common import callgrind_control, run_fast
from bench.create_cpu import caller
from bench.crud import PATIENT


class _Connection:
    """The one statement answers position 1 at once; a head read finds nothing."""

    def is_in_transaction(self) -> bool:
        return False

    async def fetchval(self, sql: str, *args: object) -> int:
        return 1

    async def fetchrow(self, sql: str, *args: object) -> None:
        return None


class _Pool:
    statement_timeout_ms = 0

    async def run_on_connection(self, work: Callable[[_Connection], Awaitable[object]]) -> object:
        return await work(_Connection())


async def main(ops: int, rounds: int, update: bool, grind: bool) -> None:
    call = caller(create_app(Settings(database_url="postgresql://stubbed/none"), _Pool()))  # type: ignore[arg-type]
    warm()
    method, path = ("PUT", "/fhir/Patient/stubbed") if update else ("POST", "/fhir/Patient")
    body = orjson.dumps({**PATIENT, "id": "stubbed"} if update else PATIENT)
    for _ in range(500):  # warm-up: statements built, caches filled
        assert (await call(method, path, body))[0] == 201
    gc.collect()
    spent = []
    for _ in range(rounds):
        if grind:
            callgrind_control("--instr=on")
        before = time.process_time()
        for _ in range(ops):
            await call(method, path, body)
        spent.append((time.process_time() - before) * 1e6 / ops)
        if grind:
            callgrind_control("--dump", "--instr=off")
    print(" ".join(f"{s:.1f}" for s in spent), f"median {statistics.median(spent):.1f} us CPU per request")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--ops", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--update", action="store_true", help="PUT [type]/[id] (no head: it creates)")
    parser.add_argument("--callgrind", action="store_true", help="count instructions during the rounds only")
    a = parser.parse_args()
    run_fast(main(a.ops, a.rounds, a.update, a.callgrind))
