"""The event log is append-only: the database refuses UPDATE, DELETE and TRUNCATE."""

from __future__ import annotations

import asyncpg
import pytest

from app.commands.create import create
from app.commands.unit_of_work import run_write
from app.events.codec import decode
from app.events.model import RequestContext
from app.events.store import read_version

CTX = RequestContext("POST", "Patient")


async def _one_event(pool: asyncpg.Pool) -> str:
    out = await run_write(pool, CTX, lambda tx: create(tx, "Patient", {"resourceType": "Patient"}))
    return out.resource_id


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE event_log SET resource_id = 'x' WHERE resource_id = $1",
        "DELETE FROM event_log WHERE resource_id = $1",
    ],
)
async def test_update_and_delete_are_refused(pool: asyncpg.Pool, sql: str) -> None:
    rid = await _one_event(pool)
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await pool.execute(sql, rid)
    event = await read_version(pool, "Patient", rid, 1)
    assert event is not None and event.resource_id == rid


async def test_truncate_is_refused(pool: asyncpg.Pool) -> None:
    await _one_event(pool)
    before = await pool.fetchval("SELECT count(*) FROM event_log")
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await pool.execute("TRUNCATE event_log")
    assert await pool.fetchval("SELECT count(*) FROM event_log") == before


async def test_event_records_envelope_and_transaction(pool: asyncpg.Pool) -> None:
    rid = await _one_event(pool)
    row = await pool.fetchrow(
        "SELECT kind, version, method, url, tx_id, recorded_at, resource FROM event_log WHERE resource_id = $1", rid
    )
    assert row["kind"] == "created" and row["version"] == 1
    assert row["method"] == "POST" and row["url"] == "Patient"
    assert row["tx_id"] is not None
    assert b'"lastUpdated"' in decode(row["resource"])


async def test_deletion_event_must_not_carry_a_resource(pool: asyncpg.Pool) -> None:
    with pytest.raises(asyncpg.CheckViolationError):
        await pool.execute(
            "INSERT INTO event_log (resource_type, resource_id, version, kind, resource, recorded_at, method, url)"
            " VALUES ('Patient', 'chk', 1, 'deleted', '\\x7b7d'::bytea, now(), 'DELETE', 'Patient/chk')"
        )
