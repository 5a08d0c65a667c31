"""Bulk import benchmark: the Synthea R4 Bundles (193 patients, 62,676 resources; ``--copies N``
adds N copies of each with every UUID replaced by a fresh one) imported with ``fhirledger import``'s
own code (worker processes, batches appended with COPY and projected with the projectors' bulk
write) into a fresh embedded database; then a second run over the same files (the resume path:
everything is skipped).

Baseline in the same run: the same events, read back from the log, COPYed raw into a scratch
table of the event log's columns (no validation, no search values, no projections, no locks).
Prints resources/s of each, their ratio, and the peak RSS of the importer and its workers.

    python bench/import_bulk.py [--dir ../shared/synthea-r4] [--copies 0] [--batch 2000] [--workers 0]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import io
import os
import re
import resource
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import psutil
from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from app.cli_import import run_import, summary_text
from app.db.embedded import EmbeddedPostgres
from app.db.migrations import migrate
from app.db.postmaster import live_postmaster
from app.events.feed import cursor_of, read_after
from app.projections.state import check_projections

UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
SCRATCH = """CREATE UNLOGGED TABLE IF NOT EXISTS bench_raw_events (resource_type text, resource_id text,
 version int, kind text, resource bytea, recorded_at timestamptz, method text, url text, actor text)"""


def copy_with_fresh_ids(source: Path, target: Path) -> None:
    """``source`` (a gzip Bundle) with every UUID replaced by a fresh one (the same old, the same new)."""
    mapping: dict[bytes, bytes] = {}

    def fresh(m: re.Match) -> bytes:
        return mapping.setdefault(m.group(0), str(uuid.uuid4()).encode())

    target.write_bytes(gzip.compress(UUID.sub(fresh, gzip.decompress(source.read_bytes())), compresslevel=1))


def make_inputs(source_dir: Path, work: Path, copies: int) -> list[str]:
    files = sorted(source_dir.glob("*.json.gz"))
    dirs = [str(source_dir)]
    for c in range(copies):
        target = work / f"copy{c}"
        target.mkdir()
        for f in files:
            copy_with_fresh_ids(f, target / f.name)
        dirs.append(str(target))
    return dirs


async def raw_copy_baseline(dsn: str) -> tuple[int, float]:
    """COPY the imported events (read back from the log beforehand) into a scratch table."""
    conn = await asyncpg.connect(dsn)
    try:
        events, after = [], None
        while page := await read_after(conn, after, 20000):
            events += page
            after = cursor_of(page[-1])
        rows = [
            (e.resource_type, e.resource_id, e.version, e.kind.value, e.resource, e.recorded_at, e.method, e.url)
            + (e.actor,)
            for e in events
        ]
        await conn.execute(SCRATCH)
        started = time.monotonic()
        for i in range(0, len(rows), 2000):
            async with conn.transaction():
                await conn.copy_records_to_table("bench_raw_events", records=rows[i : i + 2000])
        return len(rows), time.monotonic() - started
    finally:
        await conn.close()


def cpu_seconds(data_dir: Path) -> tuple[float, float, float]:
    """CPU seconds so far of this process, of its worker processes (ended or live, fork servers'
    included) and of the embedded PostgreSQL (the postmaster, the backends it reaped and the live
    ones)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    postgres = 0.0
    server: set[int] = set()
    proc = live_postmaster(data_dir / "pgdata")
    if proc is not None:
        t = proc.cpu_times()
        postgres = t.user + t.system + t.children_user + t.children_system
        server.add(proc.pid)
        for child in proc.children(recursive=True):
            server.add(child.pid)
            try:
                c = child.cpu_times()
                postgres += c.user + c.system
            except psutil.Error:
                pass
    workers = children.ru_utime + children.ru_stime + _live_descendants(server)
    return me.ru_utime + me.ru_stime, workers, postgres


def _live_descendants(server: set[int]) -> float:
    """CPU seconds of this process's live descendants (but the PostgreSQL processes ``server``) and
    of the children they reaped: worker processes still running, and those of a fork server
    (replay's workers are its children, so their time reaches this process only when it ends)."""
    total = 0.0
    for child in psutil.Process().children(recursive=True):
        if child.pid in server:
            continue
        try:
            t = child.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            pass
    return total


def peak_rss_mib() -> tuple[float, float]:
    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the largest child
    return me, children


async def run(args: argparse.Namespace, dsn: str, inputs: list[str], data_dir: Path) -> None:
    conn = await asyncpg.connect(dsn)
    await migrate(conn)
    await check_projections(conn)
    await conn.close()
    console = Console(file=sys.stderr)
    before = cpu_seconds(data_dir)
    first = await run_import(dsn, inputs, console, batch=args.batch, workers=args.workers)
    after = cpu_seconds(data_dir)
    cpu = [(a - b) * 1000 / max(first.imported, 1) for a, b in zip(after, before, strict=True)]
    rss_main, rss_worker = peak_rss_mib()
    again = await run_import(dsn, inputs, Console(file=io.StringIO()), batch=args.batch, workers=args.workers)
    count, raw_seconds = await raw_copy_baseline(dsn)
    rate = first.imported / first.elapsed
    raw_rate = count / raw_seconds
    print(summary_text(first))
    print(f"import      : {first.imported:,} resources in {first.elapsed:.1f} s = {rate:,.0f} resources/s")
    print(f"re-run      : {again.skipped:,} skipped in {again.elapsed:.1f} s = {again.skipped / again.elapsed:,.0f}/s")
    print(f"raw COPY    : {count:,} events in {raw_seconds:.1f} s = {raw_rate:,.0f} events/s")
    print(f"ratio       : import runs at {rate / raw_rate:.1%} of a raw COPY of the same events")
    print(f"peak RSS    : importer {rss_main:,.0f} MiB, largest worker {rss_worker:,.0f} MiB")
    print(
        f"CPU/resource: importer {cpu[0]:.2f} ms, workers {cpu[1]:.2f} ms, PostgreSQL {cpu[2]:.2f} ms;"
        f" {os.cpu_count()} idle cores would give at most {os.cpu_count() * 1000 / sum(cpu):,.0f} resources/s"
    )
    print(f"machine     : {os.cpu_count()} CPUs (shared with other work: figures are noisy)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "synthea-r4"))
    parser.add_argument("--copies", type=int, default=0, help="copies of the Bundles with fresh UUIDs")
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=0, help="preparing processes (0: CPUs)")
    parser.add_argument("--keep", default=None, help="data directory to keep (default: a temporary one)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fhirledger-import-bench-"))
    data_dir = Path(args.keep) if args.keep else work / "data"
    embedded = EmbeddedPostgres(data_dir)
    try:
        inputs = make_inputs(Path(args.dir), work, args.copies)
        dsn = embedded.start()
        asyncio.run(run(args, dsn, inputs, data_dir))
    finally:
        embedded.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
