"""Parameters answered from others' rows (:mod:`app.search_types.param_aliases`) keep none of
their own, and every way of searching them answers as before. Narrowed reference parameters
(Observation ``patient`` is ``subject.where(resolve() is Patient)``) read the wider parameter's rows
of the target type (searches, ``:[type]``, ``:identifier``, ``:missing``, chains, ``_has``,
``_include``, ``_revinclude``, compartments, ``_sort``); unions (``combo-value-quantity``) their
parts'."""

from __future__ import annotations

import uuid

import asyncpg
import httpx

from app.fhirpath.references import resolve_stub
from app.fhirspec.resource_types import resource_types
from app.fhirspec.search_parameters import params_for
from app.search_types.extraction import extract_values
from app.search_types.param_aliases import Stored, aliases, stored_code
from tests.helpers import TAG, post_tagged, side_rows_sql


def test_aliases_are_derived_from_the_expressions() -> None:
    assert stored_code("Observation", "patient") == ("subject", "Patient")
    assert stored_code("Encounter", "practitioner") == ("participant", "Practitioner")
    assert aliases("Observation")["combo-value-quantity"] == Stored(("component-value-quantity", "value-quantity"))
    assert "combo-code" not in aliases("Observation")  # a token keeps its id-ordered index range
    assert aliases("Observation")["combo-code-value-quantity"] == Stored(
        ("code-value-quantity", "component-code-value-quantity")
    )
    assert stored_code("Observation", "subject") == ("subject", None)
    assert "patient" not in aliases("AllergyIntolerance")  # AllergyIntolerance.patient: its own element
    assert sum(len(aliases(t)) for t in resource_types()) > 40


def _subjects() -> list[dict]:
    return [
        {"reference": "Patient/p1"},
        {"reference": "Group/g1"},
        {"reference": "http://elsewhere.org/fhir/Patient/7"},
        {"reference": "#c1"},
        {"reference": "#c2"},
        {"reference": "urn:uuid:9a3d0c4e-0000-4000-8000-000000000001"},
        {"identifier": {"system": "http://ids", "value": "42"}, "type": "Patient"},
        {"identifier": {"system": "http://ids", "value": "43"}},
        {"reference": "Patient/p2", "type": "Group"},
    ]


def test_narrowed_values_are_the_wider_ones_of_the_type() -> None:
    """For every alias the R4 expressions give, on references of every form: the narrowed
    parameter's values are exactly the wider one's whose target type is the type."""
    contained = [{"resourceType": "Patient", "id": "c1"}, {"resourceType": "Group", "id": "c2"}]
    checked = 0
    for resource_type in ("Observation", "Encounter", "Condition", "DiagnosticReport", "MedicationRequest"):
        params = params_for(resource_type)
        for narrow, ((wide,), target) in ((c, s) for c, s in aliases(resource_type).items() if s.target_type):
            element = params[wide].expression_for(resource_type).split(".")[1].split("|")[0].strip()
            for subject in _subjects():
                value = [subject] if element in ("performer", "participant", "basedOn") else subject
                resource = {"resourceType": resource_type, "contained": contained, element: value}
                wide_values = [v for v in extract_values(resource, params[wide]) if v.type == target]
                assert extract_values(resource, params[narrow]) == wide_values, (resource_type, narrow, subject)
                checked += 1
    assert checked > 50
    assert resolve_stub({"reference": "#c1"}, {"contained": contained}) == contained[0]


async def _ids(client: httpx.AsyncClient, query: str, tag: str, resource_type: str = "Observation") -> list[str]:
    r = await client.get(f"/fhir/{resource_type}?{query}&_tag={TAG}|{tag}")
    assert r.status_code == 200, r.text
    return sorted(e["resource"]["id"] for e in r.json().get("entry", []) if e["search"]["mode"] == "match")


async def _entries(client: httpx.AsyncClient, path: str) -> list[tuple[str, str, str]]:
    r = await client.get(path)
    assert r.status_code == 200, r.text
    return sorted(
        (e["search"]["mode"], e["resource"]["resourceType"], e["resource"]["id"]) for e in r.json().get("entry", [])
    )


async def test_narrowed_parameter_searches(client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    tag = uuid.uuid4().hex
    family = f"Alias{tag[:8]}"
    patient = await post_tagged(client, {"resourceType": "Patient", "name": [{"family": family}]}, tag)
    group = await post_tagged(client, {"resourceType": "Group", "type": "person", "actual": True}, tag)
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "alias"}}
    of_patient = await post_tagged(client, {**obs, "subject": {"reference": f"Patient/{patient}"}}, tag)
    of_group = await post_tagged(client, {**obs, "subject": {"reference": f"Group/{group}"}}, tag)
    by_ident = await post_tagged(
        client, {**obs, "subject": {"type": "Patient", "identifier": {"system": "http://ids", "value": tag}}}, tag
    )
    none = await post_tagged(client, obs, tag)
    rows = await pool.fetch(
        side_rows_sql("sp_observation_reference", "cur_observation", "DISTINCT s.param", "c.id = ANY($1)"),
        [of_patient],
    )
    assert [r["param"] for r in rows] == ["subject"]  # no row of its own for `patient`
    assert await _ids(client, f"patient=Patient/{patient}", tag) == [of_patient]
    assert await _ids(client, f"patient={patient}", tag) == [of_patient]
    assert await _ids(client, f"patient:Patient={patient}", tag) == [of_patient]
    assert await _ids(client, f"patient={group}", tag) == []  # the Group is the subject, not a patient
    assert await _ids(client, f"subject={group}", tag) == [of_group]
    assert await _ids(client, f"patient:identifier=http://ids|{tag}", tag) == [by_ident]
    assert await _ids(client, "patient:missing=true", tag) == sorted([of_group, none])
    assert await _ids(client, "patient:missing=false", tag) == sorted([of_patient, by_ident])
    assert await _ids(client, f"patient.family={family}", tag) == [of_patient]
    assert await _ids(client, f"patient:Patient.family={family}", tag) == [of_patient]
    assert await _ids(client, "_has:Observation:patient:code:text=alias", tag, "Patient") == [patient]
    assert await _ids(client, f"_has:Observation:subject:_id={of_group}", tag, "Group") == [group]
    assert await _ids(client, "_sort=patient", tag) != []
    included = await _entries(client, f"/fhir/Observation?_id={of_patient},{of_group}&_include=Observation:patient")
    assert ("include", "Patient", patient) in included and ("include", "Group", group) not in included
    included = await _entries(client, f"/fhir/Observation?_id={of_patient},{of_group}&_include=Observation:subject")
    assert ("include", "Group", group) in included
    rev = await _entries(client, f"/fhir/Patient?_id={patient}&_revinclude=Observation:patient")
    assert ("include", "Observation", of_patient) in rev
    rev = await _entries(client, f"/fhir/Group?_id={group}&_revinclude=Observation:patient")
    assert [e for e in rev if e[0] == "include"] == []
    compartment = await _entries(client, f"/fhir/Patient/{patient}/Observation")
    assert compartment == [("match", "Observation", of_patient)]


