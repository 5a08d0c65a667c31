"""ASGI server benchmark: the same application under uvicorn (what ``fhirledger serve`` runs) and
under granian (an ASGI server written in Rust), on one embedded database, side by side.

    python bench/asgi_server.py [--ops 2000] [--rounds 3] [--concurrency 16] [--workers 1]

``fhirledger serve`` starts uvicorn and the embedded PostgreSQL (:class:`bench.common.ServerProcess`);
granian then serves ``app.api.app:create_app`` on another port with ``FHIRLEDGER_DATABASE_URL``
naming that database, with as many worker processes. Each round runs bench/crud.py's HTTP phases
(create, read, update of a Patient at ``--concurrency`` clients over keep-alive connections) against
one server and then the other, the order alternating round by round. Printed per operation: the
median over the rounds of each server's requests/s and CPU milliseconds per request of its Python
processes, and of PostgreSQL's (the database's processes, whichever server is measured), then the
ratio granian / uvicorn. Needs ``pip install granian`` (not a dependency of the project).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import Result, ServerProcess, free_port, wait_until_serving
from bench.crud import CPU_MS, http_phase

ROOT = Path(__file__).resolve().parent.parent


class Granian:
    """granian serving the application factory on the database ``dsn``."""

    def __init__(self, dsn: str, workers: int) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}/fhir"
        env = {**os.environ, "FHIRLEDGER_DATABASE_URL": dsn}
        command = [shutil.which("granian") or "granian", "--interface", "asgi", "--factory", "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--workers", str(workers), "--log-level", "warning"]
        self.proc = subprocess.Popen(
            [*command, "app.api.app:create_app"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        wait_until_serving(self.base, self.proc, 120)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(60)


async def measured(base: str, pid: int, database_pid: int, concurrency: int, ops: int) -> list[tuple]:
    """(result, Python ms per request, PostgreSQL ms per request) of each HTTP phase."""
    results = await http_phase(base, concurrency, ops, pid, reads=ops * 5, database_pid=database_pid)
    return [(r, *CPU_MS[id(r)][:2]) for r in results]


async def main(ops: int, rounds: int, concurrency: int, workers: int) -> None:
    with ServerProcess(workers=workers) as uvicorn:
        granian = Granian(uvicorn.dsn, workers)
        try:
            sides = {"uvicorn": (uvicorn.base, uvicorn.pid), "granian": (granian.base, granian.proc.pid)}
            seen: dict[str, list[list[tuple]]] = {name: [] for name in sides}
            for r in range(rounds):
                order = list(sides) if r % 2 == 0 else list(reversed(sides))
                for name in order:
                    base, pid = sides[name]
                    rows = await measured(base, pid, uvicorn.pid, concurrency, ops)
                    seen[name].append(rows)
                    print(f"round {r + 1} {name:<8} " + "  ".join(_row(row) for row in rows))
                    sys.stdout.flush()
            print(f"\nmedians over {rounds} rounds, c={concurrency}, {workers} worker(s) each:")
            for i, operation in enumerate(("create", "read", "update")):
                figures = {name: _medians([rows[i] for rows in seen[name]]) for name in sides}
                u, g = figures["uvicorn"], figures["granian"]
                print(
                    f"  {operation:<7} uvicorn {u[0]:7.0f}/s cpu {u[1]:.3f}/{u[2]:.3f} ms   granian {g[0]:7.0f}/s"
                    f" cpu {g[1]:.3f}/{g[2]:.3f} ms   granian/uvicorn {g[0] / u[0]:.2f}x"
                )
        finally:
            granian.stop()


def _row(row: tuple) -> str:
    result, python, postgres = row
    return f"{result.name.removeprefix('http ')} {result.throughput:.0f}/s ({python:.3f}/{postgres:.3f} ms)"


def _medians(rows: list[tuple]) -> tuple[float, float, float]:
    results: list[Result] = [r[0] for r in rows]
    return (
        statistics.median(r.throughput for r in results),
        statistics.median(r[1] for r in rows),
        statistics.median(r[2] for r in rows),
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ops", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1)
    a = parser.parse_args()
    asyncio.run(main(a.ops, a.rounds, a.concurrency, a.workers))
