"""Every target of the performance issue in one run, on the scale benchmark's two databases (a
``bench/scale.py build`` of about 200k resources and one of about a million), each figure printed
with the command that measures it alone:

    python bench/scale.py targets --data-dir /work/scale-db/a --data-dir /work/scale-db/b

In this order:

- ingest: the rate of each build step, as ``bench/scale.py build`` recorded it in the data
  directory (ingest is measured while the databases are built, not again here);
- search: the 38-query mix at both sizes side by side (:mod:`bench.scale_measure`);
- storage: bytes per resource of the larger database (``pg_database_size``), as it is before the
  rebuild below;
- replay: every projection of the larger database rebuilt from its log, as ``fhirledger projections
  rebuild --all`` does it (:mod:`bench.replay_data_dir`; the projections are rebuilt in place);
- create, read and update against the raw asyncpg baseline at 16 clients and the CRUD mix at 64, on
  a fresh database (:mod:`bench.crud`);
- read, vread and history flat in versions, at 100 and 10,000 versions (:mod:`bench.history`).

The embedded PostgreSQL of a data directory must not be running (stop its server first). About
three minutes at a million resources on a fast 2-core machine. These machines' speed differs
twofold from one to another: the ratios are what the targets compare, but the replay's and the
ingest's rates are absolute."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from app.cli import default_workers
from app.db.embedded import EmbeddedPostgres
from bench import crud, history
from bench.common import Figure, machine_speed
from bench.replay_data_dir import replay
from bench.scale_build import recorded_steps
from bench.scale_measure import measure_all

INGEST = 3_000
"""Synthea transaction ingest, resources per second."""
BYTES = 7.5 * 1024 / 2
"""Bytes per resource: half the 7.5 KB the issue measured."""


def ingest_figures(data_dirs: list[Path]) -> list[Figure]:
    """The recorded build steps of the data directories (a directory copied from a smaller build
    repeats that build's steps: each step once)."""
    out: list[Figure] = []
    seen: set[tuple] = set()
    target = f"Synthea transaction ingest >= {INGEST:,} resources/s"
    for data_dir in data_dirs:
        for step in recorded_steps(data_dir):
            key = (step["date"], step["resources_before"], step["resources_after"])
            if key in seen:
                continue
            seen.add(key)
            rate = step["posted"] / max(step["seconds"], 1e-9)
            sizes = f"{step['resources_before']:,} to {step['resources_after']:,} resources"
            figure = f"{rate:,.0f} resources/s ({sizes}, {step['date']}; {step['cpu']})"
            out.append(Figure(target, figure, rate >= INGEST, step["command"]))
    if not out:
        figure = "no build step recorded in these data directories (built before builds kept their figures)"
        out.append(Figure(target, figure, None, "python bench/scale.py build --data-dir DIR --copies N"))
    return out


async def storage_figure(data_dir: Path) -> Figure:
    """Bytes of the whole database per resource in its log."""
    embedded = EmbeddedPostgres(data_dir)
    dsn = embedded.start()
    try:
        conn = await asyncpg.connect(dsn)
        try:
            size = await conn.fetchval("SELECT pg_database_size(current_database())")
            resources = await conn.fetchval(
                "SELECT count(*) FROM (SELECT DISTINCT resource_type, resource_id FROM event_log) r"
            )
        finally:
            await conn.close()
    finally:
        embedded.stop()
    per = size / max(resources, 1)
    figure = f"{per / 1024:.2f} KB per resource ({size:,} bytes, {resources:,} resources)"
    command = f"pg_database_size of {data_dir} (python bench/storage.py measures a fresh database)"
    return Figure(f"bytes per resource <= {BYTES / 1024:.2f} KB", figure, per <= BYTES, command)


async def run(data_dirs: list[Path], repeat: int, rounds: int) -> list[Figure]:
    """Measure every target (see the module's doc); prints the summary and returns the figures."""
    speed = machine_speed()
    figures = ingest_figures(data_dirs)
    figures += await measure_all(data_dirs, repeat, rounds, False)
    figures.append(await storage_figure(data_dirs[-1]))
    figures.append(await replay(data_dirs[-1], 5000))
    figures += await crud.main(2000, default_workers(), 6000, False, 2, 5, (16,))
    figures += await history.main(100, 10_000, 200, 8)
    print(f"\nthe performance targets (machine yardstick {speed:.0f} before and {machine_speed():.0f} after,")
    print("bench/common.py machine_speed; the sessions' machines read 105 to 350):")
    for figure in figures:
        print(figure.line())
        print(f"      {figure.command}")
    met = [f for f in figures if f.met is not None]
    print(f"{sum(f.met for f in met)} of {len(met)} targets met")
    return figures
