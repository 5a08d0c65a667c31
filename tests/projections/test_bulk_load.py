"""Replay's bulk load (app/projections/bulk_load.py): text with the characters COPY escapes, values of
every column type and deletions come out of a rebuild with worker processes exactly as the inline
projectors wrote them; a rebuild interrupted during the load leaves the live tables with every index
they had; each resource is loaded once, from its last event."""

from __future__ import annotations

import gc

import asyncpg
import httpx
import pytest

from app.projections import bulk_load, rebuild, rebuild_state
from app.projections.rebuild import (
    RebuildInterrupted,
    custom_definitions,
    live_tables,
    rebuild_type,
    replay_executor,
)
from tests.helpers import new_id
from tests.projections.test_rebuild import dump

AWKWARD = "tab\there, new\nline, back\\slash, \\N, carriage\rreturn, 'quotes' \"and\" ümlauts"


async def _awkward_patients(client: httpx.AsyncClient) -> list[str]:
    ids = []
    for i in range(4):
        pid = new_id()
        body = {
            "resourceType": "Patient",
            "id": pid,
            "name": [{"family": f"{AWKWARD} {i}", "given": ["a\\b", "c\td"]}],
            "identifier": [{"system": "http://x\\y", "value": f"v\n{i}"}],
            "birthDate": "1970-01-0" + str(i + 1),
            "address": [{"city": "Tab\tCity", "text": "line1\r\nline2"}],
        }
        assert (await client.put(f"/fhir/Patient/{pid}", json=body)).status_code in (200, 201)
        ids.append(pid)
    body["name"] = [{"family": "updated\\again"}]
    await client.put(f"/fhir/Patient/{ids[-1]}", json=body)
    await client.delete(f"/fhir/Patient/{ids[0]}")
    return ids


