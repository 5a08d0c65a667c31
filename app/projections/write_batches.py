"""Creates and updates of one resource type that arrive while another is being written go to the
database together: ONE statement appends and projects them all (:func:`append_and_project_many`).

Most of a write's PostgreSQL CPU is the statement's own, whatever its rows: planning-cache checks,
the executor's start over a dozen tables and their indexes, the commit and its WAL flush (a Patient
create, ``bench/statement_cpu.py``: about 1.1 ms alone, 0.6 ms each in statements of four, 0.4 ms
in statements of eight; an update changing a phone number 0.66, 0.50 and 0.29 ms). So a write
waits for nobody: the first write of a type is written at once, alone (the leader); the writes
that arrive meanwhile queue, and when the statement ends the first of them leads the next one: it
takes those queued when its statement starts (up to :data:`MAX_BATCH`, each resource once) and
writes them on its own connection. Under one client nothing ever queues; under many, the batches
grow with the load. One statement in flight per type, kind (creates; updates) and process, or
across the server's worker processes, whose leaders with writes queued behind them first take the
type's gate (:mod:`app.projections.cross_process_gate`): ``bench/crud.py --concurrency 64`` (2
workers) made 1,047 creates/s one statement each, 1,517/s so (PostgreSQL 0.93 → 0.40 ms per
create), 1,352/s with two statements in flight (smaller batches: 0.53 ms); creates and updates in
one lane made the CRUD mix slower (about 1,165 requests/s against 1,357 with creates alone
batched), a lane each faster (1,204-1,399 against 1,161-1,269, four pairs).

Only what the one statement writes without a transaction shares one: a first version, or an
update whose head the write read ahead (its previous bytes: only the changed parameters' rows are
replaced), of at most :data:`LARGEST` bytes (a large one is written on its own, so the small writes
queued behind it never wait for its longer statement).

Each member gets what its own statement would have given: its position, or None when its event was
not appended (then it takes the long way, as after :func:`append_and_project`). A statement error
(PostgreSQL's: the batch wrote nothing, being one statement; or an argument that could not be
encoded, so nothing was sent) sends every member to write alone, so one bad write costs the others
only a retry; a lost connection fails every member, as it fails a statement of one. A leader whose
request is cancelled still waits for the statement on its connection to end (the connection is not
returned to the pool mid-statement), then hands over as usual; a queued write cancelled before its
turn is never written.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

import asyncpg

from app.events.model import VersionEvent
from app.projections import cross_process_gate
from app.projections.one_statement import append_and_project, append_and_project_many, shareable

MAX_BATCH = 32
"""Writes per statement at most (a statement's arrays grow with it; 8 already took most of the gain)."""


class _Alone:
    """The outcome telling a member to write its event alone (the batch's statement failed)."""


ALONE = _Alone()


@dataclass
class _Member:
    event: VersionEvent
    previous: bytes | None  # the bytes of the version it follows, read by the write
    future: asyncio.Future | None  # None for the member that leads


class _Lead:
    """The outcome telling a queued member that it leads the next statement."""


LEAD = _Lead()


@dataclass
class _Lane:
    key: tuple[asyncio.AbstractEventLoop, str, bool]  # its place in ``_lanes``, left when idle
    busy: bool = False  # a statement is in flight
    waiting: deque[_Member] = field(default_factory=deque)


_lanes: dict[tuple[asyncio.AbstractEventLoop, str, bool], _Lane] = {}
sizes: list[int] = []
"""The size of each batch written, when a test or bench asks for them (:func:`record_sizes`)."""
_recording = [False]


def record_sizes(on: bool) -> None:
    sizes.clear()
    _recording[0] = on


LARGEST = 64 * 1024
"""Bytes of JSON at most of a write that shares statements: a large one (a Binary, a document) is
written on its own, so the small writes queued behind it never wait for its longer statement."""


def batchable(event: VersionEvent, previous: bytes | None) -> bool:
    """Whether ``event`` may share a statement: a first version, or an update whose previous bytes
    the write read (:func:`shareable`), not large."""
    return shareable(event, previous) and event.resource is not None and len(event.resource) <= LARGEST


async def append_shared(conn: asyncpg.Connection, event: VersionEvent, previous: bytes | None) -> int | None:
    """:func:`append_and_project` of a :func:`batchable` write outside any transaction, sharing the
    statement with the writes of the type that queued meanwhile (see the module's doc)."""
    loop = asyncio.get_running_loop()
    key = (loop, event.resource_type, event.version == 1)  # creates and updates: a lane each
    lane = _lanes.get(key)
    if lane is None:
        lane = _lanes[key] = _Lane(key)
    if not lane.busy:
        lane.busy = True
    else:
        me = _Member(event, previous, loop.create_future())
        lane.waiting.append(me)
        try:
            outcome = await me.future  # type: ignore[misc]
        except asyncio.CancelledError:
            _give_up_lead(lane, me)
            raise
        if outcome is not LEAD:
            return await _own(conn, event, previous, outcome)
    task = asyncio.ensure_future(_write(conn, lane, _Member(event, previous, None)))
    try:
        outcome = await asyncio.shield(task)
    except asyncio.CancelledError:
        await _until_done(task)  # the statement runs on this request's connection: keep it until then
        raise
    return await _own(conn, event, previous, outcome)


async def _own(
    conn: asyncpg.Connection, event: VersionEvent, previous: bytes | None, outcome: int | None | _Alone
) -> int | None:
    if outcome is ALONE:
        return await append_and_project(conn, event, previous)
    return outcome  # type: ignore[return-value]


async def _until_done(task: asyncio.Future) -> None:
    while not task.done():
        try:
            await asyncio.wait([task])
        except asyncio.CancelledError:
            continue


def _give_up_lead(lane: _Lane, me: _Member) -> None:
    """A queued member cancelled: when the lead had just come to it, it goes to the next."""
    future = me.future
    assert future is not None
    if future.done() and not future.cancelled() and future.result() is LEAD:
        _hand_over(lane)


async def _write(conn: asyncpg.Connection, lane: _Lane, leader: _Member) -> int | None | _Alone:
    """Take the members queued now (after the gate, when shared), write them with the leader, hand
    the lane over, give each follower its outcome; the leader's own."""
    members = [leader]
    try:
        gated = bool(lane.waiting) and await cross_process_gate.enter(conn, lane.key[1:])
        members += _take(lane, leader.event.resource_id)
        try:
            outcomes = await _statement(conn, members)
        finally:
            if gated:
                await cross_process_gate.leave(conn)
    except BaseException as error:  # the connection failed, or the statement was cancelled
        _hand_over(lane)
        for member in members[1:]:
            if member.future is not None and not member.future.done():
                member.future.set_exception(error)
        raise
    _hand_over(lane)
    if _recording[0]:
        sizes.append(len(members))
    for member, outcome in zip(members[1:], outcomes[1:], strict=True):
        if member.future is not None and not member.future.done():
            member.future.set_result(outcome)
    return outcomes[0]


async def _statement(conn: asyncpg.Connection, members: list[_Member]) -> list[int | None | _Alone]:
    if len(members) == 1:
        return [await append_and_project(conn, members[0].event, members[0].previous)]
    try:
        return list(await append_and_project_many(conn, [(m.event, m.previous) for m in members]))
    except (asyncpg.PostgresError, ValueError, TypeError):  # the server's refusal, or an argument
        # asyncpg could not encode: nothing was written, each member tries alone
        return [ALONE] * len(members)


def _take(lane: _Lane, leader_id: str) -> list[_Member]:
    """The queued members still waiting (each id once, the leader's not again), up to the batch's
    size; the others stay queued, in order."""
    members: list[_Member] = []
    taken = {leader_id}
    skipped: list[_Member] = []
    while lane.waiting and len(members) < MAX_BATCH - 1:
        member = lane.waiting.popleft()
        if member.future is None or member.future.done():
            continue
        if member.event.resource_id in taken:  # one statement writes an id once: the next batch
            skipped.append(member)
            continue
        taken.add(member.event.resource_id)
        members.append(member)
    lane.waiting.extendleft(reversed(skipped))
    return members


def _hand_over(lane: _Lane) -> None:
    """The lane to the first queued member still waiting (it takes those queued behind it when its
    turn comes); else idle."""
    while lane.waiting:
        member = lane.waiting.popleft()
        if member.future is not None and not member.future.done():
            member.future.set_result(LEAD)
            return
    lane.busy = False
    _lanes.pop(lane.key, None)
