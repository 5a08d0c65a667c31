"""The event log stores each resource as a zstd frame of a preset dictionary, and every reader (read,
vread, history, search, _include, the change feed, audit trails, export snapshots, replay) gives
back the JSON bytes exactly as served; rows stored uncompressed read the same; the dictionaries are
kept append-only in ``event_log_dictionary``; a frame of an unknown dictionary is a clear error."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import asyncpg
import httpx
import pytest
import zstandard

from app.db.migrations import migrate
from app.events import codec
from app.events.audit import read_trail
from app.events.feed import read_after
from app.events.latest import latest_before
from app.events.model import EventKind, RequestContext, VersionEvent
from app.events.snapshot import take_snapshot, versions_at
from app.events.store import append, read_version
from app.projections.rebuild import rebuild_type
from tests.helpers import new_id, patient


@pytest.fixture
def uncompressed() -> Iterator[None]:
    """New events of this process store their JSON as is (``FHIRLEDGER_LOG_COMPRESSION=none``)."""
    codec.set_compression(False)
    try:
        yield
    finally:
        codec.set_compression(None)


async def _stored(pool: asyncpg.Pool | asyncpg.Connection, resource_type: str, rid: str, version: int = 1) -> bytes:
    return await pool.fetchval(
        "SELECT resource FROM event_log WHERE resource_type = $1 AND resource_id = $2 AND version = $3",
        resource_type,
        rid,
        version,
    )


async def _patient_and_observation(client: httpx.AsyncClient, family: str) -> tuple[str, str]:
    pid = new_id()
    assert (await client.put(f"/fhir/Patient/{pid}", json=patient(pid, family=family))).status_code == 201
    obs = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}], "text": "Heart rate"},
        "subject": {"reference": f"Patient/{pid}"},
        "valueQuantity": {"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"},
    }
    r = await client.post("/fhir/Observation", json=obs)
    assert r.status_code == 201
    return pid, r.json()["id"]


async def _served_everywhere(client: httpx.AsyncClient, pool: asyncpg.Pool, pid: str, oid: str) -> None:
    """Every reader gives the stored JSON bytes of the patient and the observation."""
    pat = codec.decode(await _stored(pool, "Patient", pid))
    obs = codec.decode(await _stored(pool, "Observation", oid))
    assert pat.startswith(b'{"resourceType":"Patient"') and obs.startswith(b'{"resourceType":"Observation"')
    assert (await client.get(f"/fhir/Patient/{pid}")).content == pat
    assert (await client.get(f"/fhir/Observation/{oid}/_history/1")).content == obs
    assert pat in (await client.get(f"/fhir/Patient/{pid}/_history")).content
    found = await client.get(f"/fhir/Observation?subject=Patient/{pid}&_include=Observation:subject")
    assert obs in found.content and pat in found.content
    assert pat in (await client.get(f"/fhir/Patient?_id={pid}")).content
    assert pat in (await client.get(f"/fhir?_type=Patient&_id={pid}")).content
    assert (await read_version(pool, "Observation", oid, 1)).resource == obs
    assert [e.resource for e in await read_trail(pool, ("Patient", pid))] == [pat]
    assert obs in [e.resource for e in await read_after(pool, None, 100_000, "Observation")]
    async with pool.acquire() as conn:
        snapshot = await take_snapshot(conn)
        assert (await versions_at(conn, "Patient", [pid], snapshot.text))[pid].resource == pat
    latest = await latest_before(pool, "Observation", None, None, 100_000)
    assert obs in [row[4] for row in latest]


async def test_new_events_are_stored_compressed_and_served_as_json(client: httpx.AsyncClient, pool) -> None:
    pid, oid = await _patient_and_observation(client, "Zstd")
    stored = await _stored(pool, "Observation", oid)
    assert stored.startswith(codec.MAGIC), "a zstd frame"
    assert zstandard.get_frame_parameters(stored).dict_id == codec.DICTIONARY_ID
    assert len(stored) < len(codec.decode(stored)) / 2
    await _served_everywhere(client, pool, pid, oid)


async def test_uncompressed_rows_read_back_the_same(client: httpx.AsyncClient, pool, uncompressed) -> None:
    pid, oid = await _patient_and_observation(client, "Plain")
    stored = await _stored(pool, "Observation", oid)
    assert stored.startswith(b'{"resourceType":"Observation"'), "stored as JSON"
    codec.set_compression(None)  # later writes compress again; these rows stay as they are
    await _served_everywhere(client, pool, pid, oid)
    r = await client.put(f"/fhir/Patient/{pid}", json=patient(pid, family="Plainer"))
    assert r.status_code == 200
    assert (await _stored(pool, "Patient", pid, 2)).startswith(codec.MAGIC)
    assert (await _stored(pool, "Patient", pid, 1)).startswith(b"{")
    assert b"Plainer" in (await client.get(f"/fhir/Patient/{pid}")).content


async def test_replay_projects_both_forms(client: httpx.AsyncClient, pool, uncompressed) -> None:
    plain, _ = await _patient_and_observation(client, "Replayplain")
    codec.set_compression(None)
    packed, _ = await _patient_and_observation(client, "Replaypacked")
    await rebuild_type(pool, "Patient")
    for pid, family in ((plain, "Replayplain"), (packed, "Replaypacked")):
        found = (await client.get(f"/fhir/Patient?family={family}")).json()
        assert [e["resource"]["id"] for e in found["entry"]] == [pid]


async def test_the_dictionary_table_is_append_only(pool: asyncpg.Pool) -> None:
    stored = await pool.fetchval("SELECT data FROM event_log_dictionary WHERE id = $1", codec.DICTIONARY_ID)
    assert stored == codec.shipped()
    for sql in (
        "UPDATE event_log_dictionary SET data = '\\x00'::bytea",
        "DELETE FROM event_log_dictionary",
        "TRUNCATE event_log_dictionary",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await pool.execute(sql)
    assert await pool.fetchval("SELECT data FROM event_log_dictionary WHERE id = $1", codec.DICTIONARY_ID) == stored


def _frame_of_dictionary(dict_id: int, data: bytes) -> bytes:
    """A frame compressed with the shipped dictionary renumbered ``dict_id`` (its id is bytes 4-8)."""
    renumbered = codec.shipped()[:4] + dict_id.to_bytes(4, "little") + codec.shipped()[8:]
    d = zstandard.ZstdCompressionDict(renumbered, dict_type=zstandard.DICT_TYPE_FULLDICT)
    return zstandard.ZstdCompressor(dict_data=d, write_dict_id=True).compress(data)


@asynccontextmanager
async def _rolled_back(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """A connection in a transaction that is rolled back: the session's shared log keeps nothing."""
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            yield conn
        finally:
            await tx.rollback()


