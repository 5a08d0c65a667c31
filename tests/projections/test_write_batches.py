"""Creates and updates that arrive together share one statement (app/projections/write_batches.py): each gets
its own position, the rows written are those one statement per create writes (and a rebuild from
the log gives), a batch whose statement fails writes each create alone, and neither a leader's
cancellation nor a queued create's loses or duplicates anything."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import httpx
import pytest

from app.commands.create import decide_create
from app.commands.update import decide_update
from app.events.model import RequestContext, VersionEvent
from app.fhirtime import now_millis
from app.projections import custom_params, write_batches
from app.projections.current_state import Head, current_table
from app.projections.custom_params import VERSION_LOCK
from app.projections.one_statement import append_and_project, append_and_project_many
from app.projections.rebuild import rebuild_type
from app.projections.search_index import COLUMNS, KINDS, search_table
from app.projections.write_batches import append_shared
from tests.helpers import new_id

_CONTEXT = RequestContext("POST", "Patient")


def _patient(i: int) -> dict:
    address = {"address": [{"city": "Leeds", "postalCode": f"LS{i}"}]} if i % 2 else {}
    return {
        "resourceType": "Patient",
        "identifier": [{"system": "http://hospital.example/mrn", "value": f"b-{i}"}],
        "name": [{"family": f"Batch{i % 3}", "given": ["Ann", f"G{i}"]}],
        "telecom": [{"system": "phone", "value": f"555-{i}"}],
        "birthDate": f"19{50 + i % 40}-0{1 + i % 9}-1{i % 10}",
        **address,
    }


def _event(i: int, rid: str | None = None) -> VersionEvent:
    return decide_create("Patient", rid or new_id(), _patient(i), now_millis(), _CONTEXT)


async def _rows(pool: asyncpg.Pool, rid: str, resource_type: str = "Patient") -> list[str]:
    """A resource's search rows (their values, not the key) and its current-state row."""
    out = []
    for kind in KINDS:
        values = ", ".join(["s.param", *(f"s.{c}" for c, _ in COLUMNS[kind])])
        sql = (
            f"SELECT ROW({values})::text FROM {search_table(resource_type, kind)} s"
            f" JOIN {current_table(resource_type)} c ON c.key = s.key WHERE c.id = $1"
        )
        out += [f"{kind}:{r[0]}" for r in await pool.fetch(sql, rid)]
    current = await pool.fetchrow(
        "SELECT c.version, c.deleted, c.key = min(e.position) AS keyed, c.position = max(e.position) AS placed"
        f" FROM {current_table(resource_type)} c JOIN event_log e ON e.resource_type = $2 AND e.resource_id = c.id"
        " WHERE c.id = $1 GROUP BY c.version, c.deleted, c.key, c.position",
        rid,
        resource_type,
    )
    return sorted(out) + [f"current:{tuple(current)}"]


async def _stored(pool: asyncpg.Pool, events: list[VersionEvent]) -> dict[str, int]:
    """Each event's resource id to the position the log holds for it."""
    rows = await pool.fetch(
        "SELECT resource_id, position FROM event_log WHERE resource_id = ANY($1)", [e.resource_id for e in events]
    )
    return {r[0]: r[1] for r in rows}


@pytest.fixture
async def conns(pool: asyncpg.Pool) -> AsyncIterator[list[asyncpg.Connection]]:
    """Five connections (one per concurrent create), the registry loaded."""
    held = [await pool.acquire() for _ in range(5)]
    await custom_params.sync(held[0])
    try:
        yield held
    finally:
        for conn in held:
            await pool.release(conn)


async def _queued(
    pool: asyncpg.Pool,
    conns: list[asyncpg.Connection],
    events: list[VersionEvent],
    meanwhile: Callable[[list[asyncio.Task]], Awaitable[None]] | None = None,
) -> list:
    """Create ``events``, one connection each, while another connection holds the registry lock
    exclusively: the first create's statement waits for it, and the others, started then, queue;
    ``meanwhile`` runs before the lock is let go. Returns each create's outcome (or exception)."""
    locker = await pool.acquire()
    await locker.execute("SELECT pg_advisory_lock($1)", VERSION_LOCK)
    tasks = [asyncio.create_task(append_shared(conns[0], events[0], None))]
    await asyncio.sleep(0.1)  # its statement is in flight (waiting for the lock): the others queue
    tasks += [asyncio.create_task(append_shared(c, e, None)) for c, e in zip(conns[1:], events[1:], strict=False)]
    try:
        await asyncio.sleep(0.3)
        assert not any(t.done() for t in tasks)
        if meanwhile is not None:
            await meanwhile(tasks)
    finally:
        await locker.execute("SELECT pg_advisory_unlock($1)", VERSION_LOCK)
        await pool.release(locker)
    return await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)


