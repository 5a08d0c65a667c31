"""PostgreSQL CPU per write of the server's own one statement (app/projections/one_statement.py),
called through asyncpg at a given concurrency on a fresh embedded database: no HTTP, no server,
so the figure is the database's part of a create or update alone, less noisy than bench/crud.py's.

    python bench/statement_cpu.py [--ops 3000] [--concurrency 16] [--rounds 3] [--sql "DDL run first"]
        [--alternate "SQL of side A" "SQL of side B"] [--variant OLD NEW ...] [--without KIND ...]
        [--body-b PATIENT.json]

Each round creates ``--ops`` Patients (the bench/crud.py body), then updates each once with the
same body (no search row changes) and once with a new phone number (its token and text rows
change); CPU is the backends' time on a CPU (the scheduler's count) over each phase, per write.
``--sql`` runs statements after the migrations (an experiment: drop an index, say);
``--alternate`` runs each round twice, after side A's statements then side B's, in the same
database and time window (a DDL experiment measured side by side on a noisy machine);
``--variant OLD NEW`` makes side B run the statement with OLD replaced by NEW (its functions
defined by ``--sql``); ``--without KIND`` makes side B write no rows of that side table (its INSERT
becomes a SELECT of its parameters, which PostgreSQL never runs): what those rows cost at most, the
bound of any redesign of them; ``--body-b`` makes side B create (and update) another Patient body
(one with a second name and address, say: what each further side row costs where its table is
written anyway, per row or per table touched). Small rounds alternated many times cancel the drift
of a growing database: the summary gives the median over the rounds of B - A. ``--perf FILE`` records the backends with
``perf record`` (call graphs) for ``perf report -i FILE``.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import asyncpg
import orjson
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from app.commands.create import decide_create
from app.commands.stamp import stamped
from app.db.embedded import EmbeddedPostgres
from app.db.migrations import migrate
from app.events.model import EventKind, RequestContext, VersionEvent
from app.fhirtime import now_millis
from app.projections import custom_params, one_statement
from app.projections.one_statement import append_and_project
from bench.common import run_load
from bench.crud import PATIENT


def postgres_cpu(postmaster: int) -> float:
    """CPU seconds so far of the postmaster's children alive now (the backends do the work), from
    the scheduler's nanosecond count (``/proc/<pid>/schedstat``; psutil's clock ticks are 10 ms)."""
    total = 0
    for p in psutil.Process(postmaster).children():
        try:
            total += int(Path(f"/proc/{p.pid}/schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total / 1e9


def _body() -> dict:
    """The Patient body the current side creates (``--body-b`` for side B, else bench/crud.py's)."""
    return _BODY_B if _side[0] == "B" and _BODY_B else PATIENT


def updated(rid: str, i: int, changes: bool) -> dict:
    """As bench/crud.py's ``updated``, of the current side's body."""
    body = {**_body(), "id": rid}
    return {**body, "telecom": [{"system": "phone", "value": f"(03) 5555 {i:04d}", "use": "work"}]} if changes else body


def update_event(create: VersionEvent, i: int, changes: bool, version: int) -> VersionEvent:
    body, parsed = stamped(updated(create.resource_id, i, changes), create.resource_id, version, now_millis())
    context = RequestContext("PUT", f"Patient/{create.resource_id}")
    return VersionEvent("Patient", create.resource_id, version, EventKind.UPDATED, body, now_millis(), context, parsed)


async def phase(pool: asyncpg.Pool, postmaster: int, c: int, pairs: list[tuple[VersionEvent, bytes | None]]) -> float:
    """PostgreSQL CPU ms per write of ``pairs`` (event, previous bytes) at concurrency ``c``."""

    async def op(i: int) -> None:
        event, previous = pairs[i]
        async with pool.acquire() as conn:
            assert await append_and_project(conn, event, previous) is not None

    before = postgres_cpu(postmaster)
    await run_load("statement", c, len(pairs), op)
    return (postgres_cpu(postmaster) - before) * 1000 / len(pairs)


async def round_of(pool: asyncpg.Pool, postmaster: int, ops: int, c: int) -> dict[str, float]:
    """One round: creates, updates with the same body, updates with a new phone number."""
    context = RequestContext("POST", "Patient")
    creates = [decide_create("Patient", str(uuid.uuid4()), dict(_body()), now_millis(), context) for _ in range(ops)]
    out = {"create": await phase(pool, postmaster, c, [(e, None) for e in creates])}
    same = [(update_event(e, i, False, 2), e.resource) for i, e in enumerate(creates)]
    out["update same"] = await phase(pool, postmaster, c, same)
    changed = [
        (update_event(e, i, True, 3), s.resource) for i, ((s, _), e) in enumerate(zip(same, creates, strict=True))
    ]
    out["update changed"] = await phase(pool, postmaster, c, changed)
    return out


_VARIANTS: list[tuple[str, str]] = []
_WITHOUT: set[str] = set()  # the side tables side B writes no rows to
_INSERT = re.compile(r"i_(\w+) AS \(INSERT INTO .*\)(?=,\n|\nSELECT)")
_matched: set[str] = set()  # the OLD texts some statement held
_side = ["A"]
_BODY_B: dict = {}  # --body-b: side B's Patient body
_original = one_statement._statement


def _without(found: re.Match) -> str:
    """An INSERT CTE of a kind in ``_WITHOUT`` as a SELECT of its parameters (so their types are
    still known), which nothing reads and PostgreSQL therefore never runs."""
    if found.group(1) not in _WITHOUT:
        return found.group(0)
    params = sorted(set(re.findall(r"\$\d+::[a-z]+(?:\[\])?", found.group(0))))
    return f"i_{found.group(1)} AS (SELECT {', '.join(params)})"


def _statement(*args: object, **kwargs: object) -> str:
    """The server's statement, with the variant's replacements (and ``--without``) on side B."""
    sql = _original(*args, **kwargs)  # type: ignore[arg-type]
    if _side[0] == "B":
        for old, new in _VARIANTS:
            if old in sql:
                _matched.add(old)
                sql = sql.replace(old, new)
        if _WITHOUT:
            sql = _INSERT.sub(_without, sql)
    return sql


one_statement._statement = _statement  # type: ignore[assignment]


def _print(figures: dict[tuple[str, str], list[float]], sides: bool) -> None:
    """Each phase's median per side, and with two sides the median of the rounds' B - A."""
    for (name, side), values in sorted(figures.items()):
        shown = " ".join(f"{v:.3f}" for v in values)
        label = f"{name} {side}" if sides else name
        print(f"{label:17} PostgreSQL CPU ms/write median {statistics.median(values):.3f} ({shown})")
    for old, _ in _VARIANTS:
        if old not in _matched:
            print(f"variant never applied (no statement holds it): {old!r}")
    if sides:
        for name in dict.fromkeys(n for n, _ in figures):
            pairs = zip(figures[(name, "A")], figures[(name, "B")], strict=True)
            difference = statistics.median(b - a for a, b in pairs)
            print(f"{name:15} B - A median of the rounds' differences {difference:+.3f} ms")


async def _no_reset(conn: asyncpg.Connection) -> None:
    """As the server's pool (app/db/pool.py): no reset query when a connection is released."""


def _perf(postmaster: int, out: str) -> subprocess.Popen:
    """``perf record`` of the backends (call graphs, CPU clock) into ``out``."""
    pids = ",".join(str(p.pid) for p in psutil.Process(postmaster).children())
    return subprocess.Popen(
        ["perf", "record", "-q", "-e", "cpu-clock", "--call-graph", "dwarf,8192", "-F", "499", "-p", pids, "-o", out]
    )


async def main(
    ops: int, concurrency: int, rounds: int, sql: str | None, alternate: list[str] | None, perf_out: str | None
) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="fhirledger-stmt-"))
    embedded = EmbeddedPostgres(data_dir)
    dsn = embedded.start()
    try:
        postmaster = int((embedded.pgdata / "postmaster.pid").read_text().split()[0])
        pool = asyncpg.create_pool(dsn, min_size=concurrency, max_size=concurrency, reset=_no_reset)
        async with pool:
            async with pool.acquire() as conn:
                await migrate(conn)
                if sql:
                    await conn.execute(sql)
                await custom_params.sync(conn)
            for side in "AB":  # warm-up, not counted: each side's statements prepared on every connection
                _side[0] = side
                await round_of(pool, postmaster, max(ops // 4, 100), concurrency)
            perf = _perf(postmaster, perf_out) if perf_out else None
            sides = alternate or ([""] if not (_VARIANTS or _WITHOUT or _BODY_B) else ["", ""])
            figures: dict[tuple[str, str], list[float]] = {}
            for _ in range(rounds):
                for side, setup in zip("AB", sides, strict=False):
                    _side[0] = side
                    if setup:
                        async with pool.acquire() as conn:
                            await conn.execute(setup)
                    for name, value in (await round_of(pool, postmaster, ops, concurrency)).items():
                        figures.setdefault((name, side), []).append(value)
            if perf is not None:
                perf.send_signal(signal.SIGINT)
                perf.wait()
            _print(figures, bool(alternate or _VARIANTS or _WITHOUT or _BODY_B))
    finally:
        embedded.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sql", default=None)
    parser.add_argument("--alternate", nargs=2, default=None, metavar=("SQL_A", "SQL_B"))
    parser.add_argument("--variant", nargs=2, action="append", default=[], metavar=("OLD", "NEW"))
    parser.add_argument("--perf", default=None, metavar="FILE", help="perf record the backends into FILE")
    parser.add_argument("--without", action="append", default=[], metavar="KIND", help="side B writes no KIND rows")
    parser.add_argument("--body-b", default=None, metavar="JSON", help="side B creates this Patient body")
    args = parser.parse_args()
    if args.body_b:
        _BODY_B.update(orjson.loads(Path(args.body_b).read_bytes()))
    _VARIANTS.extend(tuple(v) for v in args.variant)
    _WITHOUT.update(args.without)
    asyncio.run(main(args.ops, args.concurrency, args.rounds, args.sql, args.alternate, args.perf))
