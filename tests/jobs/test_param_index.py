"""The index build of a custom SearchParameter (app/jobs/param_index.py): over several pipelined
batches it writes exactly the rows the inline projection writes, only the parameter's, only in its
side tables; a write between the read of a batch and its write is projected again, never lost nor
doubled; a redefinition that changes the parameter's type leaves none of the old type's rows."""

from __future__ import annotations

import random

import asyncpg
import httpx
import pytest

from app.api import staleness
from app.fhirspec.search_parameters import params_for
from app.jobs import param_index
from app.jobs.runner import run_pending
from app.projections.search_index import param_kinds, rows_of, search_table
from app.search_types.registry import KINDS
from bench.generate import patient_bundle
from tests.helpers import new_id, side_rows_sql


def _definition(code: str, kind: str = "token", expression: str = "Observation.code") -> dict:
    return {
        "resourceType": "SearchParameter",
        "url": f"http://fhirledger.test/sp/{code}",
        "name": code,
        "status": "active",
        "description": "Observation.code under another name",
        "code": code,
        "base": ["Observation"],
        "type": kind,
        "expression": expression,
    }


def _observation(system: str, code: str, status: str = "final") -> dict:
    return {"resourceType": "Observation", "status": status, "code": {"coding": [{"system": system, "code": code}]}}


async def _rows(pool: asyncpg.Pool, ids: list[str], code: str, same: bool) -> list[tuple]:
    """Every side-table row of ``ids`` of the parameter ``code`` (``same``) or of every other one."""
    out: list[tuple] = []
    for kind in KINDS:
        op = "=" if same else "<>"
        rows = await pool.fetch(
            side_rows_sql(
                search_table("Observation", kind), "cur_observation", "c.id, s.*", f"c.id = ANY($1) AND s.param {op} $2"
            ),
            ids,
            code,
        )
        out += [(kind, *r.values()) for r in rows]
    return sorted(out, key=repr)


async def _ids(client: httpx.AsyncClient, query: str) -> set[str]:
    found = (await client.get(f"/fhir/Observation?{query}&_count=1000")).json()
    return {e["resource"]["id"] for e in found.get("entry", [])}


async def _retire(client: httpx.AsyncClient, app, pool: asyncpg.Pool, sp_id: str) -> None:
    assert (await client.delete(f"/fhir/SearchParameter/{sp_id}")).status_code == 200  # leave no custom param
    await run_pending(pool)
    await staleness.refresh(app, pool)


