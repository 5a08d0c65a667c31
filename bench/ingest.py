"""Ingest benchmark: Synthea-shaped patient transaction Bundles (a Patient + ``--clinical``
resources referencing it by ``urn:uuid``) posted to ``POST /fhir`` by 1 and then 4 concurrent
clients, against a raw-asyncpg baseline writing the same number of resources without HTTP, in the
same run and on the same embedded PostgreSQL.

    python bench/ingest.py [--patients 40] [--clinical 200] [--py-spy /tmp/ingest.svg]
    python bench/ingest.py --synthea ../shared/synthea-r4 [--limit 60] [--concurrency 2] [--workers N]

``--workers`` defaults to one server process per core, as ``fhirledger serve`` does.

Every phase loads its own freshly generated Bundles (a different seed per phase and fresh
``urn:uuid``s and server-assigned ids, so nothing collides); one unmeasured warm-up Bundle goes
first. Reported per phase: resources/second and the p50/p99 latency of one Bundle, and the ratio
server / baseline.

**What the baseline does**, per Bundle and in one database transaction on its own connection
(one connection per concurrent client): parse the same request bytes (orjson), give every entry a
new uuid, stamp each resource exactly as the server stores it (``id``, ``meta.versionId``,
``meta.lastUpdated``; the server's own ``stamp``), append all the Bundle's events to ``event_log``
in one ``INSERT … SELECT unnest(…) RETURNING position`` (the same statement the server's log store
uses, since positions are needed and ``COPY`` cannot return them), then write the ``cur_<type>``
rows with ``COPY`` (``copy_records_to_table``), one per resource type.

**What it does not do**: no validation, no reference resolution or rewriting (the stamped bytes
keep the ``urn:uuid:`` references), no search-value extraction and no ``sp_<type>_<kind>`` rows, no
advisory locks, no read of current versions (it knows every resource is new), no conditional
matching, no response Bundle, no HTTP. It is the floor for "write these rows durably", not an
equivalent implementation; the ratio says how much of the server's time goes to everything else.

``--synthea DIR`` posts real Synthea patient Bundles instead (each file once, at
``--concurrency``), then has the baseline write the same Bundles, and reports besides the rates the
CPU time per resource of the server's processes and of PostgreSQL's (read from ``/proc``, so
load from other programs does not count; the baseline's own client CPU is not PostgreSQL's).

``--py-spy PATH`` records a py-spy profile of the server process during the measured phases (needs
``pip install py-spy`` and ptrace permission): a flame graph, or collapsed stacks for a ``.txt``
path, or speedscope for ``.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from app.cli import default_workers
from app.commands.stamp import stamp
from app.fhirtime import now_millis
from app.projections.current_state import current_table
from bench.common import ServerProcess, machine_speed, yardstick_text
from bench.generate import bundles
from bench.rawhttp import RawConnection

APPEND = """
INSERT INTO event_log (resource_type, resource_id, version, kind, resource, recorded_at, method, url)
SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::bytea[], $6::timestamptz[],
                     $7::text[], $8::text[])
