"""An update that sends the resource unchanged writes no search row and leaves search answering as
before; one that changes anything searchable, in ``meta`` too, moves it; a parameter that reads a
version's stamp is re-extracted on every version."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import orjson

from app.api import staleness
from app.commands.stamp import stamped
from app.events.model import EventKind, RequestContext, VersionEvent
from app.jobs.runner import run_pending
from app.projections.row_diff import KindChange, changes
from app.projections.search_content import code_roots, reads_stamp, revised_rows
from app.projections.search_index import KINDS, rows_of, search_table
from tests.helpers import FHIR, TAG, new_id

SYNTHEA = Path("/work/shared/synthea-r4")
CTX = RequestContext("PUT", "Patient/x")


def _event(resource: dict, version: int, when: datetime, kind: EventKind = EventKind.UPDATED) -> VersionEvent:
    body, parsed = stamped(resource, "x", version, when)
    return VersionEvent("Patient", "x", version, kind, body, when, CTX, parsed)


def _patients() -> list[dict]:
    """Synthea patients (their bundles' first entry) and a hand-made one with every meta field."""
    out = [
        {
            "resourceType": "Patient",
            "meta": {"tag": [{"system": TAG, "code": "a"}], "profile": ["http://x/p"], "source": "s", "security": []},
            "name": [{"family": "Chalmers", "given": ["Peter"]}],
            "telecom": [{"system": "phone", "value": "555"}],
        }
    ]
    for path in sorted(SYNTHEA.glob("*.json.gz"))[:5]:
        bundle = json.loads(gzip.decompress(path.read_bytes()))
        out += [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"]
    assert len(out) == 6
    return out


def test_versions_equal_but_for_their_stamp_have_the_same_rows() -> None:
    first, later = datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 6, 1, tzinfo=UTC)
    for resource in _patients():
        before = _event(resource, 1, first, EventKind.CREATED)
        after = _event(resource, 2, later)
        assert revised_rows("Patient", orjson.loads(before.resource), after.parsed) == ({}, {})
        assert rows_of(orjson.loads(before.resource)) == rows_of(after.parsed)


def test_any_other_difference_is_a_change() -> None:
    when = datetime(2024, 1, 1, tzinfo=UTC)
    resource = _patients()[0]
    before = orjson.loads(_event(resource, 1, when, EventKind.CREATED).resource)
    retagged = {**resource, "meta": {**resource["meta"], "tag": [{"system": TAG, "code": "b"}]}}
    old, new = revised_rows("Patient", before, _event(retagged, 2, when).parsed)
    assert {r[0] for r in old["token"]} >= {"_tag"} and {r[0] for r in new["token"]} >= {"_tag"}
    old, new = revised_rows("Patient", before, _event({**resource, "gender": "male"}, 2, when).parsed)
    assert [r for r in new["token"] if r[0] == "gender"] and not [r for r in old["token"] if r[0] == "gender"]
    assert not reads_stamp("Patient")


def _changed(variant: int, value: object) -> object:
    """Another value for an element: a string or number changed, a list shortened or doubled, an
    object with one of its fields changed (by ``variant``)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, list):
        return value[:-1] if len(value) > 1 else value + value
    if isinstance(value, dict) and value:
        key = sorted(value)[variant % len(value)]
        return {**value, key: _changed(variant, value[key])}
    return value


def _normal(found: dict[str, KindChange]) -> dict[str, tuple[list[str], list[str]]]:
    return {kind: (sorted(c.params), sorted(map(repr, c.rows))) for kind, c in found.items()}


def test_the_rows_of_changed_elements_change_as_the_whole_rows_do() -> None:
    """For each top-level element of Synthea resources of every type, removed or changed: the rows
    extracted for the parameters that may read it change exactly as the whole resource's rows do."""
    seen: dict[str, int] = {}
    checked = 0
    for path in sorted(SYNTHEA.glob("*.json.gz"))[:3]:
        for entry in json.loads(gzip.decompress(path.read_bytes()))["entry"]:
            resource = entry["resource"]
            kind = resource["resourceType"]
            seen[kind] = seen.get(kind, 0) + 1
            if seen[kind] > 6:
                continue
            for key in [k for k in resource if k not in ("resourceType", "id")]:
                without = {k: v for k, v in resource.items() if k != key}
                for other in (
                    without,
                    {**resource, key: _changed(0, resource[key])},
                    {**resource, key: _changed(1, resource[key])},
                ):
                    whole = changes(rows_of(resource), rows_of(other))
                    assert _normal(changes(*revised_rows(kind, resource, other))) == _normal(whole), (kind, key)
                    checked += 1
    assert checked > 500 and len(seen) > 10


def test_a_phone_change_extracts_the_telecom_parameters_and_the_text_rows() -> None:
    resource = _patients()[0]
    moved = {**resource, "telecom": [{"system": "phone", "value": "556"}]}
    old, new = revised_rows("Patient", resource, moved)
    # deceased is left to fhirpathpy (any element may change it): extracted on every change
    assert {row[0] for rows in new.values() for row in rows} == {"phone", "telecom", "deceased", "_content"}
    assert {row[0] for row in old["token"]} == {"phone", "telecom", "deceased"}
    assert revised_rows("Patient", resource, {**resource, "meta": {**resource["meta"], "versionId": "9"}}) == ({}, {})
    contained = {**resource, "contained": [{"resourceType": "Organization", "id": "o"}]}
    assert revised_rows("Patient", resource, contained) == (rows_of(resource), rows_of(contained))  # every parameter
    assert code_roots("Observation")["code-value-quantity"] == {"code", "valueQuantity"}  # a composite of the resource
    assert code_roots("Patient")["deceased"] is None  # left to fhirpathpy: any element


async def _side_rows(pool: asyncpg.Pool, pid: str) -> dict[str, list[tuple]]:
    key = await pool.fetchval("SELECT key FROM cur_patient WHERE id = $1", pid)
    out = {}
    for kind in KINDS:
        rows = await pool.fetch(f"SELECT * FROM {search_table('Patient', kind)} WHERE key = $1", key)
        out[kind] = sorted(tuple(str(v) for v in r.values()) for r in rows)
    return out


async def test_an_unchanged_update_keeps_the_rows_and_search_finds_it(client: httpx.AsyncClient, pool) -> None:
    family, tag = new_id("fam"), new_id("tag")
    body = {
        "resourceType": "Patient",
        "meta": {"tag": [{"system": TAG, "code": tag}]},
        "name": [{"family": family, "given": ["Jo"]}],
        "telecom": [{"system": "phone", "value": "555 0101"}],
        "birthDate": "1970-01-02",
    }
    pid = (await client.post("/fhir/Patient", json=body, headers=FHIR)).json()["id"]
    rows = await _side_rows(pool, pid)
    for _ in range(2):
        r = await client.put(f"/fhir/Patient/{pid}", json={**body, "id": pid}, headers=FHIR)
        assert r.status_code == 200, r.text
    assert r.json()["meta"]["versionId"] == "3"
    assert await _side_rows(pool, pid) == rows
    for query in (f"family={family}", f"_tag={TAG}|{tag}", "phone=555 0101&birthdate=1970-01-02", f"_content={family}"):
        found = (await client.get(f"/fhir/Patient?{query}&_count=1000")).json()
        assert pid in {e["resource"]["id"] for e in found.get("entry", [])}, query


async def test_an_update_that_changes_a_value_moves_it(client: httpx.AsyncClient) -> None:
    family, tag, moved = new_id("fam"), new_id("tag"), new_id("tag")
    body = {"resourceType": "Patient", "meta": {"tag": [{"system": TAG, "code": tag}]}, "name": [{"family": family}]}
    pid = (await client.post("/fhir/Patient", json=body, headers=FHIR)).json()["id"]
    changed = {**body, "id": pid, "meta": {"tag": [{"system": TAG, "code": moved}]}}
    assert (await client.put(f"/fhir/Patient/{pid}", json=changed, headers=FHIR)).status_code == 200
    assert (await client.get(f"/fhir/Patient?_tag={TAG}|{tag}")).json()["total"] == 0
    assert (await client.get(f"/fhir/Patient?_tag={TAG}|{moved}&family={family}")).json()["total"] == 1


async def test_a_parameter_reading_the_stamp_is_extracted_on_every_version(
    client: httpx.AsyncClient, app, pool: asyncpg.Pool
) -> None:
    code = f"vid-{new_id()}".lower()
    definition = {
        "resourceType": "SearchParameter",
        "url": f"http://fhirledger.test/sp/{code}",
        "name": code,
        "status": "active",
        "description": "The version of a patient",
        "code": code,
        "base": ["Patient"],
        "type": "token",
        "expression": "Patient.meta.versionId",
    }
    sp_id = (await client.post("/fhir/SearchParameter", json=definition)).json()["id"]
    await run_pending(pool)
    await staleness.refresh(app, pool)
    try:
        assert reads_stamp("Patient")
        family = new_id("fam")
        body = {"resourceType": "Patient", "name": [{"family": family}]}
        pid = (await client.post("/fhir/Patient", json=body, headers=FHIR)).json()["id"]
        assert (await client.put(f"/fhir/Patient/{pid}", json={**body, "id": pid}, headers=FHIR)).status_code == 200
        assert (await client.get(f"/fhir/Patient?family={family}&{code}=2")).json()["total"] == 1
        assert (await client.get(f"/fhir/Patient?family={family}&{code}=1")).json()["total"] == 0
    finally:
        retired = {**definition, "id": sp_id, "status": "retired"}
        assert (await client.put(f"/fhir/SearchParameter/{sp_id}", json=retired)).status_code == 200
        await run_pending(pool)
        await staleness.refresh(app, pool)
