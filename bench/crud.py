"""CRUD benchmark: create, read and update through the HTTP server on its embedded database, at
concurrency 1 and 16, against a raw-asyncpg baseline doing the same SQL work (append the event,
upsert the current-state row; read the current-state row and its event's bytes) without HTTP, in the same run; then a
CRUD mix (create 10%, read 60%, update 25%, delete 5% over Patient, Observation, Condition,
Encounter and MedicationRequest) at 64 clients, in requests/s.

    python bench/crud.py [--ops 2000] [--rounds 3] [--mix-ops 6000] [--workers N] [--update-changes]
        [--concurrency 1 16]

Each concurrency runs ``--rounds`` rounds, the baseline and the server alternating which goes first,
and reads ``--read-factor`` times as many requests as creates (a read lasts a tenth of a create: a
short phase swings the ratio by tens of percent on a noisy machine); the summary gives each
operation's median ratio over the rounds, and the median CPU per request.

By default an update sends the body the resource already has (its search rows do not change);
``--update-changes`` gives each update a new phone number (its token and full-text rows change).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import orjson
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from app.cli import default_workers
from bench.common import Figure, Result, ServerProcess, run_load
from bench.crud_mix import mix_phase
from bench.process_cpu import cpu_used
from bench.rawhttp import RawConnection

PATIENT = {
    "resourceType": "Patient",
    "identifier": [{"system": "http://hospital.example/mrn", "value": "12345"}],
    "active": True,
    "name": [{"use": "official", "family": "Chalmers", "given": ["Peter", "James"]}],
    "telecom": [{"system": "phone", "value": "(03) 5555 6473", "use": "work"}],
    "gender": "male",
    "birthDate": "1974-12-25",
    "address": [{"use": "home", "line": ["534 Erewhon St"], "city": "PleasantVille", "postalCode": "3999"}],
}

APPEND = """INSERT INTO event_log (resource_type, resource_id, version, kind, resource, recorded_at, method, url)
VALUES ('Patient', $1, $2, $3, $4, $5, $6, $7) RETURNING position"""
UPSERT = """INSERT INTO cur_patient (id, version, deleted, last_updated, position, key)
VALUES ($1, $2, false, $3, $4, $4) ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version,
last_updated = EXCLUDED.last_updated, position = EXCLUDED.position"""
# the current-state row names the event whose bytes are served (app/projections/current_state.py)
READ = "SELECT e.resource FROM cur_patient c JOIN event_log e ON e.position = c.position WHERE c.id = $1"


def cpu_seconds(pid: int, database_pid: int | None = None) -> tuple[float, float, float]:
    """CPU seconds (user + system) so far of: the server process and its workers, its PostgreSQL
    processes (those alive now; those of the process ``database_pid`` if given: a server on a
    database another started), and this load generator."""
    server = postgres = 0.0
    for tree in {pid, database_pid or pid}:
        root = psutil.Process(tree)
        for p in [root, *root.children(recursive=True)]:
            try:
                is_postgres = p is not root and "postgres" in p.name()
                if is_postgres:
                    postgres += cpu_used(p)
                elif tree == pid:
                    server += cpu_used(p)
            except psutil.NoSuchProcess:
                continue
    return server, postgres, cpu_used(psutil.Process())


CPU_MS: dict[int, tuple[float, float, float]] = {}
"""id of a phase's Result -> CPU milliseconds per request of (server, PostgreSQL, load generator)."""


async def measured(pid: int | None, phase: Callable[[], Awaitable[Result]], database_pid: int | None = None) -> Result:
    """``phase()``, noting the CPU time per request in :data:`CPU_MS` when ``pid`` is given."""
    before = cpu_seconds(pid, database_pid) if pid else (0.0, 0.0, 0.0)
    result = await phase()
    if pid:
        after = cpu_seconds(pid, database_pid)
        CPU_MS[id(result)] = tuple((a - b) * 1000 / result.ops for a, b in zip(after, before, strict=True))  # type: ignore[assignment]
    return result


def updated(rid: str, i: int, changes: bool) -> dict:
    """The body of update ``i`` of ``rid``: the same as created, or with a new phone number."""
    if not changes:
        return {**PATIENT, "id": rid}
    return {**PATIENT, "id": rid, "telecom": [{"system": "phone", "value": f"(03) 5555 {i:04d}", "use": "work"}]}