RETURNING position
"""
CURRENT_COLUMNS = ("id", "version", "deleted", "last_updated", "position", "key")  # the bytes live in the log only


@dataclass
class Phase:
    name: str
    concurrency: int
    bundles: int
    resources: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rate(self) -> float:
        return self.resources / self.seconds

    def pct(self, q: float) -> float:
        data = sorted(self.latencies_ms)
        return data[min(len(data) - 1, int(q * len(data)))]

    def row(self) -> str:
        return (
            f"{self.name:<10} {self.concurrency:>3} {self.bundles:>8} {self.resources:>10} {self.seconds:>8.2f} "
            f"{self.rate:>11.0f} {self.pct(0.5):>10.1f} {self.pct(0.99):>10.1f}"
        )


HEADER = (
    f"{'writer':<10} {'c':>3} {'bundles':>8} {'resources':>10} {'seconds':>8} {'res/s':>11} "
    f"{'p50 ms':>10} {'p99 ms':>10}"
)


def payloads(count: int, clinical: int, seed: int) -> list[bytes]:
    return [orjson.dumps(b) for b in bundles(count, clinical, seed)]


def resource_count(bodies: list[bytes]) -> int:
    return sum(len(orjson.loads(b)["entry"]) for b in bodies)


async def drive(name: str, concurrency: int, bodies: list[bytes], post: object) -> Phase:
    """Run ``post(worker, body)`` over all bodies with ``concurrency`` workers; time each call."""
    latencies: list[float] = []
    queue = iter(bodies)

    async def worker(w: int) -> None:
        for body in queue:
            t0 = time.perf_counter()
            await post(w, body)  # type: ignore[operator]
            latencies.append((time.perf_counter() - t0) * 1000)

    start = time.perf_counter()
    await asyncio.gather(*[worker(w) for w in range(concurrency)])
    seconds = time.perf_counter() - start
    return Phase(name, concurrency, len(bodies), resource_count(bodies), seconds, latencies)


async def http_phase(base: str, concurrency: int, bodies: list[bytes]) -> Phase:
    conns = [RawConnection(base) for _ in range(concurrency)]
    headers = {"Content-Type": "application/fhir+json"}

    async def post(w: int, body: bytes) -> None:
        status, _, data = await conns[w].request("POST", "", body, headers)
        assert status == 200, data[:500]

    try:
        return await drive("server", concurrency, bodies, post)
    finally:
        for conn in conns:
            await conn.close()


async def write_bundle(conn: asyncpg.Connection, body: bytes) -> None:
    """The baseline's work for one Bundle (see the module docstring)."""
    entries = orjson.loads(body)["entry"]
    now = now_millis()
    types, ids, versions, kinds, stamped, times, methods, urls = [], [], [], [], [], [], [], []
    for entry in entries:
        resource = entry["resource"]
        rid = str(uuid.uuid4())
        types.append(resource["resourceType"])
        ids.append(rid)
        versions.append(1)
        kinds.append("created")
        stamped.append(stamp(resource, rid, 1, now))
        times.append(now)
        methods.append("POST")
        urls.append(entry["request"]["url"])
    async with conn.transaction():
        rows = await conn.fetch(APPEND, types, ids, versions, kinds, stamped, times, methods, urls)
        by_type: dict[str, list[tuple]] = {}
        for t, rid, row in zip(types, ids, rows, strict=True):
            by_type.setdefault(t, []).append((rid, 1, False, now, row["position"], row["position"]))
        for t, records in by_type.items():
            await conn.copy_records_to_table(current_table(t), records=records, columns=CURRENT_COLUMNS)


async def baseline_phase(dsn: str, concurrency: int, bodies: list[bytes]) -> Phase:
    conns = [await asyncpg.connect(dsn) for _ in range(concurrency)]

    async def post(w: int, body: bytes) -> None:
        await write_bundle(conns[w], body)

    try:
        return await drive("baseline", concurrency, bodies, post)
    finally:
        for conn in conns:
            await conn.close()


