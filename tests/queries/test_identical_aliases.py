"""Parameters whose R4 expression, type and shape are another's of the type (Patient ``phonetic``
and ``name`` are both ``Patient.name``) keep no rows of their own (:mod:`app.search_types.param_aliases`):
every form of search on the alias answers exactly what the same form on the other answers."""

from __future__ import annotations

import uuid

import asyncpg
import httpx
import pytest

from app.search_types.param_aliases import Stored, aliases, dependents
from tests.helpers import TAG, post_tagged, side_rows_sql

IDENTICAL = {
    ("Patient", "phonetic"): "name",
    ("Person", "phonetic"): "name",
    ("Practitioner", "phonetic"): "name",
    ("RelatedPerson", "phonetic"): "name",
    ("CapabilityStatement", "version"): "fhirversion",
    ("CodeSystem", "url"): "system",
    ("Coverage", "patient"): "beneficiary",
    ("DeviceUseStatement", "subject"): "patient",
    ("EnrollmentRequest", "subject"): "patient",
    ("ResearchSubject", "patient"): "individual",
    ("Linkage", "source"): "item",
    ("Bundle", "message"): "composition",
}


def test_identical_aliases_are_derived_from_the_expressions() -> None:
    for (resource_type, code), kept in IDENTICAL.items():
        assert aliases(resource_type)[code] == Stored((kept,)), (resource_type, code)
        assert kept not in aliases(resource_type)  # the rows are really stored
    assert dependents("name", ["Patient", "Person"]) == {"phonetic": ["Patient", "Person"]}
    assert dependents("phonetic", ["Patient"]) == {}


# {c}: the code searched (``name``, then ``phonetic``), {pr}: a Practitioner of the test
FORMS = [
    "Patient?{c}=chal",
    "Patient?{c}=CHAL&_total=accurate",
    "Patient?{c}=chal,jim",
    "Patient?{c}=chal&{c}=peter",
    "Patient?{c}=chal&gender=male",
    "Patient?{c}=chal%20o'h",
    "Patient?{c}=chal&_count=1",
    "Patient?{c}:exact=Chalmers",
    "Patient?{c}:exact=chalmers",
    "Patient?{c}:contains=alm",
    "Patient?{c}:contains=HAR",
    "Patient?{c}:text=chal",
    "Patient?{c}:text=peter james",
    "Patient?{c}:text=jim OR windsor",
    "Patient?{c}:text=o'hara",
    "Patient?{c}:text=-chalmers",
    "Patient?{c}:missing=true",
    "Patient?{c}:missing=false",
    "Patient?{c}:missing=false&_sort=-{c}",
    "Patient?_sort={c}",
    "Patient?_sort=-{c}",
    "Patient?_sort={c},-birthdate",
    "Patient?{c}:not=chal",
    "Patient?{c}:below=chal",
    "Patient?{c}:text=",
    "Patient?{c}:missing=maybe",
    "Observation?subject:Patient.{c}=chal",
    "Observation?patient.{c}:exact=Windsor",
    "Observation?subject.{c}:text=jim",
    "Observation?patient.{c}:missing=true",
    "Practitioner?_has:Patient:general-practitioner:{c}=chal",
    "Practitioner?_has:Patient:general-practitioner:{c}:contains=indso",
    "Observation?_has:Observation:has-member:patient.{c}=chal",
    "Practitioner/{pr}/Patient?{c}=chal",
    "Practitioner/{pr}/Patient?{c}:missing=true",
    "Patient?{c}=chal&_revinclude=Observation:subject",
    "Observation?patient.{c}=chal&_include=Observation:patient",
]


@pytest.fixture(scope="module")
def world() -> dict:
    return {}


async def _world(client: httpx.AsyncClient, world: dict) -> dict:
    if world:
        return world
    tag = uuid.uuid4().hex
    pr = await post_tagged(client, {"resourceType": "Practitioner", "name": [{"family": "Chalk"}]}, tag)
    gp = [{"reference": f"Practitioner/{pr}"}]
    patients = [
        {"name": [{"family": "Chalmers", "given": ["Peter", "James"]}, {"use": "nickname", "given": ["Jim"]}]},
        {"name": [{"family": "Windsor", "given": ["Chalmers"]}], "generalPractitioner": gp, "gender": "male"},
        {"name": [{"text": "Chal O'Hara"}], "generalPractitioner": gp},
        {"gender": "male", "generalPractitioner": gp, "birthDate": "1970"},
        {"name": [{"family": "Chalmers"}], "birthDate": "1980"},
        {"name": [{"family": "Adams", "given": ["Harriet"]}], "birthDate": "1990"},
    ]
    ids = [await post_tagged(client, {"resourceType": "Patient", **p}, tag) for p in patients]
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "alias"}}
    of = [await post_tagged(client, {**obs, "subject": {"reference": f"Patient/{i}"}}, tag) for i in ids]
    members = [{"reference": f"Observation/{o}"} for o in of[:2]]
    await post_tagged(client, {**obs, "hasMember": members, "subject": {"reference": f"Patient/{ids[0]}"}}, tag)
    world.update(tag=tag, pr=pr, patients=ids)
    return world


async def _answer(client: httpx.AsyncClient, path: str, tag: str) -> tuple:
    r = await client.get(f"/fhir/{path}&_tag={TAG}|{tag}")
    if r.status_code != 200:
        return r.status_code, r.json()["issue"][0]["code"]
    body = r.json()
    entries = [(e["search"]["mode"], e["resource"]["resourceType"], e["resource"]["id"]) for e in body.get("entry", [])]
    return 200, body.get("total"), entries


