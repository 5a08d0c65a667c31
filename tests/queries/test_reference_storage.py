"""References are stored once: a relative reference is its target's type and id (the ``reference``
column holds only what they do not spell: absolute URLs, canonicals), and every reference search,
``_sort`` and ``_include`` still sees the reference as written."""

from __future__ import annotations

import uuid

import asyncpg
import httpx

TAG = "http://fhirledger.test/tag"


async def _post(client: httpx.AsyncClient, resource: dict, tag: str) -> str:
    r = await client.post(
        f"/fhir/{resource['resourceType']}", json={**resource, "meta": {"tag": [{"system": TAG, "code": tag}]}}
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def _ids(client: httpx.AsyncClient, query: str, tag: str) -> list[str]:
    r = await client.get(f"/fhir/Observation?{query}&_tag={TAG}|{tag}")
    assert r.status_code == 200, r.text
    return [e["resource"]["id"] for e in r.json().get("entry", []) if e["search"]["mode"] == "match"]


async def test_sort_and_search_by_reference_as_written(client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    tag = uuid.uuid4().hex
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "ref"}}
    b = await _post(client, {**obs, "subject": {"reference": "Patient/b-sort"}}, tag)
    a = await _post(client, {**obs, "subject": {"reference": "Group/a-sort"}}, tag)
    c = await _post(client, {**obs, "subject": {"reference": "http://elsewhere.org/fhir/Patient/7"}}, tag)
    assert await _ids(client, "_sort=subject", tag) == [a, b, c]  # Group/… < Patient/… < http… (byte order)
    assert await _ids(client, "_sort=-subject", tag) == [c, b, a]
    assert await _ids(client, "subject=Patient/b-sort", tag) == [b]
    assert await _ids(client, "subject=http://elsewhere.org/fhir/Patient/7", tag) == [c]
    stored = await pool.fetch(
        "SELECT id, reference FROM sp_observation_reference WHERE param = 'subject' AND id = ANY($1)", [a, b, c]
    )
    assert {r["id"]: r["reference"] for r in stored} == {a: None, b: None, c: "http://elsewhere.org/fhir/Patient/7"}
