"""Search over HTTP, per parameter type, modifier and prefix, with the spec's boundary cases
(https://hl7.org/fhir/R4/search.html). Each test tags its resources and searches within its tag."""

from __future__ import annotations

import uuid

import httpx
import pytest

TAG_SYSTEM = "http://fhirledger.test/tag"


class Scope:
    """Resources of one test, found again through their shared ``_tag``."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.tag = uuid.uuid4().hex
        self.ids: dict[str, str] = {}

    async def add(self, name: str, resource: dict) -> str:
        resource = {**resource, "meta": {"tag": [{"system": TAG_SYSTEM, "code": self.tag}]}}
        r = await self.client.post(f"/fhir/{resource['resourceType']}", json=resource)
        assert r.status_code == 201, r.text
        self.ids[name] = r.json()["id"]
        return self.ids[name]

    async def bundle(self, resource_type: str, query: str = "", **headers: str) -> dict:
        sep = "&" if query else ""
        r = await self.client.get(
            f"/fhir/{resource_type}?{query}{sep}_tag={TAG_SYSTEM}|{self.tag}&_count=100", headers=headers
        )
        assert r.status_code == 200, r.text
        return r.json()

    async def find(self, resource_type: str, query: str) -> set[str]:
        bundle = await self.bundle(resource_type, query)
        names = {v: k for k, v in self.ids.items()}
        return {names[e["resource"]["id"]] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"}


@pytest.fixture
def scope(client: httpx.AsyncClient) -> Scope:
    return Scope(client)


def pat(**fields: object) -> dict:
    return {"resourceType": "Patient", **fields}


async def test_string_is_case_and_accent_insensitive_prefix(scope: Scope) -> None:
    await scope.add("jose", pat(name=[{"family": "Núñez", "given": ["José"]}]))
    await scope.add("josephine", pat(name=[{"family": "Smith", "given": ["Josephine"]}]))
    await scope.add("other", pat(name=[{"family": "Brown", "given": ["Ann"], "prefix": ["Dr"]}]))
    assert await scope.find("Patient", "name=jose") == {"jose", "josephine"}
    assert await scope.find("Patient", "name=JOSÉ") == {"jose", "josephine"}
    assert await scope.find("Patient", "family=nunez") == {"jose"}
    assert await scope.find("Patient", "given=ann") == {"other"}
    assert await scope.find("Patient", "name=dr") == {"other"}  # any part of a HumanName
    assert await scope.find("Patient", "name:exact=José") == {"jose"}
    assert await scope.find("Patient", "name:exact=jose") == set()
    assert await scope.find("Patient", "name:contains=phin") == {"josephine"}
    assert await scope.find("Patient", "name=ose") == set()


async def test_address_matches_any_part(scope: Scope) -> None:
    await scope.add(
        "a", pat(address=[{"line": ["1 Main St"], "city": "Springfield", "postalCode": "12345", "country": "USA"}])
    )
    await scope.add("b", pat(address=[{"city": "Shelbyville", "state": "IL"}]))
    assert await scope.find("Patient", "address=1%20main") == {"a"}
    assert await scope.find("Patient", "address=main") == set()  # starts-with, not word match
    assert await scope.find("Patient", "address=12345") == {"a"}
    assert await scope.find("Patient", "address-city=spring") == {"a"}
    assert await scope.find("Patient", "address-state=il") == {"b"}


async def test_token_forms(scope: Scope) -> None:
    await scope.add(
        "a",
        pat(
            gender="male",
            active=True,
            identifier=[
                {
                    "system": "http://mrn",
                    "value": "A1",
                    "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
                }
            ],
        ),
    )
    await scope.add("b", pat(gender="female", active=False, identifier=[{"value": "A1"}]))
    await scope.add(
        "c",
        pat(
            identifier=[{"system": "http://other", "value": "B2"}],
            telecom=[{"system": "email", "value": "c@example.org"}],
        ),
    )
    assert await scope.find("Patient", "gender=male") == {"a"}
    assert await scope.find("Patient", "identifier=http://mrn|A1") == {"a"}
    assert await scope.find("Patient", "identifier=A1") == {"a", "b"}
    assert await scope.find("Patient", "identifier=|A1") == {"b"}
    assert await scope.find("Patient", "identifier=http://other|") == {"c"}
    assert await scope.find("Patient", "active=true") == {"a"}
    assert await scope.find("Patient", "active=false") == {"b"}
    assert await scope.find("Patient", "gender:not=male") == {"b", "c"}
    assert await scope.find("Patient", "identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|A1") == {
        "a"
    }
    assert await scope.find("Patient", "email=c@example.org") == {"c"}
    assert await scope.find("Patient", "telecom=c@example.org") == {"c"}


async def test_codeable_concept_tokens_and_text(scope: Scope) -> None:
    obs = {"resourceType": "Observation", "status": "final"}
    await scope.add(
        "hb",
        {
            **obs,
            "code": {
                "coding": [
                    {"system": "http://loinc.org", "code": "718-7"},
                    {"system": "http://snomed.info/sct", "code": "271026005"},
                ],
                "text": "Hemoglobin",
            },
        },
    )
    await scope.add(
        "glu",
        {
            **obs,
            "code": {
                "coding": [
                    {"system": "http://loinc.org", "code": "2339-0", "display": "Glucose [Mass/volume] in Blood"}
                ]
            },
        },
    )
    assert await scope.find("Observation", "code=718-7") == {"hb"}
    assert await scope.find("Observation", "code=http://snomed.info/sct|271026005") == {"hb"}
    assert await scope.find("Observation", "code=http://loinc.org|") == {"hb", "glu"}
    assert await scope.find("Observation", "code=http://loinc.org|271026005") == set()
    assert await scope.find("Observation", "code:text=hemo") == {"hb"}
    assert await scope.find("Observation", "code:text=glucose") == {"glu"}
    assert await scope.find("Observation", "code=718-7,2339-0") == {"hb", "glu"}


async def test_dates_are_ranges_with_prefixes(scope: Scope) -> None:
    await scope.add("d1974", pat(birthDate="1974-12-25"))
    await scope.add("d1975", pat(birthDate="1975-01-01"))
    await scope.add("dmonth", pat(birthDate="1974-12"))
    f = scope.find
    assert await f("Patient", "birthdate=1974") == {"d1974", "dmonth"}
    assert await f("Patient", "birthdate=1974-12-25") == {"d1974"}
    assert await f("Patient", "birthdate=eq1974-12") == {"d1974", "dmonth"}
    assert await f("Patient", "birthdate=ne1974") == {"d1975"}
    assert await f("Patient", "birthdate=gt1974-12-25") == {"d1975", "dmonth"}
    assert await f("Patient", "birthdate=lt1975") == {"d1974", "dmonth"}
    assert await f("Patient", "birthdate=ge1975-01-01") == {"d1975"}
    assert await f("Patient", "birthdate=le1974-12-25") == {"d1974", "dmonth"}
    assert await f("Patient", "birthdate=sa1974-12-31") == {"d1975"}
    assert await f("Patient", "birthdate=eb1975") == {"d1974", "dmonth"}
    assert await f("Patient", "birthdate=ap1974-12-24") >= {"d1974"}
    # a month-precision date overlaps both bounds: the spec's ge/lt test overlap, not containment
    assert await f("Patient", "birthdate=ge1974-12-01&birthdate=lt1974-12-31") == {"d1974", "dmonth"}
    assert await f("Patient", "birthdate=ge1974-12-02&birthdate=le1974-12-25") == {"d1974", "dmonth"}
    assert await f("Patient", "birthdate=gt1974-12-31") == {"d1975"}


async def test_datetime_timezones_and_periods(scope: Scope) -> None:
    enc = {"resourceType": "Encounter", "status": "finished", "class": {"code": "AMB"}}
    await scope.add(
        "morning", {**enc, "period": {"start": "2021-03-04T09:00:00+02:00", "end": "2021-03-04T10:00:00+02:00"}}
    )
    await scope.add("open", {**enc, "period": {"start": "2021-03-05T12:00:00Z"}})
    f = scope.find
    assert await f("Encounter", "date=2021-03-04") == {"morning"}
    assert await f("Encounter", "date=2021-03-04T07:30:00Z") == set()  # eq needs containment
    assert await f("Encounter", "date=ap2021-03-04T07:30:00Z") >= {"morning"}
    assert await f("Encounter", "date=gt2021-03-04T07:59:00Z") == {"morning", "open"}
    assert await f("Encounter", "date=lt2021-03-04T07:00:00Z") == set()
    assert await f("Encounter", "date=lt2021-03-04T07:01:00Z") == {"morning"}
    assert await f("Encounter", "date=gt2030-01-01") == {"open"}  # an open end extends forever
    assert await f("Encounter", "date=sa2021-03-04") == {"open"}


async def test_quantity_and_number(scope: Scope) -> None:
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "w"}}
    ucum = "http://unitsofmeasure.org"
    await scope.add("w100", {**obs, "valueQuantity": {"value": 100, "system": ucum, "code": "kg", "unit": "kg"}})
    await scope.add("w99", {**obs, "valueQuantity": {"value": 99.4, "system": ucum, "code": "kg", "unit": "kg"}})
    await scope.add("g100", {**obs, "valueQuantity": {"value": 100.2, "system": ucum, "code": "g", "unit": "gram"}})
    f = scope.find
    assert await f("Observation", "value-quantity=100") == {"w100", "g100"}  # 99.5 <= v < 100.5
    assert await f("Observation", "value-quantity=100.0") == {"w100"}
    assert await f("Observation", f"value-quantity=100|{ucum}|kg") == {"w100"}
    assert await f("Observation", "value-quantity=100||gram") == {"g100"}
    assert await f("Observation", "value-quantity=lt100") == {"w99"}
    assert await f("Observation", "value-quantity=ge100") == {"w100", "g100"}
    assert await f("Observation", f"value-quantity=gt99|{ucum}|kg") == {"w100", "w99"}
    risk = {"resourceType": "RiskAssessment", "status": "final", "subject": {"reference": "Patient/x"}}
    await scope.add("p02", {**risk, "prediction": [{"probabilityDecimal": 0.2}]})
    await scope.add("p08", {**risk, "prediction": [{"probabilityDecimal": 0.8}]})
    assert await f("RiskAssessment", "probability=0.2") == {"p02"}
    assert await f("RiskAssessment", "probability=gt0.5") == {"p08"}
    assert await f("RiskAssessment", "probability=le0.8") == {"p02", "p08"}


async def test_references(scope: Scope, client: httpx.AsyncClient) -> None:
    pid = await scope.add("p", pat(name=[{"family": "Ref"}]))
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "r"}}
    await scope.add("o1", {**obs, "subject": {"reference": f"Patient/{pid}"}})
    await scope.add("o2", {**obs, "subject": {"reference": "Group/g1"}})
    await scope.add("o3", {**obs, "subject": {"reference": "http://elsewhere.org/fhir/Patient/77"}})
    await scope.add("o4", {**obs, "subject": {"identifier": {"system": "http://mrn", "value": "M9"}}})
    f = scope.find
    assert await f("Observation", f"subject=Patient/{pid}") == {"o1"}
    assert await f("Observation", f"subject={pid}") == {"o1"}
    assert await f("Observation", f"subject:Patient={pid}") == {"o1"}
    assert await f("Observation", f"patient={pid}") == {"o1"}
    assert await f("Observation", "patient=g1") == set()  # patient only follows Patient references
    assert await f("Observation", f"subject=http://testserver/fhir/Patient/{pid}") == {"o1"}
    assert await f("Observation", "subject=http://elsewhere.org/fhir/Patient/77") == {"o3"}
    assert await f("Observation", "subject:identifier=http://mrn|M9") == {"o4"}


async def test_uri_below_and_above(scope: Scope) -> None:
    vs = {"resourceType": "ValueSet", "status": "active"}
    await scope.add("a", {**vs, "url": "http://acme.org/fhir/ValueSet/123"})
    await scope.add("b", {**vs, "url": "http://acme.org/fhir/ValueSet/123/_history/5"})
    await scope.add("c", {**vs, "url": "http://other.org/fhir/ValueSet/1"})
    f = scope.find
    assert await f("ValueSet", "url=http://acme.org/fhir/ValueSet/123") == {"a"}
    assert await f("ValueSet", "url:below=http://acme.org/fhir/") == {"a", "b"}
    assert await f("ValueSet", "url:above=http://acme.org/fhir/ValueSet/123/_history/5/x") == {"a", "b"}


async def test_composite_code_value_quantity(scope: Scope) -> None:
    base = {"resourceType": "Observation", "status": "final"}
    loinc, ucum = "http://loinc.org", "http://unitsofmeasure.org"
    await scope.add(
        "bp",
        {
            **base,
            "code": {"text": "BP"},
            "component": [
                {
                    "code": {"coding": [{"system": loinc, "code": "8480-6"}]},
                    "valueQuantity": {"value": 140, "system": ucum, "code": "mm[Hg]"},
                },
                {
                    "code": {"coding": [{"system": loinc, "code": "8462-4"}]},
                    "valueQuantity": {"value": 90, "system": ucum, "code": "mm[Hg]"},
                },
            ],
        },
    )
    await scope.add(
        "hb",
        {
            **base,
            "code": {"coding": [{"system": loinc, "code": "718-7"}]},
            "valueQuantity": {"value": 7.2, "system": ucum, "code": "g/dL"},
        },
    )
    f = scope.find
    assert await f("Observation", f"code-value-quantity={loinc}|718-7$lt8") == {"hb"}
    assert await f("Observation", "code-value-quantity=718-7$gt8") == set()
    assert await f("Observation", "component-code-value-quantity=8480-6$gt130") == {"bp"}
    # the components must match on the same component: 8462-4 is 90, not > 130
    assert await f("Observation", "component-code-value-quantity=8462-4$gt130") == set()


async def test_missing_or_and(scope: Scope) -> None:
    await scope.add("g", pat(gender="male", birthDate="2000-01-01"))
    await scope.add("n", pat(birthDate="2001-01-01"))
    f = scope.find
    assert await f("Patient", "gender:missing=true") == {"n"}
    assert await f("Patient", "gender:missing=false") == {"g"}
    assert await f("Patient", "birthdate=2000,2001") == {"g", "n"}
    assert await f("Patient", "birthdate=2000&gender=male") == {"g"}
    assert await f("Patient", "birthdate=2001&gender=male") == set()


async def test_updates_reindex_and_deletes_vanish(scope: Scope, client: httpx.AsyncClient) -> None:
    pid = await scope.add("p", pat(name=[{"family": "Before"}]))
    assert await scope.find("Patient", "family=before") == {"p"}
    body = pat(id=pid, name=[{"family": "After"}], meta={"tag": [{"system": TAG_SYSTEM, "code": scope.tag}]})
    assert (await client.put(f"/fhir/Patient/{pid}", json=body)).status_code == 200
    assert await scope.find("Patient", "family=before") == set()
    assert await scope.find("Patient", "family=after") == {"p"}
    await client.delete(f"/fhir/Patient/{pid}")
    assert await scope.find("Patient", "family=after") == set()


async def test_id_and_last_updated(scope: Scope, client: httpx.AsyncClient) -> None:
    a = await scope.add("a", pat())
    await scope.add("b", pat())
    assert await scope.find("Patient", f"_id={a}") == {"a"}
    updated = (await client.get(f"/fhir/Patient/{a}")).json()["meta"]["lastUpdated"]
    assert "a" in await scope.find("Patient", f"_lastUpdated={updated}")
    assert await scope.find("Patient", "_lastUpdated=gt2000-01-01") == {"a", "b"}
    assert await scope.find("Patient", "_lastUpdated=lt2000-01-01") == set()


async def test_number_and_quantity_ne_and_ap(scope: Scope) -> None:
    risk = {"resourceType": "RiskAssessment", "status": "final", "subject": {"reference": "Patient/x"}}
    await scope.add("p10", {**risk, "prediction": [{"probabilityDecimal": 0.10}]})
    await scope.add("p50", {**risk, "prediction": [{"probabilityDecimal": 0.50}]})
    await scope.add("p52", {**risk, "prediction": [{"probabilityDecimal": 0.52}]})
    f = scope.find
    assert await f("RiskAssessment", "probability=ne0.5") == {"p10"}  # 0.5 means [0.45, 0.55): 0.52 is in it
    assert await f("RiskAssessment", "probability=ne0.50") == {"p10", "p52"}  # [0.495, 0.505)
    assert await f("RiskAssessment", "probability=ap0.5") == {"p50", "p52"}  # within 10%
    assert await f("RiskAssessment", "probability=sa0.5") == {"p52"}
    assert await f("RiskAssessment", "probability=eb0.5") == {"p10"}
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "q"}}
    ucum = "http://unitsofmeasure.org"
    await scope.add("q100", {**obs, "valueQuantity": {"value": 100, "system": ucum, "code": "mg"}})
    await scope.add("q120", {**obs, "valueQuantity": {"value": 120, "system": ucum, "code": "mg"}})
    assert await f("Observation", f"value-quantity=ne100|{ucum}|mg") == {"q120"}
    assert await f("Observation", "value-quantity=ap105||mg") == {"q100"}