async def test_a_frame_of_an_unknown_dictionary_is_a_clear_error(pool: asyncpg.Pool) -> None:
    frame = _frame_of_dictionary(987_654, b'{"resourceType":"Basic","id":"unknown-dict"}')
    with pytest.raises(codec.UnknownDictionary, match="dictionary 987654"):
        codec.decode(frame)
    rid = new_id()
    async with _rolled_back(pool) as conn:
        await conn.execute(
            "INSERT INTO event_log (resource_type, resource_id, version, kind, resource, recorded_at, method, url)"
            " VALUES ('Basic', $1, 1, 'created', $2, now(), 'PUT', 'Basic/' || $1)",
            rid,
            frame,
        )
        with pytest.raises(codec.UnknownDictionary, match="event_log_dictionary"):
            await read_version(conn, "Basic", rid, 1)


async def test_migration_26_on_an_existing_database(pool: asyncpg.Pool, uncompressed) -> None:
    """A database from before migration 26 (its rows all JSON) gains the dictionary table and the
    shipped dictionary; its old rows read the same and new ones are compressed."""
    ctx = RequestContext("PUT", "Basic/m26")
    rid = new_id()
    body = b'{"resourceType":"Basic","id":"%s","meta":{"versionId":"1"},"code":{"text":"old"}}' % rid.encode()
    old = VersionEvent("Basic", rid, 1, EventKind.CREATED, body, datetime.now(UTC), ctx)
    new = VersionEvent("Basic", rid, 2, EventKind.UPDATED, body.replace(b'"1"', b'"2"'), datetime.now(UTC), ctx)
    async with _rolled_back(pool) as conn:
        await append(conn, [old])
        await conn.execute(
            "DROP TABLE event_log_dictionary; DROP FUNCTION event_log_dictionary_refuse_change();"
            " DELETE FROM schema_migrations WHERE version = 26"
        )
        codec.set_compression(None)
        assert await migrate(conn) == [26]
        assert await conn.fetchval("SELECT data FROM event_log_dictionary") == codec.shipped()
        await append(conn, [new])
        assert await _stored(conn, "Basic", rid) == body
        assert (await read_version(conn, "Basic", rid, 1)).resource == body
        assert (await _stored(conn, "Basic", rid, 2)).startswith(codec.MAGIC)
        assert (await read_version(conn, "Basic", rid, 2)).resource == new.resource
