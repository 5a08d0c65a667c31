"""With the gate on (the worker processes of ``serve --workers N``), a type's shared statements are in
flight one at a time across processes (app/projections/cross_process_gate.py): while another
process's statement holds the gate, the writes queued here wait and go together after it; a wait
cut by the statement timeout writes them without the gate; a failing statement still writes each
alone; no connection is left in a transaction."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from app.projections import cross_process_gate, custom_params, write_batches
from app.projections.custom_params import VERSION_LOCK
from app.projections.write_batches import append_shared
from tests.helpers import new_id
from tests.projections.test_write_batches import _event, _stored

_GATE_LOCK = "SELECT pg_advisory_lock(7245004, {key})"
_GATE_UNLOCK = "SELECT pg_advisory_unlock(7245004, {key})"


def _patient_creates_key() -> int:
    """The second key of the Patient creates' gate, as the gate's own SQL names it."""
    return int(cross_process_gate.gate_sql(("Patient", True)).rsplit(", ", 1)[1].rstrip(")"))


@pytest.fixture
async def conns(pool: asyncpg.Pool) -> AsyncIterator[list[asyncpg.Connection]]:
    held = [await pool.acquire() for _ in range(8)]
    await custom_params.sync(held[0])
    cross_process_gate.share(True)
    write_batches.record_sizes(True)
    try:
        yield held
    finally:
        write_batches.record_sizes(False)
        cross_process_gate.share(False)
        for conn in held:
            await pool.release(conn)


async def _count(pool: asyncpg.Pool, events: list) -> int:
    return await pool.fetchval(
        "SELECT count(*) FROM event_log WHERE resource_id = ANY($1)", [e.resource_id for e in events]
    )


async def _leader_at_the_gate(
    pool: asyncpg.Pool, conns: list[asyncpg.Connection], events: list, gate: asyncpg.Connection
) -> list[asyncio.Task]:
    """A first create written while creates 1-4 queue behind it; when it ends, create 1 leads them
    and meets the gate, which ``gate`` holds (another process's statement in flight)."""
    await gate.execute(_GATE_LOCK.format(key=_patient_creates_key()))
    locker = await pool.acquire()
    await locker.execute("SELECT pg_advisory_lock($1)", VERSION_LOCK)
    tasks = [asyncio.create_task(append_shared(conns[0], events[0], None))]
    await asyncio.sleep(0.1)  # its statement waits for the registry lock: the next ones queue
    tasks += [asyncio.create_task(append_shared(c, e, None)) for c, e in zip(conns[1:5], events[1:5], strict=True)]
    await asyncio.sleep(0.1)
    await locker.execute("SELECT pg_advisory_unlock($1)", VERSION_LOCK)
    await pool.release(locker)
    await asyncio.wait_for(asyncio.shield(tasks[0]), 10)
    await asyncio.sleep(0.2)  # create 1 leads, at the gate
    return tasks


async def test_writes_queued_while_another_process_holds_the_gate_go_in_one_statement_after_it(
    pool: asyncpg.Pool, conns: list[asyncpg.Connection]
) -> None:
    events = [_event(i) for i in range(8)]
    gate = await pool.acquire()
    try:
        tasks = await _leader_at_the_gate(pool, conns, events, gate)
        tasks += [asyncio.create_task(append_shared(c, e, None)) for c, e in zip(conns[5:], events[5:], strict=True)]
        await asyncio.sleep(0.3)
        assert await _count(pool, events) == 1  # nothing more while the gate is held elsewhere
        assert not any(t.done() for t in tasks[1:])
    finally:
        await gate.execute(_GATE_UNLOCK.format(key=_patient_creates_key()))
        await pool.release(gate)
    positions = await asyncio.wait_for(asyncio.gather(*tasks), 30)
    assert write_batches.sizes == [1, 7]  # the first alone, then all that queued, the late ones too
    assert await _stored(pool, events) == {e.resource_id: p for e, p in zip(events, positions, strict=True)}
    assert not any(c.is_in_transaction() for c in conns)


async def test_a_gate_wait_cut_by_the_statement_timeout_writes_the_batch_without_it(
    pool: asyncpg.Pool, conns: list[asyncpg.Connection]
) -> None:
    events = [_event(i) for i in range(5)]
    gate = await pool.acquire()
    timeout = await conns[1].fetchval("SHOW statement_timeout")
    await conns[1].execute("SET statement_timeout = '300ms'")  # the connection of the leader at the gate
    try:
        tasks = await _leader_at_the_gate(pool, conns, events, gate)
        positions = await asyncio.wait_for(asyncio.gather(*tasks), 10)  # the gate is still held
        assert await _count(pool, events) == 5
    finally:
        await gate.execute(_GATE_UNLOCK.format(key=_patient_creates_key()))
        await pool.release(gate)
        await conns[1].execute(f"SET statement_timeout = '{timeout}'")
    assert write_batches.sizes == [1, 4]
    assert await _stored(pool, events) == {e.resource_id: p for e, p in zip(events, positions, strict=True)}
    assert not any(c.is_in_transaction() for c in conns)


async def test_a_gated_batch_whose_statement_fails_writes_each_create_alone(
    pool: asyncpg.Pool, conns: list[asyncpg.Connection], log_count
) -> None:
    poisoned = "poison-" + new_id()[:20]
    events = [_event(0), _event(1), _event(2, poisoned), _event(3), _event(4)]
    await pool.execute(
        f"ALTER TABLE event_log ADD CONSTRAINT test_gate_poison CHECK (resource_id <> '{poisoned}') NOT VALID"
    )
    gate = await pool.acquire()
    try:
        before = await log_count()
        tasks = await _leader_at_the_gate(pool, conns, events, gate)
        await gate.execute(_GATE_UNLOCK.format(key=_patient_creates_key()))
        outcomes = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)
    finally:
        await pool.release(gate)
        await pool.execute("ALTER TABLE event_log DROP CONSTRAINT test_gate_poison")
    assert isinstance(outcomes[2], asyncpg.CheckViolationError)  # its own statement refused it too
    assert all(isinstance(o, int) for i, o in enumerate(outcomes) if i != 2)
    assert await log_count() == before + 4
    assert not any(c.is_in_transaction() for c in conns)


async def test_a_lone_write_never_waits_for_the_gate(pool: asyncpg.Pool, conns: list[asyncpg.Connection]) -> None:
    gate = await pool.acquire()
    await gate.execute(_GATE_LOCK.format(key=_patient_creates_key()))
    try:
        event = _event(0)
        position = await asyncio.wait_for(append_shared(conns[0], event, None), 5)  # nothing queued behind it
        assert await _stored(pool, [event]) == {event.resource_id: position}
    finally:
        await gate.execute(_GATE_UNLOCK.format(key=_patient_creates_key()))
        await pool.release(gate)
