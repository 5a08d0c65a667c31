"""The write commands at the command level: pure decisions and one-transaction writes."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import orjson
import pytest

from app.commands.create import create
from app.commands.delete import decide_delete, delete
from app.commands.result import WriteStatus
from app.commands.unit_of_work import run_write
from app.commands.update import decide_update, update
from app.errors import FhirError
from app.events.codec import decode
from app.events.model import EventKind, RequestContext
from app.projections.current_state import Head, read_head
from tests.helpers import new_id, patient

CTX = RequestContext("PUT", "Patient/x")
NOW = datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=UTC)


def test_decide_update_from_nothing_is_version_1_created() -> None:
    event = decide_update(None, "Patient", "p", patient("p"), None, NOW, CTX)
    assert (event.version, event.kind) == (1, EventKind.CREATED)
    body = orjson.loads(event.resource)
    assert body["meta"] == {"versionId": "1", "lastUpdated": "2026-01-02T03:04:05.006Z"}


def test_decide_update_after_delete_is_a_re_creation() -> None:
    head = Head(4, True, NOW, None)
    event = decide_update(head, "Patient", "p", patient("p"), None, NOW, CTX)
    assert (event.version, event.kind) == (5, EventKind.CREATED)


def test_decide_update_with_wrong_if_match_refuses() -> None:
    with pytest.raises(FhirError) as err:
        decide_update(Head(2, False, NOW, b"{}"), "Patient", "p", patient("p"), 1, NOW, CTX)
    assert err.value.status == 412


def test_decide_delete_of_deleted_or_absent_is_nothing() -> None:
    assert decide_delete(None, "Patient", "p", None, NOW, CTX) is None
    assert decide_delete(Head(2, True, NOW, None), "Patient", "p", None, NOW, CTX) is None
    event = decide_delete(Head(2, False, NOW, b"{}"), "Patient", "p", None, NOW, CTX)
    assert event is not None and event.version == 3 and event.resource is None


async def test_write_is_event_plus_projection_in_one_transaction(pool: asyncpg.Pool) -> None:
    pid = new_id()
    out = await run_write(pool, CTX, lambda tx: update(tx, "Patient", pid, patient(pid)))
    assert out.status is WriteStatus.CREATED
    head = await read_head(pool, "Patient", pid)
    assert head is not None and head.version == 1 and head.resource == out.resource
    stored = await pool.fetchval("SELECT resource FROM event_log WHERE resource_id = $1", pid)
    assert decode(stored) == out.resource


async def test_failed_write_leaves_neither_event_nor_projection(pool: asyncpg.Pool) -> None:
    pid = new_id()

    async def work(tx):
        await update(tx, "Patient", pid, patient(pid))
        raise FhirError(400, "invalid", "abort after append")

    with pytest.raises(FhirError):
        await run_write(pool, CTX, work)
    assert await read_head(pool, "Patient", pid) is None
    assert await pool.fetchval("SELECT count(*) FROM event_log WHERE resource_id = $1", pid) == 0


async def test_versions_get_increasing_last_updated(pool: asyncpg.Pool) -> None:
    pid = new_id()
    times = []
    for _ in range(5):
        out = await run_write(pool, CTX, lambda tx: update(tx, "Patient", pid, patient(pid)))
        times.append(out.last_updated)
    assert times == sorted(times) and len(set(times)) == 5


async def test_create_assigns_uuid_and_delete_then_read_head(pool: asyncpg.Pool) -> None:
    out = await run_write(pool, CTX, lambda tx: create(tx, "Patient", patient()))
    assert len(out.resource_id) == 36
    gone = await run_write(pool, CTX, lambda tx: delete(tx, "Patient", out.resource_id))
    assert gone.status is WriteStatus.DELETED and gone.version == 2
    head = await read_head(pool, "Patient", out.resource_id)
    assert head is not None and head.deleted and head.resource is None


async def test_transaction_retried_after_contention_keeps_references_right(pool: asyncpg.Pool) -> None:
    """run_write re-runs a transaction after a serialization failure; the second run must not see
    the first run's server-assigned ids in the entries."""
    from app.commands.bundle_entries import parse_bundle
    from app.commands.transaction import run_entries

    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": "urn:uuid:p", "resource": patient(), "request": {"method": "POST", "url": "Patient"}},
            {
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"text": "r"},
                    "subject": {"reference": "urn:uuid:p"},
                },
                "request": {"method": "POST", "url": "Observation"},
            },
        ],
    }
    _, entries = await parse_bundle(bundle, 100)
    attempts = 0

    async def work(tx):
        nonlocal attempts
        attempts += 1
        results = await run_entries(tx, entries)
        if attempts == 1:
            raise asyncpg.SerializationError("simulated contention")
        return results

    results = await run_write(pool, CTX, work)
    assert attempts == 2
    patient_ref = f"Patient/{results[0].resource_id}"
    observation = orjson.loads(results[1].resource)
    assert observation["subject"]["reference"] == patient_ref
    assert await read_head(pool, "Patient", patient_ref.split("/")[1]) is not None


async def test_transaction_entries_answer_the_write_results_of_their_commands(pool: asyncpg.Pool) -> None:
    """Each write entry runs its command and answers its WriteResult, with the position its event
    got in the Bundle's one append; a conditional delete matching nothing is unchanged."""
    from app.commands.bundle_entries import parse_bundle
    from app.commands.transaction import run_entries
    from app.queries.search.match import match_ids

    pid = new_id()
    entries_json = [
        {"resource": patient(pid), "request": {"method": "PUT", "url": f"Patient/{pid}"}},
        {"resource": patient(), "request": {"method": "POST", "url": "Patient"}},
        {"request": {"method": "DELETE", "url": f"Patient?_id={new_id()}"}},
    ]
    _, entries = await parse_bundle({"resourceType": "Bundle", "type": "transaction", "entry": entries_json}, 10)
    results = await run_write(pool, CTX, lambda tx: run_entries(tx, entries), match_ids)
    assert [r.status for r in results] == [WriteStatus.CREATED, WriteStatus.CREATED, WriteStatus.UNCHANGED]
    assert results[0].resource_id == pid and results[0].version == 1 and results[2].position is None
    rows = await pool.fetch(
        "SELECT position, resource_id FROM event_log WHERE position = ANY($1)", [r.position for r in results[:2]]
    )
    assert {(row["position"], row["resource_id"]) for row in rows} == {(r.position, r.resource_id) for r in results[:2]}
