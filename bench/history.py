"""History and read at many versions: two Patients, one with ``--few`` versions and one with
``--many`` (10,000 by default), written through the API (PUT after PUT); then, for each, over HTTP
one at a time: read, vread of version 1, the first ``_history`` page (with its ``total``), and a
page deep in the history reached by the ``next`` link's cursor, the two Patients measured in turns
(:data:`ROUNDS`). In the same run the baseline: raw asyncpg reading the same rows (the current row
by primary key; the newest 50 versions of the resource from the event log).

Flat in versions means the ``--many`` figures stay near the ``--few`` ones (the ratio printed per
operation); the history ``total`` is served without counting the versions.

    python bench/history.py [--few 100] [--many 10000] [--repeat 200] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import Figure, Result, ServerProcess, run_load
from bench.rawhttp import RawConnection

HEADERS = {"Content-Type": "application/fhir+json"}
NEWEST = (
    "SELECT resource FROM event_log WHERE resource_type = 'Patient' AND resource_id = $1 ORDER BY version DESC LIMIT 51"
)


def patient(rid: str, n: int) -> bytes:
    return orjson.dumps({"resourceType": "Patient", "id": rid, "active": n % 2 == 0, "name": [{"family": f"V{n}"}]})


async def write_versions(base: str, rid: str, versions: int, concurrency: int) -> None:
    """``versions`` PUTs of the same Patient; each client waits for its own write (If-Match is not
    used, so versions simply follow one another)."""
    conns = [RawConnection(base) for _ in range(concurrency)]
    counter = iter(range(versions))

    async def client(conn: RawConnection) -> None:
        for n in counter:
            status, _, body = await conn.request("PUT", f"/Patient/{rid}", patient(rid, n), HEADERS)
            assert status in (200, 201), body[:300]

    await asyncio.gather(*(client(c) for c in conns))


async def deep_page(conn: RawConnection, prefix: str, rid: str, hops: int) -> str:
    """The path of the history page ``hops`` next links away from the first."""
    path = f"/Patient/{rid}/_history?_count=50"
    for _ in range(hops):
        status, _, body = await conn.request("GET", path)
        assert status == 200, body[:300]
        nxt = next((x["url"] for x in orjson.loads(body).get("link", []) if x["relation"] == "next"), None)
        if nxt is None:
            break
        url = urlsplit(nxt)
        path = f"{url.path.removeprefix(prefix)}?{url.query}"
    return path


async def measure(base: str, pool: asyncpg.Pool, rid: str, repeat: int, deep: str | None = None) -> dict[str, Result]:
    """Each operation ``repeat`` times; ``deep``: the path of page 21 (found here if not given)."""
    conn = RawConnection(base)
    if deep is None:
        deep = await deep_page(conn, urlsplit(base).path, rid, 20)
    out: dict[str, Result] = {}

    def http(path: str, check: str | None = None) -> Callable[[int], Awaitable[None]]:
        async def op(_: int) -> None:
            status, _, body = await conn.request("GET", path)
            assert status == 200, body[:300]
            if check is not None:
                assert check in orjson.loads(body), f"no {check} in {path}"

        return op

    ops = {
        "read": http(f"/Patient/{rid}"),
        "vread version 1": http(f"/Patient/{rid}/_history/1"),
        "history first page + total": http(f"/Patient/{rid}/_history?_count=50", "total"),
        "history page 21 (cursor)": http(deep),
    }
    for name, op in ops.items():
        await run_load("warm", 1, 10, op)
        out[name] = await run_load(name, 1, repeat, op)

    async def newest(_: int) -> None:
        await pool.fetch(NEWEST, rid)

    out["baseline: newest 50 (SQL)"] = await run_load("sql", 1, repeat, newest)
    return out


ROUNDS = 5
"""The two resources are measured in turns, each turn ``repeat / ROUNDS`` runs of every operation:
these machines' speed drifts by tens of percent within minutes, and one side measured wholly
after the other read that drift as a ratio (a page-21 ratio of 1.56x in one run, 0.96x in the next)."""


async def alternated(base: str, pool: asyncpg.Pool, repeat: int) -> dict[str, dict[str, Result]]:
    """Per resource, per operation: the latencies of all the turns together (page 21's path found
    once per resource)."""
    conn = RawConnection(base)
    deep = {rid: await deep_page(conn, urlsplit(base).path, rid, 20) for rid in ("few", "many")}
    turns = max(1, min(ROUNDS, repeat))
    latencies: dict[tuple[str, str], list[float]] = {}
    seconds: dict[tuple[str, str], float] = {}
    for turn in range(turns):
        share = repeat // turns + (1 if turn < repeat % turns else 0)
        for rid in ("few", "many"):
            for name, r in (await measure(base, pool, rid, share, deep[rid])).items():
                latencies.setdefault((rid, name), []).extend(r.latencies_ms)
                seconds[(rid, name)] = seconds.get((rid, name), 0.0) + r.seconds
    results: dict[str, dict[str, Result]] = {"few": {}, "many": {}}
    for (rid, name), values in latencies.items():
        results[rid][name] = Result(name, 1, len(values), seconds[(rid, name)], values)
    return results


FLAT = 1.5
"""Flat in versions: an operation's p50 at ``--many`` versions at most this many times its p50 at
``--few`` (the target; these machines are noisy, so not 1.0)."""


async def main(few: int, many: int, repeat: int, concurrency: int) -> list[Figure]:
    """Measure; the figure of each HTTP operation against the flat-in-versions target."""
    with ServerProcess() as server:
        start = time.perf_counter()
        await write_versions(server.base, "few", few, 1)
        await write_versions(server.base, "many", many, concurrency)
        print(f"wrote {few + many} versions in {time.perf_counter() - start:.1f} s")
        pool = await asyncpg.create_pool(server.dsn, min_size=1, max_size=2)
        await pool.execute("ANALYZE")
        for rid in ("few", "many"):  # a warm-up round of both first
            await measure(server.base, pool, rid, 20)
        results = await alternated(server.base, pool, repeat)
        await pool.close()
    print(f"\n{'p50 ms (p99)':<30} {f'{few} versions':>18} {f'{many} versions':>18} {'ratio':>7}")
    figures = []
    command = f"python bench/history.py --few {few} --many {many} --repeat {repeat}"
    for name in results["few"]:
        a, b = results["few"][name], results["many"][name]
        ratio = b.pct(0.5) / a.pct(0.5)
        cells = f"{a.pct(0.5):>9.2f} ({a.pct(0.99):>6.2f}) {b.pct(0.5):>9.2f} ({b.pct(0.99):>6.2f})"
        print(f"{name:<30} {cells} {ratio:>6.2f}x")
        if not name.startswith("baseline"):
            figure = f"p50 {b.pct(0.5):.2f} ms at {many:,} versions, {ratio:.2f}x that at {few:,}"
            figures.append(Figure(f"{name} flat in versions (<= {FLAT}x)", figure, ratio <= FLAT, command))
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--few", type=int, default=100)
    parser.add_argument("--many", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8, help="clients writing the many versions")
    a = parser.parse_args()
    asyncio.run(main(a.few, a.many, a.repeat, a.concurrency))
    print("(a shared machine: compare the ratios, not absolute figures)")
