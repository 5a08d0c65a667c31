"""Does a big request stall everyone else? Read latency (p50/p99/max) of ``GET [base]/Patient/[id]``
every 10 ms while one client posts a large transaction Bundle (default 10,000 entries).

    python -m bench.stall --database-url postgresql://postgres@/postgres?host=/var/run/postgresql

A fresh database is created on that server (and dropped afterwards) and ``fhirledger serve`` runs
on it in a subprocess."""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import orjson

from bench.common import free_port


def _bundle(entries: int) -> dict:
    def entry(i: int) -> dict:
        resource = {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}], "text": f"heart rate {i}"},
            "subject": {"reference": "Patient/stall-reader"},
            "effectiveDateTime": "2024-01-01T10:00:00Z",
            "valueQuantity": {"value": 60 + i % 40, "unit": "/min", "system": "http://unitsofmeasure.org"},
        }
        return {"resource": resource, "request": {"method": "POST", "url": "Observation"}}

    return {"resourceType": "Bundle", "type": "transaction", "entry": [entry(i) for i in range(entries)]}


async def _measure(base: str, entries: int) -> tuple[list[float], float]:
    async with httpx.AsyncClient(base_url=base, timeout=600) as client:
        patient = {"resourceType": "Patient", "id": "stall-reader", "name": [{"family": "Reader"}]}
        (await client.put("/Patient/stall-reader", json=patient)).raise_for_status()
        latencies: list[float] = []
        body = orjson.dumps(_bundle(entries))  # encoded before timing; sent from a thread of its own, so
        # the reader's event loop measures the server, not this process's JSON work on the big Bundle

        writer = httpx.Client(base_url=base, timeout=600)  # made here: its TLS set-up holds the GIL a while

        def post_bundle() -> httpx.Response:
            with writer:
                return writer.post("/", content=body, headers={"Content-Type": "application/fhir+json"})

        writing = asyncio.ensure_future(asyncio.to_thread(post_bundle))
        started = time.monotonic()
        while not writing.done():
            t = time.monotonic()
            (await client.get("/Patient/stall-reader")).raise_for_status()
            latencies.append(time.monotonic() - t)
            await asyncio.sleep(0.01)
        response = await writing
        response.raise_for_status()
        return latencies, time.monotonic() - started


def _with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


async def _run(server_dsn: str, entries: int) -> None:
    name = f"fhirledger_stall_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(server_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    port = free_port()
    env = {**os.environ, "FHIRLEDGER_DATABASE_URL": _with_database(server_dsn, name)}
    cmd = [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--log-level", "warning"]
    proc = subprocess.Popen(cmd, env=env)
    try:
        base = f"http://127.0.0.1:{port}/fhir"
        for _ in range(600):
            try:
                if httpx.get(f"{base}/metadata", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                await asyncio.sleep(0.1)
        latencies, elapsed = await _measure(base, entries)
        latencies.sort()
        ms = [x * 1000 for x in latencies]
        p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
        print(f"transaction of {entries} entries took {elapsed:.1f} s; {len(ms)} reads meanwhile")
        print(f"read latency ms: p50 {statistics.median(ms):.1f}  p99 {p99:.1f}  max {ms[-1]:.1f}")
    finally:
        proc.terminate()
        proc.wait(30)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="a PostgreSQL server's maintenance database")
    parser.add_argument("--entries", type=int, default=10_000)
    args = parser.parse_args()
    asyncio.run(_run(args.database_url, args.entries))


if __name__ == "__main__":
    main()
