"""Bulk export benchmark: a full system export (every type, the export job exactly as the server
runs it: snapshot reader, chunks, ndjson files) of N generated events, against a raw baseline in
the same run: ``COPY (SELECT resource FROM cur_<type> JOIN event_log …) TO STDOUT`` of every type
into files (what dumping the current state costs with no snapshot, no job and no API).

Each side runs in a subprocess of its own, so its peak RSS (``ru_maxrss``) is its own; the export's
should stay flat as N grows (it streams), whatever the size of the files.

    python bench/export.py [--events 200000]

"RSS a → peak b": the process's resident set once its imports are loaded, and its peak.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from app.db.embedded import EmbeddedPostgres
from app.db.migrations import migrate
from app.projections.current_state import current_table
from app.projections.state import check_projections
from bench.replay import COLUMNS, event_rows


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


REPEATS = 3


def _peak_mib() -> float:
    """This process's peak resident set (VmHWM: ru_maxrss would carry the parent's across exec)."""
    return _status_mib("VmHWM")


def _rss_mib() -> float:
    """The resident set now (after the imports), to set the peak against."""
    return _status_mib("VmRSS")


async def _load(dsn: str, events: int) -> list[str]:
    """Append the events with COPY and fill the current-state tables from them (raw SQL: the bench
    needs the baseline's tables, not the search index)."""
    conn = await asyncpg.connect(dsn)
    await migrate(conn)
    await check_projections(conn)
    rows = event_rows(events)
    for i in range(0, len(rows), 50_000):
        await conn.copy_records_to_table("event_log", records=rows[i : i + 50_000], columns=COLUMNS)
    types = sorted({r[0] for r in rows})
    del rows
    for kind in types:
        await conn.execute(
            f"INSERT INTO {current_table(kind)} (id, version, deleted, last_updated, position)"
            " SELECT DISTINCT ON (resource_id) resource_id, version, kind = 'deleted', recorded_at, position"
            " FROM event_log WHERE resource_type = $1 ORDER BY resource_id, version DESC",
            kind,
        )
    await conn.execute("VACUUM ANALYZE")
    await conn.close()
    return types


async def run_export(dsn: str, out: str) -> dict:
    """One full system export through the job (in this subprocess)."""
    from app.events.snapshot import take_snapshot
    from app.fhirspec.resource_types import resource_types
    from app.jobs.export import run_export as job
    from app.jobs.export_store import ExportRecord, create_export, load_export

    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    async with pool.acquire() as conn:
        snapshot = await take_snapshot(conn)
    params = {"level": "system", "group": None, "patients": None, "types": list(resource_types()), "since": None}
    params |= {"filters": {}, "elements": {}, "base": "http://bench/fhir"}
    record = ExportRecord(
        Path(out).name, "http://bench/fhir/$export", params, {}, False, out, 24, snapshot.text,
        snapshot.transaction_time, "accepted", {}, None, None, snapshot.transaction_time, None, None,
    )  # fmt: skip
    await create_export(pool, record)

    async def report(progress: dict) -> None:
        return None

    from app.validation import warm

    warm()  # what a server process has loaded before any export
    start_mib = _rss_mib()
    t0 = time.perf_counter()
    await job(pool, Path(out).name, report)
    seconds = time.perf_counter() - t0
    done = await load_export(pool, Path(out).name)
    assert done is not None and done.status == "completed", done
    await pool.close()
    count = sum(o["count"] for o in done.output["output"])  # type: ignore[index]
    return {"seconds": seconds, "resources": count, "peak_mib": _peak_mib(), "start_mib": start_mib}


async def run_copy(dsn: str, out: str, types: list[str]) -> dict:
    """The baseline: raw COPY of every type's current resources to a file (in this subprocess)."""
    conn = await asyncpg.connect(dsn)
    start_mib = _rss_mib()
    t0 = time.perf_counter()
    count = 0
    for kind in types:
        path = Path(out) / f"{kind}.raw"
        with path.open("wb") as f:
            await conn.copy_from_query(
                f"SELECT convert_from(e.resource, 'UTF8') FROM {current_table(kind)} c"
                " JOIN event_log e ON e.position = c.position WHERE NOT c.deleted",
                output=f,
            )
        count += await conn.fetchval(f"SELECT count(*) FROM {current_table(kind)} WHERE NOT deleted")
    seconds = time.perf_counter() - t0
    await conn.close()
    return {"seconds": seconds, "resources": count, "peak_mib": _peak_mib(), "start_mib": start_mib}


def _child(mode: str, dsn: str, out: str, types: list[str]) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, "--dsn", dsn, "--out", out, "--types", ",".join(types)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _size_mib(directory: Path) -> float:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file()) / 2**20


def main(events: int) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="fhirledger-export-bench-"))
    embedded = EmbeddedPostgres(data_dir / "pg")
    dsn = embedded.start()
    try:
        t0 = time.perf_counter()
        types = asyncio.run(_load(dsn, events))
        print(f"loaded {events:,} events ({len(types)} types) in {time.perf_counter() - t0:.1f} s")
        runs: list[tuple[dict, dict]] = []
        for rep in range(REPEATS + 1):  # the first pass of each side reads from disk: not counted
            shutil.rmtree(data_dir / "copy", ignore_errors=True)
            (data_dir / "copy").mkdir()
            base = _child("copy", dsn, str(data_dir / "copy"), types)
            export = _child("export", dsn, str(data_dir / f"export-{rep}"), types)
            label = f"run {rep}" if rep else "warm-up"
            print(f"{label}: COPY {base['seconds']:.2f} s, export {export['seconds']:.2f} s")
            if rep:
                runs.append((base, export))
        base = min((b for b, _ in runs), key=lambda r: r["seconds"])
        export = min((e for _, e in runs), key=lambda r: r["seconds"])
        assert base["resources"] == export["resources"], (base, export)
        n = export["resources"]
        print(
            f"baseline COPY (SELECT resource FROM cur_<type>) TO file: {n:,} resources in {base['seconds']:.2f} s"
            f" = {n / base['seconds']:,.0f} resources/s,"
            f" RSS {base['start_mib']:.0f} MiB → peak {base['peak_mib']:.0f} MiB,"
            f" {_size_mib(data_dir / 'copy'):.0f} MiB written"
        )
        print(
            f"bulk export job (snapshot, ndjson files): {n:,} resources in {export['seconds']:.2f} s"
            f" = {n / export['seconds']:,.0f} resources/s, RSS {export['start_mib']:.0f} MiB → peak"
            f" {export['peak_mib']:.0f} MiB, {_size_mib(data_dir / 'export-1'):.0f} MiB written"
        )
        print(f"export throughput / baseline (best of {REPEATS} each): {base['seconds'] / export['seconds']:.0%}")
    finally:
        embedded.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--child", choices=["export", "copy"])
    parser.add_argument("--dsn")
    parser.add_argument("--out")
    parser.add_argument("--types", default="")
    a = parser.parse_args()
    if a.child == "export":
        print(json.dumps(asyncio.run(run_export(a.dsn, a.out))))
    elif a.child == "copy":
        print(json.dumps(asyncio.run(run_copy(a.dsn, a.out, a.types.split(",")))))
    else:
        main(a.events)