async def http_phase(
    base: str,
    concurrency: int,
    ops: int,
    pid: int | None = None,
    changes: bool = False,
    reads: int = 0,
    database_pid: int | None = None,
) -> list[Result]:
    idle = [RawConnection(base) for _ in range(concurrency)]
    ids: list[str] = []
    body = orjson.dumps(PATIENT)
    headers = {"Content-Type": "application/fhir+json"}

    async def call(method: str, path: str, payload: bytes = b"") -> tuple[int, dict[str, str], bytes]:
        conn = idle.pop()
        try:
            return await conn.request(method, path, payload, headers if payload else None)
        finally:
            idle.append(conn)

    async def create(_: int) -> None:
        status, head, data = await call("POST", "/Patient", body)
        assert status == 201, data
        ids.append(head["location"].split("/")[-3])

    async def read(i: int) -> None:
        status, _, _ = await call("GET", f"/Patient/{ids[i % len(ids)]}")
        assert status == 200

    async def update(i: int) -> None:
        rid = ids[i % len(ids)]
        status, _, data = await call("PUT", f"/Patient/{rid}", orjson.dumps(updated(rid, i, changes)))
        assert status == 200, data

    try:
        return [
            await measured(pid, lambda: run_load("http create", concurrency, ops, create), database_pid),
            await measured(pid, lambda: run_load("http read", concurrency, reads or ops, read), database_pid),
            await measured(pid, lambda: run_load("http update", concurrency, ops, update), database_pid),
        ]
    finally:
        for conn in idle:
            await conn.close()


async def baseline_phase(dsn: str, concurrency: int, ops: int, pid: int | None = None, reads: int = 0) -> list[Result]:
    pool = await asyncpg.create_pool(dsn, min_size=concurrency, max_size=concurrency)
    ids: list[str] = []
    versions: dict[str, int] = {}

    def stamp(rid: str, version: int, now: datetime) -> bytes:
        return orjson.dumps({**PATIENT, "id": rid, "meta": {"versionId": str(version), "lastUpdated": now.isoformat()}})

    async def create(_: int) -> None:
        rid = str(uuid.uuid4())
        now = datetime.now(UTC)
        body = stamp(rid, 1, now)
        async with pool.acquire() as conn, conn.transaction():
            pos = await conn.fetchval(APPEND, rid, 1, "created", body, now, "POST", "Patient")
            await conn.execute(UPSERT, rid, 1, now, pos)
        ids.append(rid)
        versions[rid] = 1

    async def read(i: int) -> None:
        async with pool.acquire() as conn:
            await conn.fetchval(READ, ids[i % len(ids)])

    async def update(i: int) -> None:
        rid = ids[i % len(ids)]
        now = datetime.now(UTC)
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"Patient/{rid}")
            version = await conn.fetchval("SELECT version FROM cur_patient WHERE id = $1", rid) + 1
            body = stamp(rid, version, now)
            pos = await conn.fetchval(APPEND, rid, version, "updated", body, now, "PUT", f"Patient/{rid}")
            await conn.execute(UPSERT, rid, version, now, pos)

    try:
        return [
            await measured(pid, lambda: run_load("asyncpg create", concurrency, ops, create)),
            await measured(pid, lambda: run_load("asyncpg read", concurrency, reads or ops, read)),
            await measured(pid, lambda: run_load("asyncpg update", concurrency, ops, update)),
        ]
    finally:
        await pool.close()


LIMITS = {"create": 0.5, "read": 0.6, "update": 0.5}
"""The issue's targets: each operation's throughput against the raw asyncpg baseline at c=16."""


