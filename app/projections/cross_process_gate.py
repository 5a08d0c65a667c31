"""One shared statement of a type in flight across the server's processes, not one per process.

:mod:`app.projections.write_batches` lets one statement per type and kind (creates; updates) be in
flight in a process, and the writes that arrive meanwhile queue behind it and go together in the
next. With several worker processes (``fhirledger serve --workers N``) each had its own: the
concurrent writes were split into as many smaller statements, and a write's PostgreSQL CPU is
mostly the statement's own (session 31 on 2 cores: 0.48-0.55 ms per create with two workers
against 0.31-0.36 with one, create falling to 0.45-0.64× the raw baseline).

Where it is on (:func:`share`, the worker processes of a multi-worker ``serve``), a process's
leader whose lane has writes queued behind it first takes a transaction-scoped advisory lock of
its type and kind (``BEGIN; SELECT pg_advisory_xact_lock(...)``, one round trip, waiting while
another process's statement holds it), and only then takes the members queued, which have kept
growing meanwhile; the statement runs in that transaction, and the COMMIT lets the next process
in. A lone write (nothing queued behind it: a quiet server) never waits for the gate and costs no
round trip more.

The lock is the transaction's, so no session state is left on a pooled connection (an open
transaction is rolled back when one is released). It only orders the statements: correctness stays
with the unique ``(type, id, version)`` constraint and the statements' own guards. A gate holder
may wait for others (row locks, the registry's lock) but nothing waits for the gate while holding
a lock (the gate is the first statement of its transaction), so it adds no deadlock. A wait cut by
the statement timeout writes the batch without the gate.

Measured (session 32, 2 cores, ``bench/crud.py --ops 2000 --rounds 2|3 --concurrency 16 --workers
2``, alternated with the tree before it): PostgreSQL's CPU per create 0.37-0.53 ms with the gate
(seven runs) against 0.51-0.62 (seven), the server's 0.43-0.64 against 0.56-0.71; the creates per
second the same within the noise (1,055-1,555 against 1,060-1,316), as the hand-over between two
processes' event loops costs the batch what the larger statement saves. One worker stays the
default on 2 cores (``app.cli.default_workers``): 0.32-0.40 ms of PostgreSQL CPU per create."""

from __future__ import annotations

import zlib

import asyncpg

_CLASS = 7_245_004
"""The first key of the gates' two-key advisory locks: apart from the commands' one-key locks and
from the job queue's (``7_245_003``, two keys)."""

_shared = [False]
_sql: dict[tuple[str, bool], str] = {}


def share(on: bool) -> None:
    """Whether this process shares the database's writes with other server processes (gates on)."""
    _shared[0] = on


def shared() -> bool:
    return _shared[0]


def gate_sql(lane: tuple[str, bool]) -> str:
    """``BEGIN`` and the lock of a lane (its resource type, and whether it writes creates)."""
    sql = _sql.get(lane)
    if sql is None:
        key = zlib.crc32(f"{lane[0]}/{'create' if lane[1] else 'update'}".encode()) & 0x7FFFFFFF
        sql = _sql[lane] = f"BEGIN; SELECT pg_advisory_xact_lock({_CLASS}, {key})"
    return sql


async def enter(conn: asyncpg.Connection, lane: tuple[str, bool]) -> bool:
    """Take the lane's gate when gates are on; whether it was taken (then :func:`leave` must follow)."""
    if not _shared[0]:
        return False
    try:
        await conn.execute(gate_sql(lane))
    except asyncpg.PostgresError:  # the statement timeout: the batch goes without the gate
        await conn.execute("ROLLBACK")
        return False
    return True


async def leave(conn: asyncpg.Connection) -> None:
    """End the gate's transaction: the statement's writes committed (after a statement error,
    PostgreSQL's COMMIT of the failed transaction rolls it back); nothing to do on a lost connection."""
    if not conn.is_closed():
        await conn.execute("COMMIT")