_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int, reaped: bool = False) -> float:
    """User + system CPU of a process (``reaped``: and of its children it waited for)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if reaped else 0)
    return ticks / _TICK


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry))
    return out


def cpu_split(server: ServerProcess) -> tuple[float, float]:
    """(CPU seconds of the server's Python processes, of PostgreSQL's) so far."""
    assert server.proc is not None
    python = _cpu_seconds(server.proc.pid) + sum(_cpu_seconds(c) for c in _children(server.proc.pid))
    pid_file = server.data_dir / "pgdata" / "postmaster.pid"
    postmaster = int(pid_file.read_text().split()[0]) if pid_file.exists() else 0
    postgres = _cpu_seconds(postmaster, reaped=True) + sum(_cpu_seconds(c) for c in _children(postmaster))
    return python, postgres


def synthea_payloads(directory: str, limit: int) -> list[bytes]:
    files = sorted(Path(directory).glob("*.json*"))[: limit or None]
    if len(files) < 3:  # two warm-up Bundles and one measured at least
        raise SystemExit(f"--synthea {directory}: {len(files)} Bundle files (*.json, *.json.gz) found; 3 at least")
    return [gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes() for p in files]


async def synthea_main(directory: str, limit: int, concurrency: int, workers: int, profile: str | None = None) -> None:
    """Real Synthea Bundles through the server, then through the baseline, on one database."""
    bodies = synthea_payloads(directory, limit)
    speed_before = machine_speed()
    with ServerProcess(workers=workers) as server:
        await http_phase(server.base, 1, bodies[:2])  # warm-up (compiled plans, caches)
        await baseline_phase(server.dsn, 1, bodies[:2])
        spy = start_py_spy(server.proc.pid, profile) if profile and server.proc else None
        python0, postgres0 = cpu_split(server)
        http = await http_phase(server.base, concurrency, bodies[2:])
        python1, postgres1 = cpu_split(server)
        stop_py_spy(spy)
        base = await baseline_phase(server.dsn, concurrency, bodies[2:])
        postgres2 = cpu_split(server)[1]
    n = http.resources
    print(f"\nserver workers: {workers}; {len(bodies) - 2} Synthea Bundles, {n} resources, concurrency {concurrency}")
    print(HEADER)
    print(http.row())
    print(base.row())
    print(f"server/baseline throughput {http.rate / base.rate:6.1%}")
    ms = [1000 * (python1 - python0) / n, 1000 * (postgres1 - postgres0) / n, 1000 * (postgres2 - postgres1) / n]
    print(
        f"CPU per resource: server Python {ms[0]:.3f} ms, its PostgreSQL {ms[1]:.3f} ms; "
        f"baseline's PostgreSQL {ms[2]:.3f} ms"
    )
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    speed_after = machine_speed()
    print(yardstick_text(speed_before, speed_after, http.rate, "resources/s"))


def start_py_spy(pid: int, out: str) -> subprocess.Popen | None:
    exe = shutil.which("py-spy")
    if exe is None:
        print("py-spy not found; no profile recorded", file=sys.stderr)
        return None
    fmt = {".txt": "raw", ".json": "speedscope"}.get(Path(out).suffix, "flamegraph")
    return subprocess.Popen(
        [exe, "record", "--pid", str(pid), "--output", out, "--rate", "200", "--nonblocking", "--format", fmt]
        + ["--subprocesses"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop_py_spy(spy: subprocess.Popen | None) -> None:
    if spy is not None:
        spy.send_signal(signal.SIGINT)
        spy.wait(60)


async def main(patients: int, clinical: int, profile: str | None, workers: int = 1) -> None:
    seeds = iter(range(101, 200))
    with ServerProcess(workers=workers) as server:
        warm = payloads(1, clinical, 100)
        await http_phase(server.base, 1, warm)
        await baseline_phase(server.dsn, 1, warm)
        pairs: list[tuple[Phase, Phase]] = []
        spy = start_py_spy(server.proc.pid, profile) if profile and server.proc else None
        try:
            for concurrency in (1, 4):
                http = await http_phase(server.base, concurrency, payloads(patients, clinical, next(seeds)))
                base = await baseline_phase(server.dsn, concurrency, payloads(patients, clinical, next(seeds)))
                pairs.append((http, base))
        finally:
            stop_py_spy(spy)
    print(f"\nserver workers: {workers}")
    print(f"ingest: {patients} patient Bundles x {1 + clinical} resources per phase, one transaction per Bundle")
    print(HEADER)
    for http, base in pairs:
        print(http.row())
        print(base.row())
    print()
    for http, base in pairs:
        print(
            f"c={http.concurrency}: server/baseline throughput {http.rate / base.rate:6.1%}   "
            f"p50 latency x{http.pct(0.5) / base.pct(0.5):.1f}"
        )
    if profile:
        print(f"\npy-spy profile of the server during the HTTP phases: {profile}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=40, help="patient Bundles per phase (default 40)")
    parser.add_argument("--clinical", type=int, default=200, help="clinical resources per patient (default 200)")
    parser.add_argument("--py-spy", dest="profile", default=None, help="write a py-spy flame graph of the server")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="server worker processes (default: as `serve` chooses with its embedded database)",
    )
    parser.add_argument("--synthea", default=None, help="a directory of Synthea transaction Bundles (*.json[.gz])")
    parser.add_argument("--limit", type=int, default=0, help="with --synthea: at most this many Bundles (0: all)")
    parser.add_argument("--concurrency", type=int, default=2, help="with --synthea: concurrent clients (default 2)")
    args = parser.parse_args()
    args.workers = args.workers or default_workers()
    if args.synthea:
        asyncio.run(synthea_main(args.synthea, args.limit, args.concurrency, args.workers, args.profile))
    else:
        asyncio.run(main(args.patients, args.clinical, args.profile, args.workers))