async def main(
    ops: int,
    workers: int = 1,
    mix_ops: int = 6000,
    changes: bool = False,
    rounds: int = 3,
    read_factor: int = 5,
    levels: tuple[int, ...] = (1, 16),
) -> list[Figure]:
    """Run the rounds and the mix; the figures of the targets (at c=16, when it is among ``levels``)."""
    figures: list[Figure] = []
    command = f"python bench/crud.py --ops {ops} --rounds {rounds} --concurrency {' '.join(map(str, levels))}"
    with ServerProcess(workers=workers) as server:
        pid = server.proc.pid if server.proc else None
        print(f"server workers: {workers}; rounds: {rounds}")
        for concurrency in levels:
            n = ops if concurrency > 1 else max(200, ops // 4)
            pairs: list[list[tuple[Result, Result]]] = []
            for r in range(rounds):
                base, http = await _round(server, pid, concurrency, n, n * read_factor, changes, http_first=r % 2 == 1)
                pairs.append(list(zip(http, base, strict=True)))
                print_rows(f"c={concurrency} round {r + 1}", pairs[-1])
            ratios = print_medians(concurrency, pairs)
            if concurrency == 16:
                for op, limit in LIMITS.items():
                    if op in ratios:
                        target = f"{op} >= {limit}x the raw baseline at c=16"
                        figures.append(Figure(target, f"{ratios[op]:.2f}x", ratios[op] >= limit, command))
        mix = await mix_phase(server.base, 64, mix_ops) if mix_ops else None
    if mix is not None:
        print(f"\nCRUD mix C10 R60 U25 D5 over 5 types, 64 clients: {mix.throughput:,.0f} requests/s")
        print(mix.row())
        figure = f"{mix.throughput:,.0f} requests/s (p99 {mix.pct(0.99):.0f} ms)"
        figures.append(Figure("CRUD mix at 64 clients", figure, None, f"python bench/crud.py --mix-ops {mix_ops}"))
    return figures


async def _round(
    server: ServerProcess, pid: int | None, concurrency: int, n: int, reads: int, changes: bool, http_first: bool
) -> tuple[list[Result], list[Result]]:
    """One round of the baseline's and the server's phases, in the order given."""
    if http_first:
        http = await http_phase(server.base, concurrency, n, pid, changes, reads)
        base = await baseline_phase(server.dsn, concurrency, n, pid, reads)
    else:
        base = await baseline_phase(server.dsn, concurrency, n, pid, reads)
        http = await http_phase(server.base, concurrency, n, pid, changes, reads)
    return base, http


def print_rows(title: str, rows: list[tuple[Result, Result]]) -> None:
    print(f"\n{title}   (cpu: ms per request of the server's Python processes / PostgreSQL / this load generator)")
    for http, base in rows:
        print(http.row() + cpu_note(http))
        print(base.row() + cpu_note(base))
        print(f"{'  ratio http/baseline':<34} {http.throughput / base.throughput:>28.0%}")
    sys.stdout.flush()


def print_medians(concurrency: int, rounds: list[list[tuple[Result, Result]]]) -> dict[str, float]:
    """Per operation: the median over the rounds of the ratio, of each side's throughput, and of
    its CPU per request; returns the median ratio of each operation."""
    print(f"\nmedians over {len(rounds)} rounds, c={concurrency}:")
    ratios: dict[str, float] = {}
    for i, (http, _) in enumerate(rounds[0]):
        pairs = [r[i] for r in rounds]
        ratio = statistics.median(h.throughput / b.throughput for h, b in pairs)
        http_tp = statistics.median(h.throughput for h, _ in pairs)
        base_tp = statistics.median(b.throughput for _, b in pairs)
        operation = http.name.removeprefix("http ")
        ratios[operation] = ratio
        print(
            f"  {operation:<7} ratio {ratio:4.0%}   http {http_tp:7.0f}/s {median_cpu([h for h, _ in pairs])}"
            f"   baseline {base_tp:7.0f}/s {median_cpu([b for _, b in pairs])}"
        )
    sys.stdout.flush()
    return ratios


def median_cpu(results: list[Result]) -> str:
    known = [CPU_MS[id(r)] for r in results if id(r) in CPU_MS]
    if not known:
        return ""
    server, postgres, client = (statistics.median(c[k] for c in known) for k in range(3))
    return f"cpu {server:.2f}/{postgres:.2f}/{client:.2f}"


def cpu_note(result: Result) -> str:
    if id(result) not in CPU_MS:
        return ""
    server, postgres, client = CPU_MS[id(result)]
    return f"  cpu {server:.2f}/{postgres:.2f}/{client:.2f}"


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--ops", type=int, default=2000)
    parser.add_argument(
        "--workers",
        type=int,
        default=default_workers(),
        help="server worker processes (default: the server's with its embedded database)",
    )
    parser.add_argument("--mix-ops", type=int, default=6000, help="requests of the CRUD mix (0: skip it)")
    parser.add_argument("--update-changes", action="store_true", help="each update changes a phone number")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per concurrency, the sides alternating")
    parser.add_argument("--read-factor", type=int, default=5, help="reads per create in a round")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16], help="client counts (default 1 16)")
    a = parser.parse_args()
    levels = tuple(a.concurrency)
    asyncio.run(main(a.ops, a.workers, a.mix_ops, a.update_changes, a.rounds, a.read_factor, levels))