async def test_awkward_text_survives_the_bulk_load_with_workers(
    client: httpx.AsyncClient, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = await _awkward_patients(client)
    before = await dump(pool, "Patient")
    monkeypatch.setattr(bulk_load, "BULK_MIN", 1)
    with replay_executor(await custom_definitions(pool)) as executor:
        await rebuild_type(pool, "Patient", batch=3, executor=executor)
    assert await dump(pool, "Patient") == before
    r = await client.get("/fhir/Patient", params={"identifier": f"http://x\\y|v\n{3}"})
    assert r.status_code == 200 and [e["resource"]["id"] for e in r.json()["entry"]] == [ids[3]]
    assert (await client.get(f"/fhir/Patient/{ids[0]}")).status_code == 410


async def _indexes(pool: asyncpg.Pool, tables: list[str]) -> list[tuple[str, str]]:
    rows = await pool.fetch("SELECT tablename, indexdef FROM pg_indexes WHERE tablename = ANY($1)", tables)
    return sorted((r["tablename"], r["indexdef"]) for r in rows)


async def _post_flags(client: httpx.AsyncClient, texts: list[str]) -> None:
    """Create a Flag of each code text."""
    for text in texts:
        body = {"resourceType": "Flag", "status": "active", "code": {"text": text}}
        body["subject"] = {"reference": "Patient/z"}
        assert (await client.post("/fhir/Flag", json=body)).status_code == 201


async def test_a_rebuild_interrupted_during_the_load_ends_with_every_index(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    await _post_flags(client, [f"f{i}" for i in range(12)])
    tables = live_tables("Flag")
    indexes, before = await _indexes(pool, tables), await dump(pool, "Flag")
    assert any("gin" in d for _, d in indexes) and any("PRIMARY KEY" in d or "_pkey" in d for _, d in indexes)
    with pytest.raises(RebuildInterrupted):
        await rebuild_type(pool, "Flag", batch=4, stop_after_batches=1)
    shadow = await _indexes(pool, [t + rebuild.SHADOW for t in tables])
    assert shadow == [], "the shadow tables fill without indexes"
    result = await rebuild_type(pool, "Flag", batch=4)
    assert result.resumed_from > 0
    assert await _indexes(pool, tables) == indexes
    assert await dump(pool, "Flag") == before
    options = await pool.fetch("SELECT reloptions FROM pg_class WHERE relname = ANY($1)", tables)
    assert not any("autovacuum_enabled=false" in (r["reloptions"] or []) for r in options), "autovacuum on again"


async def test_superseded_versions_are_not_replayed_but_counted(client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    rid = new_id()
    for i in range(5):
        body = {"resourceType": "Device", "id": rid, "status": "active", "note": [{"text": f"v{i}"}]}
        await client.put(f"/fhir/Device/{rid}", json=body)
    events = await pool.fetchval("SELECT count(*) FROM event_log WHERE resource_type = 'Device'")
    before = await dump(pool, "Device")
    seen: list[int] = []
    result = await rebuild_type(pool, "Device", progress=seen.append)
    assert result.events == events == sum(seen)
    assert await dump(pool, "Device") == before
    r = await client.get("/fhir/Device", params={"_content": "v4"})
    assert [e["resource"]["id"] for e in r.json()["entry"]] == [rid]


def test_batches_are_projected_with_the_collector_paused() -> None:
    """The projection of a batch runs without cyclic collections (they freed nothing and cost a
    tenth of the workers' CPU); the collector runs again afterwards, after a failure too."""
    seen: list[bool] = []

    @bulk_load.uncollected
    def project(fail: bool) -> int:
        seen.append(gc.isenabled())
        if fail:
            raise ValueError("bad batch")
        return 1

    assert project(False) == 1
    with pytest.raises(ValueError):
        project(True)
    assert seen == [False, False]
    assert gc.isenabled()
    assert bulk_load.encode_stored.__wrapped__ is not None  # type: ignore[attr-defined]
    assert rebuild._rows_for.__wrapped__ is not None  # type: ignore[attr-defined]


async def test_the_load_reads_the_log_in_order_passing_over_superseded_events(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    """The bulk load reads the log in position order, a batch at a time: a resource never updated is
    loaded at its first event (its rows' key, so the tables fill in key order), an updated one from
    its last, and a batch of superseded events only loads nothing and ends nothing."""
    ids = {name: new_id() for name in "abcdefg"}

    async def put(name: str, note: str) -> None:
        body = {"resourceType": "Device", "id": ids[name], "status": "active", "note": [{"text": note}]}
        assert (await client.put(f"/fhir/Device/{ids[name]}", json=body)).status_code in (200, 201)

    for name in "abcdef":
        await put(name, f"{name} first")
    for note in ("b second", "b third", "b fourth", "b fifth"):  # b2-b4: a batch of 2 of them alone
        await put("b", note)
    await put("d", "d second")
    assert (await client.delete(f"/fhir/Device/{ids['e']}")).status_code in (200, 204)
    await put("g", "g first")
    events = await pool.fetchval("SELECT count(*) FROM event_log WHERE resource_type = 'Device'")
    before = await dump(pool, "Device")
    seen: list[int] = []
    result = await rebuild_type(pool, "Device", batch=2, progress=seen.append)
    assert result.events == events == sum(seen)
    assert await dump(pool, "Device") == before
    table = rebuild.current_table("Device")
    mine = list(ids.values())
    rows = await pool.fetch(f"SELECT id FROM {table} WHERE id = ANY($1::text[]) ORDER BY ctid", mine)
    assert [r["id"] for r in rows] == [ids[n] for n in "acfbdeg"]
    found = await client.get("/fhir/Device", params={"_content": "fifth"})
    assert [e["resource"]["id"] for e in found.json()["entry"]] == [ids["b"]]
    assert (await client.get("/fhir/Device", params={"_content": "fourth"})).json().get("entry", []) == []


async def test_a_load_left_by_the_id_order_reader_starts_again(client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    """A rebuild interrupted during its load by a version that read the log in id order (its state
    goes on below an id) is not resumed from that state by this one: the load starts again, and
    the tables come out as the inline projectors wrote them."""
    await _post_flags(client, [f"old reader {i}" for i in range(9)])
    before = await dump(pool, "Flag")
    with pytest.raises(RebuildInterrupted):
        await rebuild_type(pool, "Flag", batch=3, stop_after_batches=1)
    async with pool.acquire() as conn:
        state = await rebuild_state.load_state(conn, "Flag")
        assert state is not None and state["checkpoint"] > 0
        state["load"] = {"horizon": state["load"]["horizon"], "below": "t-zzz"}  # as the old reader left it
        await rebuild_state.save(conn, "Flag", state, None)
    result = await rebuild_type(pool, "Flag", batch=3)
    assert result.resumed_from == 0
    assert await dump(pool, "Flag") == before
