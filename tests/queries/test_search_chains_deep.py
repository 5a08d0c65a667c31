"""Chains of several levels and nested ``_has`` (https://hl7.org/fhir/R4/search.html#chaining,
#has), with the cap on their depth."""

from __future__ import annotations

import httpx

from tests.queries.test_search import Scope, pat

OBS = {"resourceType": "Observation", "status": "final", "code": {"text": "c"}}


async def _world(s: Scope) -> None:
    root = await s.add("root", {"resourceType": "Organization", "name": "Rootorg"})
    parent = await s.add(
        "parent", {"resourceType": "Organization", "name": "Parentorg", "partOf": {"reference": f"Organization/{root}"}}
    )
    org = await s.add(
        "org", {"resourceType": "Organization", "name": "Deeporg", "partOf": {"reference": f"Organization/{parent}"}}
    )
    doc = await s.add("doc", {"resourceType": "Practitioner", "name": [{"family": "Deepdoc"}]})
    other_doc = await s.add("otherdoc", {"resourceType": "Practitioner", "name": [{"family": "Shallowdoc"}]})
    p1 = await s.add(
        "p1",
        pat(
            generalPractitioner=[{"reference": f"Practitioner/{doc}"}],
            managingOrganization={"reference": f"Organization/{org}"},
        ),
    )
    p2 = await s.add("p2", pat(generalPractitioner=[{"reference": f"Practitioner/{other_doc}"}]))
    enc = await s.add(
        "enc",
        {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"code": "AMB"},
            "subject": {"reference": f"Patient/{p1}"},
        },
    )
    await s.add(
        "o1", {**OBS, "subject": {"reference": f"Patient/{p1}"}, "performer": [{"reference": f"Practitioner/{doc}"}]}
    )
    await s.add("o2", {**OBS, "subject": {"reference": f"Patient/{p2}"}})
    coded = {**OBS, "code": {"coding": [{"system": "http://loinc.org", "code": "8310-5"}]}}
    await s.add("o3", {**coded, "encounter": {"reference": f"Encounter/{enc}"}})


async def test_chains_of_several_levels(client: httpx.AsyncClient) -> None:
    s = Scope(client)
    await _world(s)
    assert await s.find("Observation", "subject:Patient.general-practitioner.name=deepdoc") == {"o1"}
    assert await s.find("Observation", "subject:Patient.general-practitioner:Practitioner.name=deepdoc") == {"o1"}
    assert await s.find("Observation", "subject:Patient.general-practitioner.name=shallowdoc") == {"o2"}
    assert await s.find("Observation", "patient.organization.name=deeporg") == {"o1"}
    assert await s.find("Observation", "patient.organization.partof.name=parentorg") == {"o1"}
    assert await s.find("Observation", "patient.organization.partof.partof.name=rootorg") == {"o1"}
    assert await s.find("Observation", "patient.organization.partof.name=rootorg") == set()
    assert await s.find("Patient", "organization.partof.partof.name=rootorg,nothing") == {"p1"}
    assert await s.find("Observation", "encounter.patient.general-practitioner.name=deepdoc") == {"o3"}


async def test_nested_has_and_chains_inside_has(client: httpx.AsyncClient) -> None:
    s = Scope(client)
    await _world(s)
    assert await s.find("Patient", "_has:Encounter:patient:_has:Observation:encounter:code=8310-5") == {"p1"}
    assert await s.find("Patient", "_has:Encounter:patient:_has:Observation:encounter:code=0000-0") == set()
    assert await s.find("Patient", "_has:Observation:subject:performer:Practitioner.name=deepdoc") == {"p1"}
    assert await s.find("Organization", "_has:Patient:organization:_has:Observation:subject:status=final") == {"org"}
    assert await s.find("Organization", "_has:Organization:partof:_has:Organization:partof:name=deeporg") == {"root"}


async def test_chain_depth_is_capped_with_a_clear_400(client: httpx.AsyncClient, log_count) -> None:
    before = await log_count()
    deep = "patient.organization.partof.partof.partof.name=x"
    for headers in ({}, {"Prefer": "handling=lenient"}):
        r = await client.get(f"/fhir/Observation?{deep}", headers=headers)
        assert r.status_code == 400, r.text
        assert "depth" in r.json()["issue"][0]["diagnostics"] and "4" in r.json()["issue"][0]["diagnostics"]
    nested = "_has:Organization:partof:" * 5 + "name=x"
    r = await client.get(f"/fhir/Organization?{nested}")
    assert r.status_code == 400 and "depth" in r.json()["issue"][0]["diagnostics"]
    bad = await client.get("/fhir/Observation?patient.organization.nonsense=1")
    assert bad.status_code == 400 and "nonsense" in bad.json()["issue"][0]["diagnostics"]
    lenient = await client.get(
        "/fhir/Observation?patient.organization.nonsense=1&_count=1", headers={"Prefer": "handling=lenient"}
    )
    assert lenient.status_code == 200
    assert await log_count() == before