def test_union_rows_are_their_parts_rows() -> None:
    """On Synthea's Observations (and one with components): a union parameter's rows, computed as
    before, are exactly its parts' rows (each distinct value once)."""
    from app.projections.search_index import value_rows
    from tests.search_extract.test_row_functions import _synthea

    observations = [r for r in _synthea() if r["resourceType"] == "Observation"]
    assert any("component" in o for o in observations)
    params = params_for("Observation")
    unions = {c: s for c, s in aliases("Observation").items() if s.target_type is None}
    for resource in observations:
        for union, stored in unions.items():
            kind = "composite" if params[union].type == "composite" else None
            own: dict = {k: [] for k in ("token", "quantity", "composite", "text")}
            value_rows(union, extract_values(resource, params[union]), own)
            parts: dict = {k: [] for k in own}
            for part in stored.codes:
                value_rows(part, extract_values(resource, params[part]), parts)
            for k in kind and (kind,) or ("token", "quantity"):
                assert {r[1:] for r in own[k]} == {r[1:] for r in parts[k]}, (union, resource["id"], k)


async def test_union_parameter_searches(client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    tag = uuid.uuid4().hex
    loinc = "http://loinc.org"
    panel = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": loinc, "code": "85354-9"}], "text": "Blood pressure panel"},
        "component": [
            {
                "code": {"coding": [{"system": loinc, "code": "8480-6"}], "text": "Systolic"},
                "valueQuantity": {
                    "value": 120,
                    "unit": "mm[Hg]",
                    "system": "http://unitsofmeasure.org",
                    "code": "mm[Hg]",
                },
            }
        ],
    }
    weight = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": loinc, "code": "29463-7"}], "text": "Body weight"},
        "valueQuantity": {"value": 80, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"},
    }
    a, b = await post_tagged(client, panel, tag), await post_tagged(client, weight, tag)
    rows = await pool.fetch(
        side_rows_sql("sp_observation_quantity", "cur_observation", "DISTINCT s.param", "c.id = ANY($1)"),
        [a, b],
    )
    assert {r["param"] for r in rows} == {"value-quantity", "component-value-quantity"}
    rows = await pool.fetch(
        side_rows_sql("sp_observation_composite", "cur_observation", "DISTINCT s.param", "c.id = ANY($1)"),
        [a, b],
    )
    assert "combo-code-value-quantity" not in {r["param"] for r in rows}
    assert await _ids(client, "combo-code=8480-6", tag) == [a]  # a component's code
    assert await _ids(client, "combo-code=29463-7", tag) == [b]  # the code
    assert await _ids(client, "combo-code=8480-6,29463-7", tag) == sorted([a, b])
    assert await _ids(client, "combo-code:not=8480-6", tag) == [b]
    assert await _ids(client, "combo-code:missing=false", tag) == sorted([a, b])
    assert await _ids(client, "combo-value-quantity=gt100", tag) == [a]
    assert await _ids(client, "combo-value-quantity=80||kg", tag) == [b]
    assert await _ids(client, "combo-code-value-quantity=8480-6$gt100", tag) == [a]
    assert await _ids(client, "combo-code-value-quantity=29463-7$80", tag) == [b]
    assert await _ids(client, "combo-code-value-quantity=29463-7$120", tag) == []
    assert await _ids(client, "combo-code:text=systolic", tag) == [a]  # its :text rows stay
    r = await client.get(f"/fhir/Observation?_tag={TAG}|{tag}&_sort=combo-code")
    assert [e["resource"]["id"] for e in r.json()["entry"]] == [b, a]  # 29463-7 < 85354-9 (min of a: 8480-6)


def test_dependents_are_reindexed_with_the_code() -> None:
    """A custom definition of ``subject`` or ``value-quantity`` ends their answering ``patient`` and
    ``combo-value-quantity`` (which then need rows of their own): the reindex of the code rebuilds
    theirs."""
    from app.search_types.param_aliases import dependents

    assert "patient" in dependents("subject", ["Observation", "Encounter"])
    assert dependents("subject", ["Observation"])["patient"] == ["Observation"]
    assert dependents("value-quantity", ["Observation"]) == {"combo-value-quantity": ["Observation"]}
    assert dependents("status", ["Observation"]) == {}