async def test_a_statement_of_many_creates_writes_what_one_statement_each_writes(
    pool: asyncpg.Pool, conns: list[asyncpg.Connection]
) -> None:
    together = [_event(i) for i in range(6)]
    alone = [_event(i) for i in range(6)]
    positions = await append_and_project_many(conns[0], [(e, None) for e in together])
    assert all(isinstance(p, int) for p in positions) and len(set(positions)) == 6
    for e in alone:
        assert await append_and_project(conns[0], e) is not None
    for a, b in zip(together, alone, strict=True):
        rows = await _rows(pool, a.resource_id)
        assert rows == await _rows(pool, b.resource_id)
        assert "current:(1, False, True, True)" in rows and any(r.startswith("string:") for r in rows)
    assert await _stored(pool, together) == {e.resource_id: p for e, p in zip(together, positions, strict=True)}


async def test_an_id_that_has_a_version_is_not_appended_and_the_others_are(
    pool: asyncpg.Pool, conns: list[asyncpg.Connection], log_count
) -> None:
    taken = _event(0)
    assert await append_and_project(conns[0], taken) is not None
    events = [_event(1), _event(2, taken.resource_id), _event(3)]
    before = await log_count()
    positions = await append_and_project_many(conns[0], [(e, None) for e in events])
    assert positions[1] is None and positions[0] is not None and positions[2] is not None
    assert await log_count() == before + 2


async def test_creates_queued_behind_a_statement_go_together_and_each_gets_its_position(
    pool: asyncpg.Pool, conns: list[asyncpg.Connection]
) -> None:
    events = [_event(i) for i in range(5)]
    write_batches.record_sizes(True)
    try:
        positions = await _queued(pool, conns, events)
        assert write_batches.sizes == [1, 4]  # the leader alone, then the four queued behind it
    finally:
        write_batches.record_sizes(False)
    assert await _stored(pool, events) == {e.resource_id: p for e, p in zip(events, positions, strict=True)}


async def test_a_batch_whose_statement_fails_writes_each_create_alone(
    pool: asyncpg.Pool, conns: list[asyncpg.Connection], log_count
) -> None:
    poisoned = "poison-" + new_id()[:20]
    events = [_event(0), _event(1), _event(2, poisoned), _event(3), _event(4)]
    await pool.execute(
        f"ALTER TABLE event_log ADD CONSTRAINT test_poison CHECK (resource_id <> '{poisoned}') NOT VALID"
    )
    try:
        before = await log_count()
        outcomes = await _queued(pool, conns, events)
    finally:
        await pool.execute("ALTER TABLE event_log DROP CONSTRAINT test_poison")
    assert isinstance(outcomes[2], asyncpg.CheckViolationError)  # its own statement refused it too
    assert all(isinstance(o, int) for i, o in enumerate(outcomes) if i != 2)
    assert await log_count() == before + 4
    assert await pool.fetchval("SELECT count(*) FROM event_log WHERE resource_id = $1", poisoned) == 0


async def test_a_cancelled_leader_keeps_its_connection_until_its_statement_ends_and_hands_over(
    pool: asyncpg.Pool, conns: list[asyncpg.Connection]
) -> None:
    events = [_event(i) for i in range(3)]
    running: list[bool] = []

    async def cancel_the_leader(tasks: list[asyncio.Task]) -> None:
        tasks[0].cancel()
        await asyncio.sleep(0.2)
        running.append(not tasks[0].done())  # its statement still runs on its connection (waiting on the lock)

    outcomes = await _queued(pool, conns, events, cancel_the_leader)
    assert running == [True]
    assert isinstance(outcomes[0], asyncio.CancelledError)
    assert all(isinstance(o, int) for o in outcomes[1:])
    appended = await pool.fetchval(
        "SELECT count(*) FROM event_log WHERE resource_id = ANY($1)", [e.resource_id for e in events]
    )
    assert appended == 3  # the leader's statement ended (written); the followers were written after it
    assert not await conns[0].fetchval("SELECT pg_backend_pid() IS NULL")  # the connection is usable


