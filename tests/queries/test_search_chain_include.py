"""Chained parameters (one level), _include and _revinclude (https://hl7.org/fhir/R4/search.html#chaining)."""

from __future__ import annotations

import httpx

from tests.queries.test_search import Scope, pat


async def _data(s: Scope) -> tuple[str, str]:
    alice = await s.add("alice", pat(name=[{"family": "Chainfield"}], gender="female"))
    bob = await s.add("bob", pat(name=[{"family": "Otherfield"}], gender="male"))
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "c"}}
    await s.add("oa", {**obs, "subject": {"reference": f"Patient/{alice}"}})
    await s.add("ob", {**obs, "subject": {"reference": f"Patient/{bob}"}})
    await s.add("og", {**obs, "subject": {"reference": "Group/g"}})
    return alice, bob


async def test_chained_parameters(client: httpx.AsyncClient) -> None:
    s = Scope(client)
    await _data(s)
    assert await s.find("Observation", "subject:Patient.name=chainfield") == {"oa"}
    assert await s.find("Observation", "subject.name=otherfield") == {"ob"}
    assert await s.find("Observation", "patient.gender=female") == {"oa"}
    assert await s.find("Observation", "subject:Patient.gender=male,female") == {"oa", "ob"}
    strict = await client.get("/fhir/Observation?subject.nonsense=1", headers={"Prefer": "handling=strict"})
    assert strict.status_code == 400


async def test_include_and_revinclude(client: httpx.AsyncClient) -> None:
    s = Scope(client)
    alice, _ = await _data(s)
    bundle = await s.bundle("Observation", "subject:Patient.name=chainfield&_include=Observation:subject")
    modes = {(e["resource"]["resourceType"], e["search"]["mode"]) for e in bundle["entry"]}
    assert modes == {("Observation", "match"), ("Patient", "include")}
    assert bundle["total"] == 1
    assert any(e["resource"]["id"] == alice for e in bundle["entry"] if e["search"]["mode"] == "include")
    rev = await s.bundle("Patient", f"_id={alice}&_revinclude=Observation:subject")
    assert sorted((e["resource"]["resourceType"], e["search"]["mode"]) for e in rev["entry"]) == [
        ("Observation", "include"),
        ("Patient", "match"),
    ]
    bad = await client.get("/fhir/Observation?_include=Observation:code")
    assert bad.status_code == 400 and "not a reference" in bad.text


async def test_reverse_chaining_with_has(client: httpx.AsyncClient) -> None:
    s = Scope(client)
    alice, bob = await _data(s)
    loinc = {
        "resourceType": "Observation",
        "status": "final",
        "subject": {"reference": f"Patient/{bob}"},
        "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
    }
    await s.add("hb", loinc)
    assert await s.find("Patient", "_has:Observation:subject:code=718-7") == {"bob"}
    assert await s.find("Patient", "_has:Observation:patient:code=http://loinc.org|718-7&gender=male") == {"bob"}
    assert await s.find("Patient", "_has:Observation:subject:code=0000-0") == set()
    bad = await client.get("/fhir/Patient?_has:Observation:code:code=1", headers={"Prefer": "handling=strict"})
    assert bad.status_code == 400
