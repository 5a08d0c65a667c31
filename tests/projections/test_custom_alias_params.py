"""A custom SearchParameter redefining a parameter that R4 answers from another's rows (Patient
``phonetic``, :mod:`app.search_types.param_aliases`), or the parameter whose rows answer it
(``name``), ends the alias: the R4 one left keeps rows of its own, built by the reindex job; the
retirement of the definition brings the alias back and clears them."""

from __future__ import annotations

import uuid

import asyncpg
import httpx

from app.api import staleness
from app.jobs.runner import run_pending
from tests.helpers import TAG, post_tagged, search_parameter, side_rows_sql


def _definition(code: str, expression: str, tag: str) -> dict:
    return search_parameter(code, "string", expression, f"http://fhirledger.test/sp/{code}-{tag}", f"{code} redefined")


async def _settle(app, pool: asyncpg.Pool) -> None:
    await run_pending(pool)
    await staleness.refresh(app, pool)


async def _ids(client: httpx.AsyncClient, query: str, tag: str) -> list[str]:
    r = await client.get(f"/fhir/Patient?{query}&_tag={TAG}|{tag}")
    assert r.status_code == 200, r.text
    return [e["resource"]["id"] for e in r.json().get("entry", [])]


async def _params(pool: asyncpg.Pool, pid: str) -> list[str]:
    where = "c.id = $1 AND s.param IN ('given', 'name', 'phonetic')"  # other tests' custom parameters aside
    sql = side_rows_sql("sp_patient_string", "cur_patient", "DISTINCT s.param", where)
    return sorted(r["param"] for r in await pool.fetch(sql, pid))


async def test_redefined_alias_gets_rows_and_retirement_restores_it(
    client: httpx.AsyncClient, app, pool: asyncpg.Pool
) -> None:
    tag = uuid.uuid4().hex
    family, given = f"Zed{tag[:8]}", f"Quill{tag[:8]}"
    pid = await post_tagged(client, {"resourceType": "Patient", "name": [{"family": family, "given": [given]}]}, tag)
    assert await _params(pool, pid) == ["given", "name"]  # phonetic: name's rows
    r = await client.post("/fhir/SearchParameter", json=_definition("phonetic", "Patient.name.given", tag))
    assert r.status_code == 201, r.text
    sp = r.json()["id"]
    try:
        await _settle(app, pool)
        assert await _params(pool, pid) == ["given", "name", "phonetic"]
        assert await _ids(client, f"phonetic={given}", tag) == [pid]
        assert await _ids(client, f"phonetic={family}", tag) == []  # the custom expression: given names only
        assert await _ids(client, f"name={family}", tag) == [pid]
    finally:
        assert (await client.delete(f"/fhir/SearchParameter/{sp}")).status_code == 200
        await _settle(app, pool)
    assert await _params(pool, pid) == ["given", "name"]
    assert await _ids(client, f"phonetic={family}", tag) == [pid]  # name's rows again
    assert await _ids(client, "phonetic:missing=true", tag) == []


async def test_redefined_kept_parameter_gives_the_alias_rows_of_its_own(
    client: httpx.AsyncClient, app, pool: asyncpg.Pool
) -> None:
    tag = uuid.uuid4().hex
    family, given = f"Zed{tag[:8]}", f"Quill{tag[:8]}"
    pid = await post_tagged(client, {"resourceType": "Patient", "name": [{"family": family, "given": [given]}]}, tag)
    r = await client.post("/fhir/SearchParameter", json=_definition("name", "Patient.name.family", tag))
    assert r.status_code == 201, r.text
    sp = r.json()["id"]
    try:
        await staleness.refresh(app, pool)
        for query in (f"phonetic={given}", f"subject:Patient.phonetic={given}"):  # its own rows: not yet built
            building = await client.get(f"/fhir/{'Observation' if 'subject' in query else 'Patient'}?{query}")
            assert building.status_code == 503 and "still being built" in building.text, query
        await _settle(app, pool)
        assert await _params(pool, pid) == ["given", "name", "phonetic"]
        assert await _ids(client, f"name={given}", tag) == []  # the custom expression: family names only
        assert await _ids(client, f"phonetic={given}", tag) == [pid]  # R4's Patient.name, its own rows
        assert await _ids(client, f"phonetic:text={given.lower()}", tag) == [pid]
        assert await _ids(client, "phonetic:missing=false", tag) == [pid]
        pid2 = await post_tagged(client, {"resourceType": "Patient", "name": [{"given": [given]}]}, tag)
        assert await _ids(client, f"phonetic={given}", tag) == [pid, pid2]  # written inline too
    finally:
        assert (await client.delete(f"/fhir/SearchParameter/{sp}")).status_code == 200
        await _settle(app, pool)
    assert await _params(pool, pid) == ["given", "name"]
    assert await _ids(client, f"phonetic={given}", tag) == [pid, pid2]
    assert await _ids(client, f"name={given}", tag) == [pid, pid2]