async def test_a_queued_create_cancelled_before_its_turn_is_never_written(
    pool: asyncpg.Pool, conns: list[asyncpg.Connection]
) -> None:
    events = [_event(i) for i in range(4)]

    async def cancel_the_first_queued(tasks: list[asyncio.Task]) -> None:
        tasks[1].cancel()  # the lead would go to it: it goes to the next

    outcomes = await _queued(pool, conns, events, cancel_the_first_queued)
    assert isinstance(outcomes[1], asyncio.CancelledError)
    assert all(isinstance(o, int) for i, o in enumerate(outcomes) if i != 1)
    assert await pool.fetchval("SELECT count(*) FROM event_log WHERE resource_id = $1", events[1].resource_id) == 0


async def test_concurrent_creates_over_http_are_each_stored_once_as_sent_and_as_a_rebuild_gives(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    write_batches.record_sizes(True)
    try:
        responses = await asyncio.gather(*(client.post("/fhir/Patient", json=_patient(i)) for i in range(24)))
        sizes = list(write_batches.sizes)
    finally:
        write_batches.record_sizes(False)
    assert [r.status_code for r in responses] == [201] * 24
    ids = [r.json()["id"] for r in responses]
    assert len(set(ids)) == 24 and sum(sizes) == 24 and max(sizes) > 1
    for i, rid in enumerate(ids):
        read = (await client.get(f"/fhir/Patient/{rid}")).json()
        assert read["identifier"] == _patient(i)["identifier"] and read["meta"]["versionId"] == "1"
    found = (await client.get("/fhir/Patient?identifier=http://hospital.example/mrn|b-7&_count=100")).json()
    assert rid_of(found) >= {ids[7]}
    rows = {rid: await _rows(pool, rid) for rid in ids}
    await rebuild_type(pool, "Patient")
    assert {rid: await _rows(pool, rid) for rid in ids} == rows


def rid_of(bundle: dict) -> set[str]:
    return {e["resource"]["id"] for e in bundle.get("entry", [])}


def test_only_small_first_versions_share_statements() -> None:
    small = _event(1)
    large = decide_create(
        "Patient", new_id(), {**_patient(2), "name": [{"text": "x" * 70_000}]}, now_millis(), _CONTEXT
    )
    assert write_batches.batchable(small, None)
    assert not write_batches.batchable(large, None)  # written on its own: nobody waits for it
    assert not write_batches.batchable(small, b"{}")  # a version that follows another


async def test_a_large_create_is_written_beside_a_statement_in_flight_not_behind_it(
    pool: asyncpg.Pool, conns: list[asyncpg.Connection], client: httpx.AsyncClient
) -> None:
    write_batches.record_sizes(True)
    try:
        small = [_event(i) for i in range(3)]
        large = {**_patient(9), "name": [{"text": "y" * 70_000}]}
        posted: list[httpx.Response] = []

        async def post_large(tasks: list[asyncio.Task]) -> None:
            posted.append(await client.post("/fhir/Patient", json=large))  # not queued behind the blocked lane

        locker = await pool.acquire()
        await locker.execute("SELECT pg_advisory_lock($1)", VERSION_LOCK)
        tasks = [asyncio.create_task(append_shared(c, e, None)) for c, e in zip(conns, small, strict=False)]
        try:
            await asyncio.sleep(0.3)
            large_post = asyncio.create_task(post_large(tasks))
            await asyncio.sleep(0.3)
            assert not large_post.done()  # it waits for the lock itself, as any write does
        finally:
            await locker.execute("SELECT pg_advisory_unlock($1)", VERSION_LOCK)
            await pool.release(locker)
        await asyncio.wait_for(asyncio.gather(large_post, *tasks), 30)
        assert posted[0].status_code == 201
        assert sum(write_batches.sizes) == 3  # the small ones (together: they came at once); the large in none
    finally:
        write_batches.record_sizes(False)


def _changed(event: VersionEvent, i: int) -> VersionEvent:
    """An update of a created Patient: a new phone number, a name moved, or nothing changed."""
    body = {**_patient(i), "id": event.resource_id}
    if i % 3 == 0:
        body["telecom"] = [{"system": "phone", "value": f"777-{i}"}]
    elif i % 3 == 1:
        body["name"] = [{"family": "Moved", "given": [f"G{i}"]}]
    head = Head(1, False, event.recorded_at, event.resource)
    return decide_update(head, "Patient", event.resource_id, body, None, now_millis(), RequestContext("PUT", "x"))


async def test_a_statement_of_many_updates_writes_what_one_statement_each_writes(
    pool: asyncpg.Pool, conns: list[asyncpg.Connection]
) -> None:
    firsts = [_event(i) for i in range(6)]
    twins = [_event(i) for i in range(6)]
    for e in firsts + twins:
        assert await append_and_project(conns[0], e) is not None
    updates = [(_changed(e, i), e.resource) for i, e in enumerate(firsts)]
    twin_updates = [(_changed(e, i), e.resource) for i, e in enumerate(twins)]
    new = [_event(10), _event(11)]  # creates in the same statement as the updates
    positions = await append_and_project_many(conns[0], [*updates, *((e, None) for e in new)])
    assert all(isinstance(p, int) for p in positions) and len(set(positions)) == 8
    for event, previous in twin_updates:
        assert await append_and_project(conns[0], event, previous) is not None
    for (a, _), (b, _) in zip(updates, twin_updates, strict=True):
        rows = await _rows(pool, a.resource_id)
        assert rows == await _rows(pool, b.resource_id)
        assert "current:(2, False, True, True)" in rows  # version 2, keyed by its first event still
    assert any("777-0" in r for r in await _rows(pool, updates[0][0].resource_id))
    assert not any("Batch1" in r for r in await _rows(pool, updates[1][0].resource_id))  # its old name rows went


async def test_an_update_whose_head_moved_is_not_appended_and_the_others_are(
    pool: asyncpg.Pool, conns: list[asyncpg.Connection], log_count
) -> None:
    created = [_event(i) for i in range(3)]
    for e in created:
        assert await append_and_project(conns[0], e) is not None
    updates = [(_changed(e, i), e.resource) for i, e in enumerate(created)]
    assert await append_and_project(conns[0], *updates[1]) is not None  # another writer got there first
    before = await log_count()
    rows_before = await _rows(pool, created[1].resource_id)
    positions = await append_and_project_many(conns[0], updates)
    assert positions[1] is None and positions[0] is not None and positions[2] is not None
    assert await log_count() == before + 2
    assert await _rows(pool, created[1].resource_id) == rows_before


async def test_concurrent_updates_over_http_are_each_stored_once_and_as_a_rebuild_gives(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    created = [(await client.post("/fhir/Patient", json=_patient(i))).json()["id"] for i in range(24)]
    bodies = [{**_patient(i + 1), "id": rid} for i, rid in enumerate(created)]
    write_batches.record_sizes(True)
    try:
        responses = await asyncio.gather(*(client.put(f"/fhir/Patient/{b['id']}", json=b) for b in bodies))
        sizes = list(write_batches.sizes)
    finally:
        write_batches.record_sizes(False)
    assert [r.status_code for r in responses] == [200] * 24
    assert all(r.json()["meta"]["versionId"] == "2" for r in responses)
    assert sum(sizes) == 24 and max(sizes) > 1
    for body in bodies:
        read = (await client.get(f"/fhir/Patient/{body['id']}")).json()
        assert read["identifier"] == body["identifier"] and read["meta"]["versionId"] == "2"
    found = (await client.get("/fhir/Patient?phone=555-5&_count=100")).json()
    assert rid_of(found) >= {created[4]}
    rows = {rid: await _rows(pool, rid) for rid in created}
    await rebuild_type(pool, "Patient")
    assert {rid: await _rows(pool, rid) for rid in created} == rows


async def test_an_update_does_not_queue_behind_a_create_in_flight(
    pool: asyncpg.Pool, conns: list[asyncpg.Connection]
) -> None:
    created = _event(0)
    assert await append_and_project(conns[0], created) is not None
    update = _changed(created, 0)
    waiting: list[int] = []

    async def count_waiting(tasks: list[asyncio.Task]) -> None:
        waiting.append(
            await pool.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND wait_event = 'advisory'"
            )
        )

    writes = [_event(1), update]
    locker = await pool.acquire()
    await locker.execute("SELECT pg_advisory_lock($1)", VERSION_LOCK)
    tasks = [
        asyncio.create_task(append_shared(conns[1], writes[0], None)),
        asyncio.create_task(append_shared(conns[2], update, created.resource)),
    ]
    try:
        await asyncio.sleep(0.3)
        await count_waiting(tasks)
    finally:
        await locker.execute("SELECT pg_advisory_unlock($1)", VERSION_LOCK)
        await pool.release(locker)
    outcomes = await asyncio.wait_for(asyncio.gather(*tasks), 30)
    assert waiting == [2]  # both statements sent: creates and updates have a lane each
    assert all(isinstance(o, int) for o in outcomes)
