"""Full-text index write cost: what ``_content``, ``_text`` and ``:text`` add to each write of real
Synthea resources, against the search-index projection without them and a raw-asyncpg baseline, in
the same run and on the same embedded PostgreSQL.

    python bench/text_index.py [--patients 8] [--database-url postgresql://…]

Resources: every entry of the first ``--patients`` bundles of ``../shared/synthea-r4/`` (fresh ids
per mode, so nothing collides). Figures:

- **extraction (CPU)**: the search projector's ``rows`` per resource, and the part of it spent in
  ``document_rows`` (the ``_content`` and ``_text`` documents; a parameter's ``:text`` row is
  built with its other rows), in this process;
- **write**: one transaction per resource running the search-index projector's ``write`` of that
  resource's rows (the statement a create runs; PostgreSQL stores in it the documents of the texts
  it has not stored before, :mod:`app.search_types.text`), with and
  without the text rows; the **baseline** is one transaction inserting the resource's JSON bytes
  into a two-column table (the floor of "write one row durably"); then the same with
  ``CHUNK`` resources per transaction (a transaction Bundle), where the commit weighs less;
- **storage**: bytes per resource of the text tables and the documents (``text_document``, each
  stored once whatever the rows that have it) with their indexes, and of all other search side
  tables, after the "with" run.

Modes are interleaved in chunks of ``CHUNK`` resources (baseline, without, with) so that drift of a
shared machine falls on all three alike; every figure is the sum over the chunks.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import shutil
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from app.events.model import EventKind, RequestContext, VersionEvent
from app.projections import search_index
from app.projections.search_index import SearchIndexProjector
from app.search_types.text import DOCUMENTS
from app.search_types.text_config import text_config
from bench.common import migrated_connection

SYNTHEA = Path(__file__).resolve().parents[2] / "shared" / "synthea-r4"
if not SYNTHEA.exists():
    SYNTHEA = Path("/work/shared/synthea-r4")
CHUNK = 100
CONTEXT = RequestContext("POST", "bench")


def load(patients: int) -> list[dict]:
    out = []
    for path in sorted(SYNTHEA.glob("*.json.gz"))[:patients]:
        bundle = orjson.loads(gzip.open(path).read())
        out.extend(e["resource"] for e in bundle.get("entry", []) if isinstance(e.get("resource"), dict))
    return out


def event(resource: dict) -> VersionEvent:
    rid = uuid.uuid4().hex
    body = orjson.dumps({**resource, "id": rid})
    return VersionEvent(resource["resourceType"], rid, 1, EventKind.CREATED, body, datetime.now(UTC), CONTEXT)


class Timings:
    def __init__(self) -> None:
        self.total: dict[str, float] = defaultdict(float)
        self.by_type: dict[tuple[str, str], float] = defaultdict(float)


def _no_text(rows: dict) -> dict:
    for tr in rows.values():
        tr.rows["text"] = []
    return rows


def extraction(resources: list[dict], timings: Timings) -> None:
    """The projector's ``rows`` per resource, and within it the time of ``document_rows`` (timed
    around the real call, three rounds): an order-free split of the same work."""
    projector = SearchIndexProjector()
    real = search_index.document_rows

    def timed(resource: dict) -> list:
        start = time.perf_counter()
        out = real(resource)
        timings.total["text part"] += time.perf_counter() - start
        return out

    search_index.document_rows = timed
    for _ in range(3):
        for r in resources:
            e = event(r)
            start = time.perf_counter()
            projector.rows([e])
            timings.total["rows"] += time.perf_counter() - start
    search_index.document_rows = real


async def _baseline(conn: asyncpg.Connection, events: list[VersionEvent]) -> None:
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO bench_raw (id, body) SELECT * FROM unnest($1::text[], $2::bytea[])",
            [e.resource_id for e in events],
            [e.resource for e in events],
        )


async def writes(conn: asyncpg.Connection, resources: list[dict], timings: Timings) -> None:
    """Per chunk: each resource in its own transaction (a create), then the chunk in one (a
    transaction Bundle), for the baseline and the projector without and with the text rows."""
    await conn.execute("DROP TABLE IF EXISTS bench_raw; CREATE TABLE bench_raw (id text PRIMARY KEY, body bytea)")
    projector = SearchIndexProjector()
    for start in range(0, len(resources), CHUNK):
        chunk = resources[start : start + CHUNK]
        for r in chunk:
            began = time.perf_counter()
            await _baseline(conn, [event(r)])
            timings.total["baseline"] += time.perf_counter() - began
        began = time.perf_counter()
        await _baseline(conn, [event(r) for r in chunk])
        timings.total["baseline batch"] += time.perf_counter() - began
        for mode, strip in (("without", _no_text), ("with", lambda rows: rows)):
            for r in chunk:
                rows = strip(projector.rows([event(r)]))
                began = time.perf_counter()
                async with conn.transaction():
                    await projector.write(conn, rows)
                took = time.perf_counter() - began
                timings.total[mode] += took
                timings.by_type[(mode, r["resourceType"])] += took
            rows = strip(projector.rows([event(r) for r in chunk]))
            began = time.perf_counter()
            async with conn.transaction():
                await projector.write(conn, rows)
            timings.total[f"{mode} batch"] += time.perf_counter() - began


async def storage(conn: asyncpg.Connection, resources: int) -> tuple[float, float]:
    """Bytes per resource of the text tables with the documents, and of the other side tables (with
    their indexes): the text tables hold each resource twice (single and batched "with"), the others
    four times; the documents are stored once."""
    rows = await conn.fetch(
        "SELECT relname, pg_total_relation_size(oid) AS bytes FROM pg_class"
        " WHERE relkind = 'r' AND (relname LIKE 'sp\\_%' OR relname = $1)",
        DOCUMENTS,
    )
    text = sum(r["bytes"] for r in rows if r["relname"].endswith("_text") or r["relname"] == DOCUMENTS)
    other = sum(r["bytes"] for r in rows if r["relname"].startswith("sp_") and not r["relname"].endswith("_text"))
    return text / (2 * resources), other / (4 * resources)


def report(resources: list[dict], cpu: Timings, db: Timings, sizes: tuple[float, float]) -> None:
    n = len(resources)
    print(f"{n} Synthea resources, text-search configuration {text_config()!r}; shared 2-core machine, noisy")
    rows, text = cpu.total["rows"] / (3 * n), cpu.total["text part"] / (3 * n)
    print(
        f"extraction (CPU): rows {rows * 1e6:8.1f} µs/resource, of which text rows {text * 1e6:6.1f} µs"
        f" (×{rows / (rows - text):.2f} the extraction without them)"
    )
    base, without, with_ = (db.total[k] / n for k in ("baseline", "without", "with"))
    print(
        f"write (1 resource/tx): baseline raw insert {base * 1e6:8.1f} µs, search index without text"
        f" {without * 1e6:8.1f} µs (×{without / base:.2f} baseline), with text {with_ * 1e6:8.1f} µs"
        f" (×{with_ / base:.2f} baseline, ×{with_ / without:.2f} without text, +{(with_ - without) * 1e6:.1f} µs)"
    )
    base, without, with_ = (db.total[f"{k} batch"] / n for k in ("baseline", "without", "with"))
    print(
        f"write ({CHUNK} resources/tx): baseline raw insert {base * 1e6:8.1f} µs/resource, search index without"
        f" text {without * 1e6:8.1f} µs (×{without / base:.2f} baseline), with text {with_ * 1e6:8.1f} µs"
        f" (×{with_ / base:.2f} baseline, ×{with_ / without:.2f} without text, +{(with_ - without) * 1e6:.1f} µs)"
    )
    counts: dict[str, int] = defaultdict(int)
    for r in resources:
        counts[r["resourceType"]] += 1
    print("per type (count: write without → with, µs/resource):")
    for t, c in sorted(counts.items(), key=lambda kv: -kv[1])[:8]:
        w0, w1 = db.by_type[("without", t)] / c, db.by_type[("with", t)] / c
        print(f"  {t:<22} {c:5d}: {w0 * 1e6:8.1f} → {w1 * 1e6:8.1f}  (×{w1 / w0:.2f})")
    text, other = sizes
    print(
        f"storage: text tables {text:,.0f} B/resource, other side tables {other:,.0f} B/resource"
        f" (text adds ×{(text + other) / other:.2f} to the search index)"
    )


async def main(args: argparse.Namespace) -> None:
    resources = load(args.patients)
    embedded, data_dir, dsn = None, None, args.database_url
    if dsn is None:
        from app.db.embedded import EmbeddedPostgres

        data_dir = Path(tempfile.mkdtemp(prefix="fhirledger-bench-text-"))
        embedded = EmbeddedPostgres(data_dir)
        dsn = embedded.start()
    try:
        conn = await migrated_connection(dsn)
        cpu, db = Timings(), Timings()
        extraction(resources, cpu)
        await writes(conn, resources, db)
        sizes = await storage(conn, len(resources))
        await conn.close()
        report(resources, cpu, db, sizes)
        print(f"command: python bench/text_index.py --patients {args.patients}")
    finally:
        if embedded is not None:
            embedded.stop()
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=8)
    parser.add_argument("--database-url", default=None, help="an existing database (default: embedded, temporary)")
    asyncio.run(main(parser.parse_args()))
