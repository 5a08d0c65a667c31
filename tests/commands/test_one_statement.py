"""A version is recorded in one statement (append + current state + search rows); a create is that
statement alone. What it writes is what the long path writes, and when this process's custom
SearchParameters are behind the stored version the write takes the long path, which loads them."""

from __future__ import annotations

import asyncpg
import httpx
import pytest

from app.commands.create import create
from app.commands.unit_of_work import WriteTransaction, run_write
from app.events.model import RequestContext
from tests.helpers import FHIR, new_id, patient

CTX = RequestContext("POST", "Patient")


async def test_create_update_delete_keep_log_current_state_and_search_in_step(client: httpx.AsyncClient, pool) -> None:
    family = new_id("fam")
    r = await client.post("/fhir/Patient", json=patient(family=family), headers=FHIR)
    pid = r.json()["id"]
    assert (await client.get(f"/fhir/Patient?family={family}")).json()["total"] == 1
    await client.put(f"/fhir/Patient/{pid}", json=patient(pid, family=family + "x"), headers=FHIR)
    assert (await client.get(f"/fhir/Patient?family={family}x")).json()["total"] == 1
    assert (await client.get(f"/fhir/Patient?family:exact={family}")).json()["total"] == 0  # old rows gone
    await client.delete(f"/fhir/Patient/{pid}")
    assert (await client.get(f"/fhir/Patient?family={family}x")).json()["total"] == 0
    row = await pool.fetchrow("SELECT version, deleted, position FROM cur_patient WHERE id = $1", pid)
    last = await pool.fetchval("SELECT max(position) FROM event_log WHERE resource_id = $1", pid)
    assert (row["version"], row["deleted"], row["position"]) == (3, True, last)


async def test_a_stale_registry_takes_the_long_way_and_still_writes_everything(client, pool) -> None:
    await pool.execute("UPDATE search_param_version SET version = version + 1")  # as another process would
    family = new_id("fam")
    r = await client.post("/fhir/Patient", json=patient(family=family), headers=FHIR)
    assert r.status_code == 201
    assert (await client.get(f"/fhir/Patient?family={family}")).json()["total"] == 1
    events = await pool.fetchval("SELECT count(*) FROM event_log WHERE resource_id = $1", r.json()["id"])
    assert events == 1


async def test_a_create_leaves_no_transaction_open_and_nothing_may_follow_it(pool: asyncpg.Pool) -> None:
    # a write through run_write first: a process's first write takes the long way, in a transaction,
    # while it has not yet read the custom parameters' version (the test failed when run first)
    first = await run_write(pool, CTX, lambda tx: create(tx, "Patient", patient()))
    assert await pool.fetchval("SELECT version FROM cur_patient WHERE id = $1", first.resource_id) == 1
    async with pool.acquire() as conn:
        tx = WriteTransaction(conn, CTX)
        with pytest.raises(RuntimeError):
            _ = tx.conn  # outside any transaction: refused
        await create(tx, "Patient", patient())
        assert not conn.is_in_transaction()
        with pytest.raises(RuntimeError):
            await tx.head("Patient", "x")
    out = await run_write(pool, CTX, lambda tx: create(tx, "Patient", patient()))
    assert await pool.fetchval("SELECT version FROM cur_patient WHERE id = $1", out.resource_id) == 1
