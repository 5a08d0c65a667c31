"""Shared pieces of the benchmarks: an embedded server in a subprocess, latency statistics."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_serving(base: str, proc: subprocess.Popen, seconds: float) -> None:
    """Wait until the server at ``base`` answers its CapabilityStatement; raise if its process
    ``proc`` ends first (with the end of its standard error, when piped) or ``seconds`` pass."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/metadata", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            if proc.poll() is not None:
                said = proc.stderr.read().decode()[-2000:] if proc.stderr else ""
                raise RuntimeError(f"server ended with status {proc.returncode}: {said}") from None
            time.sleep(0.3)
    raise RuntimeError("server did not start")


class ServerProcess:
    """``fhirledger serve`` on a fresh embedded database in a temporary directory."""

    def __init__(self, data_dir: str | None = None, workers: int = 1) -> None:
        self.workers = workers
        self.temporary = data_dir is None  # a temporary data directory is removed afterwards
        self.data_dir = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="fhirledger-bench-"))
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}/fhir"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> ServerProcess:
        env = {k: v for k, v in os.environ.items() if k != "FHIRLEDGER_DATABASE_URL"}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "app.cli",
                "serve",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
                "--log-level",
                "warning",
                "--workers",
                str(self.workers),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until_serving(self.base, self.proc, 300)  # a large data directory on a loaded machine starts slowly
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@/fhirledger?host={self.data_dir / 'pgdata'}&port=5432"

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)
        if self.temporary:
            shutil.rmtree(self.data_dir, ignore_errors=True)


@dataclass
class Result:
    name: str
    concurrency: int
    ops: int
    seconds: float
    latencies_ms: list[float]

    @property
    def throughput(self) -> float:
        return self.ops / self.seconds

    def pct(self, q: float) -> float:
        data = sorted(self.latencies_ms)
        return data[min(len(data) - 1, int(q * len(data)))]

    def row(self) -> str:
        return (
            f"{self.name:<28} c={self.concurrency:<3} {self.ops:>6} ops {self.throughput:>9.0f} ops/s "
            f"p50 {self.pct(0.5):>7.2f} ms  p99 {self.pct(0.99):>7.2f} ms"
        )


@dataclass(frozen=True)
class Figure:
    """One target's figure as a benchmark measured it: the target, the figure, whether it is met
    (None: a figure reported, no limit set) and the command that measures it alone."""

    target: str
    figure: str
    met: bool | None
    command: str

    def line(self) -> str:
        verdict = "reported" if self.met is None else "met" if self.met else "NOT met"
        return f"  {self.target}: {self.figure}: {verdict}"


async def run_load(name: str, concurrency: int, ops: int, op: Callable[[int], Awaitable[None]]) -> Result:
    import asyncio

    latencies: list[float] = []
    counter = iter(range(ops))

    async def worker() -> None:
        for i in counter:
            t0 = time.perf_counter()
            await op(i)
            latencies.append((time.perf_counter() - t0) * 1000)

    start = time.perf_counter()
    await asyncio.gather(*[worker() for _ in range(concurrency)])
    return Result(name, concurrency, ops, time.perf_counter() - start, latencies)


async def migrated_connection(dsn: str) -> asyncpg.Connection:
    """A connection to the database at ``dsn``, its schema migrated and its projections checked
    (as ``serve`` leaves them)."""
    from app.db.migrations import migrate
    from app.projections.state import check_projections

    conn = await asyncpg.connect(dsn)
    await migrate(conn)
    await check_projections(conn)
    return conn


def median(values: list[float]) -> float:
    return statistics.median(values)


def callgrind_control(*options: str) -> None:
    """Send ``options`` in turn to the callgrind instance running this process (``--instr=on``
    before a measured phase; ``--dump``, ``--instr=off`` after it: one dump per phase)."""
    for option in options:
        subprocess.run(["callgrind_control", option, str(os.getpid())], check=True, capture_output=True)


def run_fast(main: Awaitable[None]) -> None:
    """Run ``main`` on uvloop where it is installed (as the server runs), else asyncio's loop."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main)  # type: ignore[arg-type]


_YARDSTICK = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "8302-2", "display": "Body Height"}]},
    "subject": {"reference": "Patient/1"},
    "valueQuantity": {"value": 172.4, "unit": "cm", "system": "http://unitsofmeasure.org", "code": "cm"},
}


def machine_speed(seconds: float = 0.3, rounds: int = 5) -> float:
    """A yardstick of this machine's speed for Python code like ours, independent of the
    application's code: thousands of steps per second of one core (a step: a JSON parse of a
    small Observation, a walk of its values and a line of text from them), the fastest of
    ``rounds``. These machines' speed differs between sessions by up to two times and moves within
    one (in session 16 this read 144 to 238 within a minute): a rough guide, printed before and
    after a run, by which a figure can be compared across sessions in proportion."""
    import orjson

    data = orjson.dumps(_YARDSTICK)

    def step() -> str:
        resource = orjson.loads(data)
        parts = []
        for key, value in resource.items():
            if isinstance(value, dict):
                parts.extend(f"{key}.{k}" for k, v in value.items() if not isinstance(v, list | dict))
            else:
                parts.append(f"{key}={value}")
        return "\t".join(parts)

    best = 0.0
    for _ in range(rounds):
        steps, start = 0, time.process_time()
        while (elapsed := time.process_time() - start) < seconds:
            for _ in range(1000):
                step()
            steps += 1000
        best = max(best, steps / elapsed / 1000)
    return best


def yardstick_text(before: float, after: float, rate: float, unit: str) -> str:
    """The yardstick read before and after a run (:func:`machine_speed`) and ``rate`` per unit of
    their mean (``unit``: what ``rate`` counts per second)."""
    return (
        f"machine yardstick before and after {before:.0f} and {after:.0f} (bench/common.py machine_speed;"
        f" apart, the machine's speed moved during the run): {2 * rate / (before + after):.1f} {unit} per unit"
    )


async def wal_figures(pool: asyncpg.Pool | asyncpg.Connection) -> tuple[int, int, int, int]:
    """WAL bytes written so far (from the insert position), the server's WAL records and full-page
    images (``pg_stat_wal``, flushed first), and the checkpoints done (``pg_stat_checkpointer`` of
    the embedded PostgreSQL 18: after one, each page's first change goes whole to the WAL again;
    session 17 found one in the middle of a replay of a million events at ``max_wal_size`` 4GB)."""
    await pool.execute("SELECT pg_stat_force_next_flush()")
    row = await pool.fetchrow(
        "SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn AS bytes, wal_records, wal_fpi,"
        " (SELECT num_done FROM pg_stat_checkpointer) AS checkpoints FROM pg_stat_wal"
    )
    return int(row["bytes"]), int(row["wal_records"]), int(row["wal_fpi"]), int(row["checkpoints"])