@pytest.mark.parametrize("form", FORMS)
async def test_phonetic_answers_as_name(client: httpx.AsyncClient, world: dict, form: str) -> None:
    w = await _world(client, world)
    name = await _answer(client, form.format(c="name", pr=w["pr"]), w["tag"])
    phonetic = await _answer(client, form.format(c="phonetic", pr=w["pr"]), w["tag"])
    assert phonetic == name
    assert name[0] != 200 or len(name[2]) > 0 or ":missing" in form or ":exact=chalmers" in form


async def test_phonetic_keeps_no_rows_and_its_errors_name_it(client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    tag = uuid.uuid4().hex
    pid = await post_tagged(client, {"resourceType": "Patient", "name": [{"family": "Rowless"}]}, tag)
    where = "c.id = $1 AND s.param IN ('family', 'name', 'phonetic') ORDER BY 1"  # others' custom ones aside
    sql = side_rows_sql("sp_patient_string", "cur_patient", "DISTINCT s.param", where)
    assert [r["param"] for r in await pool.fetch(sql, pid)] == ["family", "name"]  # no phonetic row
    r = await client.get("/fhir/Patient?phonetic:text=%20")
    assert r.status_code == 400 and "'phonetic'" in r.text
    r = await client.get(f"/fhir/Patient?phonetic=rowless&_tag={TAG}|{tag}")
    assert [e["resource"]["id"] for e in r.json()["entry"]] == [pid]
    practitioner = await post_tagged(client, {"resourceType": "Practitioner", "name": [{"given": ["Rowless"]}]}, tag)
    r = await client.get(f"/fhir/Practitioner?phonetic:exact=Rowless&_tag={TAG}|{tag}")
    assert [e["resource"]["id"] for e in r.json()["entry"]] == [practitioner]
    cs = (await client.get("/fhir/metadata")).json()
    for resource in cs["rest"][0]["resource"]:
        if resource["type"] in ("Patient", "Practitioner"):
            assert "phonetic" in {p["name"] for p in resource["searchParam"]}


async def test_other_identical_aliases(client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    """A reference (DeviceUseStatement ``subject`` is ``patient``'s rows), a uri (CodeSystem ``url``
    is ``system``'s) and a token (CapabilityStatement ``version`` is ``fhirversion``'s)."""
    tag = uuid.uuid4().hex
    pid = await post_tagged(client, {"resourceType": "Patient", "name": [{"family": f"Dus{tag[:6]}"}]}, tag)
    device = await post_tagged(client, {"resourceType": "Device"}, tag)
    dus = {"resourceType": "DeviceUseStatement", "status": "active", "device": {"reference": f"Device/{device}"}}
    used = await post_tagged(client, {**dus, "subject": {"reference": f"Patient/{pid}"}}, tag)
    sql = side_rows_sql(
        "sp_device_use_statement_reference",
        "cur_device_use_statement",
        "s.param",
        "c.id = $1 AND s.param IN ('device', 'patient', 'subject')",
    )
    assert sorted(r["param"] for r in await pool.fetch(sql, used)) == ["device", "patient"]
    for form, expected in [
        (f"DeviceUseStatement?subject={pid}", [("match", "DeviceUseStatement", used)]),
        (f"DeviceUseStatement?subject:Patient.family=Dus{tag[:6]}", [("match", "DeviceUseStatement", used)]),
        ("DeviceUseStatement?subject:missing=false", [("match", "DeviceUseStatement", used)]),
        (
            f"DeviceUseStatement?_id={used}&_include=DeviceUseStatement:subject",
            [("match", "DeviceUseStatement", used), ("include", "Patient", pid)],
        ),
        (
            f"Patient?_id={pid}&_revinclude=DeviceUseStatement:subject",
            [("match", "Patient", pid), ("include", "DeviceUseStatement", used)],
        ),
        ("Patient?_has:DeviceUseStatement:subject:device=" + device, [("match", "Patient", pid)]),
        (f"Patient/{pid}/DeviceUseStatement?_count=10", [("match", "DeviceUseStatement", used)]),
    ]:
        assert (await _answer(client, form, tag))[2] == expected, form
        assert await _answer(client, form.replace("subject", "patient"), tag) == await _answer(client, form, tag)
    system = f"http://fhirledger.test/cs/{tag}"
    cs = {"resourceType": "CodeSystem", "status": "active", "content": "complete", "url": system}
    code_system = await post_tagged(client, cs, tag)
    caps = {"resourceType": "CapabilityStatement", "status": "active", "kind": "requirements", "date": "2024"}
    caps |= {"description": "aliases", "rest": [{"mode": "server"}]}
    capability = await post_tagged(
        client, {**caps, "fhirVersion": "4.0.1", "format": ["json"], "version": "4.0.1"}, tag
    )
    for alias, kept, value, found in [
        ("CodeSystem?url", "CodeSystem?system", system, code_system),
        ("CodeSystem?url:below", "CodeSystem?system:below", "http://fhirledger.test/cs", code_system),
        ("CapabilityStatement?version", "CapabilityStatement?fhirversion", "4.0.1", capability),
    ]:
        assert (await _answer(client, f"{alias}={value}", tag))[2] == [("match", alias.split("?")[0], found)]
        assert await _answer(client, f"{alias}={value}", tag) == await _answer(client, f"{kept}={value}", tag)
        missing = alias.split(":")[0] + ":missing=true"
        assert (await _answer(client, missing, tag))[2] == [], missing
        assert await _answer(client, missing, tag) == await _answer(client, kept.split(":")[0] + ":missing=true", tag)
