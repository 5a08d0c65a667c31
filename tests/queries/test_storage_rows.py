"""Side-table rows hold each value once. A relative reference is its target's type and id (the
``reference`` column holds only what they do not spell: absolute URLs, canonicals), and every
reference search and ``_sort`` still sees the reference as written. A token value with only a text
(searched in the full-text table) leaves no empty row beside the parameter's codings, yet
``:missing`` still sees the parameter."""

from __future__ import annotations

import uuid

import asyncpg
import httpx

from app.search_types.protocol import system_hash
from tests.helpers import TAG, post_tagged, side_rows_sql


async def _ids(client: httpx.AsyncClient, query: str, tag: str, resource_type: str = "Observation") -> list[str]:
    r = await client.get(f"/fhir/{resource_type}?{query}&_tag={TAG}|{tag}")
    assert r.status_code == 200, r.text
    return [e["resource"]["id"] for e in r.json().get("entry", []) if e["search"]["mode"] == "match"]


async def test_sort_and_search_by_reference_as_written(client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    tag = uuid.uuid4().hex
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "ref"}}
    b = await post_tagged(client, {**obs, "subject": {"reference": "Patient/b-sort"}}, tag)
    a = await post_tagged(client, {**obs, "subject": {"reference": "Group/a-sort"}}, tag)
    c = await post_tagged(client, {**obs, "subject": {"reference": "http://elsewhere.org/fhir/Patient/7"}}, tag)
    assert await _ids(client, "_sort=subject", tag) == [a, b, c]  # Group/… < Patient/… < http… (byte order)
    assert await _ids(client, "_sort=-subject", tag) == [c, b, a]
    assert await _ids(client, "subject=Patient/b-sort", tag) == [b]
    assert await _ids(client, "subject=http://elsewhere.org/fhir/Patient/7", tag) == [c]
    stored = await pool.fetch(
        side_rows_sql(
            "sp_observation_reference", "cur_observation", "c.id, s.reference", "s.param = 'subject' AND c.id = ANY($1)"
        ),
        [a, b, c],
    )
    assert {r["id"]: r["reference"] for r in stored} == {a: None, b: None, c: "http://elsewhere.org/fhir/Patient/7"}


async def test_token_text_alone_is_no_row_beside_codings(client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    tag = uuid.uuid4().hex
    cond = {"resourceType": "Condition", "subject": {"reference": "Patient/t1"}}
    coded = await post_tagged(
        client,
        {**cond, "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006"}], "text": "Diabetes"}},
        tag,
    )
    text_only = await post_tagged(client, {**cond, "code": {"text": "Diabetes, type unknown"}}, tag)
    none = await post_tagged(client, cond, tag)
    rows = await pool.fetch(
        side_rows_sql(
            "sp_condition_token", "cur_condition", "c.id, s.system_hash, s.code", "s.param = 'code' AND c.id = ANY($1)"
        ),
        [coded, text_only, none],
    )
    assert sorted((r["id"], r["system_hash"], r["code"]) for r in rows) == sorted(
        [(coded, system_hash("http://snomed.info/sct"), "44054006"), (text_only, None, None)]
    )
    assert set(await _ids(client, "code:missing=false", tag, "Condition")) == {coded, text_only}
    assert await _ids(client, "code:missing=true", tag, "Condition") == [none]
    assert set(await _ids(client, "code:text=diabetes", tag, "Condition")) == {coded, text_only}
    assert await _ids(client, "code=44054006", tag, "Condition") == [coded]


async def test_uuid_target_ids_are_stored_as_uuids_and_read_back_as_written(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    """A target id that is a lowercase UUID is kept as a 16-byte uuid, any other (an uppercase UUID,
    a plain id) as text: searches, ``_sort`` and ``_include`` see each id as written."""
    tag = uuid.uuid4().hex
    lower, upper, plain = str(uuid.uuid4()), str(uuid.uuid4()).upper(), f"p-{uuid.uuid4().hex[:8]}"
    observations = {}
    for pid in (lower, upper, plain):
        r = await client.put(f"/fhir/Patient/{pid}", json={"resourceType": "Patient", "id": pid})
        assert r.status_code == 201, r.text
        obs = {"resourceType": "Observation", "status": "final", "code": {"text": "ref"}}
        observations[pid] = await post_tagged(client, {**obs, "subject": {"reference": f"Patient/{pid}"}}, tag)
    stored = await pool.fetch(
        side_rows_sql(
            "sp_observation_reference",
            "cur_observation",
            "c.id, s.target_uuid::text AS u, s.target_id",
            "s.param = 'subject' AND c.id = ANY($1)",
        ),
        list(observations.values()),
    )
    assert {r["id"]: (r["u"], r["target_id"]) for r in stored} == {
        observations[lower]: (lower, None),
        observations[upper]: (None, upper),
        observations[plain]: (None, plain),
    }
    for pid, oid in observations.items():
        assert await _ids(client, f"subject=Patient/{pid}", tag) == [oid]
    by_reference = [observations[pid] for pid in sorted(observations, key=lambda p: f"Patient/{p}".encode())]
    assert await _ids(client, "_sort=subject", tag) == by_reference
    r = await client.get(f"/fhir/Observation?_tag={TAG}|{tag}&_include=Observation:subject")
    assert r.status_code == 200, r.text
    included = {e["resource"]["id"] for e in r.json()["entry"] if e["search"]["mode"] == "include"}
    assert included == {lower, upper, plain}
