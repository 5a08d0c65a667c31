"""Python CPU per create and per update of the server's application, called in process as uvicorn
calls it (one ASGI call per request: every middleware, the route, the command, the one statement)
on a fresh embedded database: no HTTP parsing, no client in the process, so the process's CPU time
over a phase is the application's own (PostgreSQL runs in its own processes), far less noisy than
``bench/crud.py``'s server CPU column.

    PYTHONPATH=<tree> python bench/create_cpu.py [--ops 2000] [--concurrency 16] [--rounds 3]
        [--callgrind]

Run it with ``PYTHONPATH`` naming the tree to measure (it imports ``app`` from there), old and new
trees alternated. Each round creates ``--ops`` Patients (the ``bench/crud.py`` body), updates each
with the same body, then with a new phone number; it prints the CPU ms per request of each phase
and the medians. ``--callgrind``: under ``valgrind --tool=callgrind --instr-atstart=no``, the
instructions are counted only during the phases (``callgrind_control``), one dump per phase.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # bench.* beside app
from app.api import staleness
from app.api.app import create_app
from app.collector import tune_collector
from app.db.embedded import EmbeddedPostgres
from app.db.pool import create_pool
from app.settings import Settings
from app.validation import warm
from bench.common import callgrind_control, migrated_connection, run_fast
from bench.crud import PATIENT

Call = Callable[[str, str, bytes], Awaitable[tuple[int, dict[bytes, bytes]]]]


def caller(app: Callable) -> Call:
    """One request through ``app`` as uvicorn's httptools protocol makes it."""

    async def call(method: str, path: str, body: bytes) -> tuple[int, dict[bytes, bytes]]:
        headers = [
            (b"host", b"127.0.0.1:8080"),
            (b"content-length", str(len(body)).encode()),
            (b"content-type", b"application/fhir+json"),
        ]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "server": ("127.0.0.1", 8080),
            "client": ("127.0.0.1", 50000),
            "scheme": "http",
            "method": method,
            "root_path": "",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": headers,
            "state": {},
        }
        messages = [{"type": "http.request", "body": body, "more_body": False}]
        sent: list[dict] = []

        async def receive() -> dict:
            if messages:
                return messages.pop()
            await asyncio.Future()  # the client stays
            raise AssertionError

        async def send(message: dict) -> None:
            sent.append(message)

        await app(scope, receive, send)
        return sent[0]["status"], dict(sent[0]["headers"])

    return call


async def phase(name: str, concurrency: int, ops: int, op: Callable[[int], Awaitable[None]], grind: bool) -> float:
    """CPU ms of this process per request over ``ops`` calls of ``op`` at ``concurrency``."""
    counter = iter(range(ops))

    async def worker() -> None:
        for i in counter:
            await op(i)

    if grind:
        callgrind_control("--instr=on")
    before = time.process_time()
    await asyncio.gather(*[worker() for _ in range(concurrency)])
    spent = (time.process_time() - before) * 1000 / ops
    if grind:  # one dump per phase (its counts since the last), then counting stops
        callgrind_control("--dump", "--instr=off")
    print(f"  {name:15} {spent:.3f} ms CPU per request", flush=True)
    return spent


async def round_of(call: Call, concurrency: int, ops: int, grind: bool) -> dict[str, float]:
    ids: list[str] = []
    body = orjson.dumps(PATIENT)

    async def create(_: int) -> None:
        status, headers = await call("POST", "/fhir/Patient", body)
        assert status == 201, status
        ids.append(headers[b"location"].decode().split("/")[-3])

    def update(changes: bool) -> Callable[[int], Awaitable[None]]:
        async def op(i: int) -> None:
            rid = ids[i]
            new = {**PATIENT, "id": rid}
            if changes:
                new["telecom"] = [{"system": "phone", "value": f"(03) 5555 {i:04d}", "use": "work"}]
            status, _ = await call("PUT", f"/fhir/Patient/{rid}", orjson.dumps(new))
            assert status == 200, status

        return op

    return {
        "create": await phase("create", concurrency, ops, create, grind),
        "update same": await phase("update same", concurrency, ops, update(False), grind),
        "update changed": await phase("update changed", concurrency, ops, update(True), grind),
    }


@asynccontextmanager
async def app_in_process(prefix: str) -> AsyncIterator[Call]:
    """A caller of the server's application on a fresh embedded database (its data directory a
    temporary one named ``prefix``…), set up as ``serve`` sets it up: migrated, warmed, the collector
    tuned and the GIL's switch interval set; stopped and removed afterwards."""
    data_dir = Path(tempfile.mkdtemp(prefix=prefix))
    embedded = EmbeddedPostgres(data_dir)
    dsn = embedded.start()
    try:
        await (await migrated_connection(dsn)).close()
        settings = Settings(database_url=dsn)
        pool = await create_pool(dsn, settings)
        app = create_app(settings, pool)
        await staleness.refresh(app, pool)
        warm()
        tune_collector()
        sys.setswitchinterval(0.001)  # as ``serve`` does (app/cli.py)
        try:
            yield caller(app)
        finally:
            await pool.close()
    finally:
        embedded.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


async def main(ops: int, concurrency: int, rounds: int, grind: bool) -> None:
    async with app_in_process("fhirledger-create-cpu-") as call:
        await round_of(call, concurrency, 50, False)  # warm-up: statements prepared, caches filled
        gc.collect()
        figures: dict[str, list[float]] = {}
        for r in range(rounds):
            print(f"round {r + 1}")
            for name, value in (await round_of(call, concurrency, ops, grind)).items():
                figures.setdefault(name, []).append(value)
        for name, values in figures.items():
            print(f"{name:15} median {statistics.median(values):.3f} ms CPU per request")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--ops", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--callgrind", action="store_true", help="count instructions during the phases only")
    a = parser.parse_args()
    run_fast(main(a.ops, a.concurrency, a.rounds, a.callgrind))