async def test_batches_write_exactly_the_inline_rows(
    client: httpx.AsyncClient, app, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(param_index, "BATCH", 4)
    monkeypatch.setattr(param_index, "CHUNK", 3)
    system, code = f"http://fhirledger.test/{new_id()}", f"pi-{new_id()}".lower()
    ids = [(await client.post("/fhir/Observation", json=_observation(system, f"c{n}"))).json()["id"] for n in range(11)]
    for n in (1, 5, 9):  # a second version, whose code is the one indexed
        body = {**_observation(system, f"u{n}"), "id": ids[n]}
        assert (await client.put(f"/fhir/Observation/{ids[n]}", json=body)).status_code == 200
    assert (await client.delete(f"/fhir/Observation/{ids[10]}")).status_code == 200
    others = await _rows(pool, ids, code, same=False)
    sp = (await client.post("/fhir/SearchParameter", json=_definition(code))).json()
    try:
        assert await run_pending(pool) >= 1
        await staleness.refresh(app, pool)
        assert await _rows(pool, ids, code, same=False) == others, "no other parameter's rows touched"
        reindexed = await _rows(pool, ids, code, same=True)
        assert await _ids(client, f"{code}={system}|c0") == {ids[0]}
        assert await _ids(client, f"{code}={system}|u5") == {ids[5]}
        assert await _ids(client, f"{code}={system}|c5") == set()
        assert await _ids(client, f"{code}={system}|c10") == set(), "a deleted resource has no rows"
        for n in range(10):  # the same version written again, inline: the same rows
            current = (await client.get(f"/fhir/Observation/{ids[n]}")).json()
            assert (await client.put(f"/fhir/Observation/{ids[n]}", json=current)).status_code == 200
        inline = await _rows(pool, ids, code, same=True)
        assert reindexed == inline and len({r[1] for r in inline if r[0] == "token"}) == 10
    finally:
        await _retire(client, app, pool, sp["id"])


async def test_a_write_during_the_build_is_neither_lost_nor_doubled(
    client: httpx.AsyncClient, app, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(param_index, "BATCH", 3)
    system, code = f"http://fhirledger.test/{new_id()}", f"pw-{new_id()}".lower()
    ids = [(await client.post("/fhir/Observation", json=_observation(system, f"c{n}"))).json()["id"] for n in range(7)]
    written = param_index._write
    changed: list[str] = []

    async def write_after_an_update(pool_: asyncpg.Pool, projector, resource_type: str, batch) -> None:
        mine = [i for i in batch.versions if i in ids]
        if mine and not changed:  # the first batch with one of them: it is updated before the write
            body = {**_observation(system, "after"), "id": mine[0]}
            assert (await client.put(f"/fhir/Observation/{mine[0]}", json=body)).status_code == 200
            changed.append(mine[0])
        await written(pool_, projector, resource_type, batch)

    monkeypatch.setattr(param_index, "_write", write_after_an_update)
    sp = (await client.post("/fhir/SearchParameter", json=_definition(code))).json()
    try:
        assert await run_pending(pool) >= 1
        await staleness.refresh(app, pool)
        assert changed, "the hook ran"
        assert await _ids(client, f"{code}={system}|after") == set(changed)
        assert changed[0] not in await _ids(client, f"{code}={system}|c{ids.index(changed[0])}")
        tokens = [r for r in await _rows(pool, ids, code, same=True) if r[0] == "token"]
        assert sorted(r[1] for r in tokens) == sorted(ids), "one row per resource: none lost, none doubled"
    finally:
        monkeypatch.undo()
        await _retire(client, app, pool, sp["id"])


async def test_a_new_type_for_the_code_leaves_none_of_the_old_rows(
    client: httpx.AsyncClient, app, pool: asyncpg.Pool
) -> None:
    system, code = f"http://fhirledger.test/{new_id()}", f"pt-{new_id()}".lower()
    oid = (await client.post("/fhir/Observation", json=_observation(system, "x1"))).json()["id"]
    sp = (await client.post("/fhir/SearchParameter", json=_definition(code))).json()
    try:
        await run_pending(pool)
        sql = side_rows_sql("sp_observation_token", "cur_observation", "count(*)", "c.id = $1 AND s.param = $2")
        assert await pool.fetchval(sql, oid, code)
        retyped = {**_definition(code, "string", "Observation.status"), "id": sp["id"]}
        assert (await client.put(f"/fhir/SearchParameter/{sp['id']}", json=retyped)).status_code == 200
        await run_pending(pool)
        await staleness.refresh(app, pool)
        assert await pool.fetchval("SELECT count(*) FROM sp_observation_token WHERE param = $1", code) == 0
        # the shared database may hold over a page of final Observations: ask about this one
        assert await _ids(client, f"{code}=final&_id={oid}") == {oid}
        assert await _ids(client, f"{code}=amended&_id={oid}") == set()
    finally:
        await _retire(client, app, pool, sp["id"])


def test_param_kinds_hold_every_row_a_parameter_makes() -> None:
    """A reindex clears a parameter's old rows only from the side tables of its type: every R4
    parameter's rows over generated Synthea-shaped resources fall in those tables."""
    seen: set[str] = set()
    for n in range(3):
        for entry in patient_bundle(random.Random(n), n, 60)["entry"]:
            resource = entry["resource"]
            for param in params_for(resource["resourceType"]).values():
                if param.type == "special" or param.code.startswith("_"):
                    continue
                made = {k for k, rows in rows_of(resource, frozenset({param.code})).items() if rows}
                assert made <= param_kinds(param.type), (param.code, param.type, made)
                seen |= made
    assert {"token", "reference", "date", "text"} <= seen
