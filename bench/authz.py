"""Read throughput with authorization on vs off, same run, and what authorization costs per request:
``python bench/authz.py --database-url postgresql://... [--reads 3000] [--concurrency 8]``.

Two apps in this process share one database pool: one with authorization off, one with it on
(RS256 tokens, the JWKS in a file). Each reads the same Patients (``GET [base]/Patient/[id]``)
through ``httpx.ASGITransport`` (no sockets: the figure isolates the server's own work), the runs
interleaved off/on three times; median reads/s. The per-request cost is the difference of the mean
times per read; a token is sent many times, so after its first use the verifier remembers it."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.api.app import create_app
from app.auth import authenticator_for
from app.db.migrations import migrate
from app.settings import Settings
from tests.auth.keys import AUDIENCE, ISSUER, SigningKey, claims, jwks

PATIENTS = 200


async def _check_us(settings: Settings, header: str, n: int = 20000) -> float:
    """µs per request of what authorization adds to a read: the middleware's authenticate() of a
    token seen before, and the route's scope decision."""
    auth = authenticator_for(settings)
    await auth.authenticate(header)
    start = time.perf_counter()
    for _ in range(n):
        (await auth.authenticate(header)).require("Patient", "read")
    return (time.perf_counter() - start) / n * 1e6


async def _reads(client: httpx.AsyncClient, ids: list[str], n: int, concurrency: int, headers: dict) -> float:
    """Reads per second of ``n`` reads by ``concurrency`` workers."""
    per_worker = n // concurrency

    async def worker(w: int) -> None:
        for i in range(per_worker):
            r = await client.get(f"/fhir/Patient/{ids[(w * per_worker + i) % len(ids)]}", headers=headers)
            assert r.status_code == 200, r.text

    start = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return per_worker * concurrency / (time.perf_counter() - start)


async def main(dsn: str, reads: int, concurrency: int) -> None:
    key = SigningKey("bench")
    pool = await asyncpg.create_pool(dsn, min_size=2, max_size=max(4, concurrency + 2))
    async with pool.acquire() as conn:
        await migrate(conn)
    with tempfile.NamedTemporaryFile(suffix=".json") as file:
        file.write(orjson.dumps(jwks(key)))
        file.flush()
        base = Settings(database_url=dsn)
        on = base.model_copy(update={"auth_issuer": ISSUER, "auth_audience": AUDIENCE, "auth_jwks": file.name})
        token = {"Authorization": f"Bearer {key.sign(claims(scope='user/*.cruds'))}"}
        clients = {
            name: httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(s, pool)), base_url="http://bench")
            for name, s in (("off", base), ("on", on))
        }
        ids = [f"bench-authz-{uuid.uuid4().hex[:10]}" for _ in range(PATIENTS)]
        for pid in ids:
            body = {"resourceType": "Patient", "id": pid, "name": [{"family": "Bench"}]}
            r = await clients["on"].put(f"/fhir/Patient/{pid}", json=body, headers=token)
            assert r.status_code == 201, r.text
        figures: dict[str, list[float]] = {"off": [], "on": []}
        await _reads(clients["off"], ids, 200, concurrency, {})  # warm both
        await _reads(clients["on"], ids, 200, concurrency, token)
        for _ in range(3):
            figures["off"].append(await _reads(clients["off"], ids, reads, concurrency, {}))
            figures["on"].append(await _reads(clients["on"], ids, reads, concurrency, token))
        off, on_ = statistics.median(figures["off"]), statistics.median(figures["on"])
        cost_us = (1 / on_ - 1 / off) * 1e6  # one event loop: time per read of the aggregate throughput
        print(f"reads/s, {concurrency} concurrent clients, in process, median of 3 interleaved runs of {reads}:")
        print(f"  authorization off: {off:8.0f} reads/s")
        print(f"  authorization on:  {on_:8.0f} reads/s   (on/off = {on_ / off:.3f})")
        print(f"  cost of authorization: {cost_us:6.1f} µs per request (difference of mean request times)")
        check = await _check_us(on, token["Authorization"])
        print(f"  authenticate() of a known token + scope decision, alone: {check:5.1f} µs per request")
        for c in clients.values():
            await c.aclose()
    await pool.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--reads", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    asyncio.run(main(args.database_url, args.reads, args.concurrency))
