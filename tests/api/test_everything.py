"""``Patient/[id]/$everything`` (and ``Encounter/[id]/$everything``): exactly the compartment with
the resources it references, ``_since``, ``_type``, keyset pages through ``next`` links, GET and
POST alike, errors as OperationOutcomes, and what a token may see."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from app.fhirspec.resource_types import resource_types
from tests.api.authz_helpers import assert_refused, bearer_for
from tests.api.compartment_world import World, all_pages, follow, included, link, matches, outcome, put, world

LENIENT = {"Prefer": "handling=lenient"}


@pytest.fixture
async def w(client: httpx.AsyncClient) -> World:
    return await world(client)


def _compartment(w: World) -> set[str]:
    return {
        f"Patient/{w['p1']}",
        f"Observation/{w['o1']}",
        f"Observation/{w['o3']}",
        f"Encounter/{w['e1']}",
        f"Condition/{w['c1']}",
    }


async def _everything(client: httpx.AsyncClient, w: World, query: str = "", **headers: str) -> dict:
    r = await client.get(f"/fhir/Patient/{w['p1']}/$everything{query}", headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["type"] == "searchset"
    return r.json()


async def test_returns_exactly_the_compartment_and_what_it_references(client: httpx.AsyncClient, w: World) -> None:
    got = await _everything(client, w)
    assert matches(got)[0] == f"Patient/{w['p1']}", "the patient comes first"
    assert sorted(matches(got)) == sorted(_compartment(w)), "none of the other patient's data"
    assert sorted(included(got)) == sorted([f"Practitioner/{w['pr']}", f"Organization/{w['org']}"])
    assert f"Patient/{w['p2']}" not in included(got), "a referenced patient is not added (o3's subject)"
    assert link(got, "self") == f"http://testserver/fhir/Patient/{w['p1']}/$everything"
    assert link(got, "next") is None and "total" not in got


async def test_type_limits_matches_and_referenced_resources(client: httpx.AsyncClient, w: World) -> None:
    got = await _everything(client, w, "?_type=Observation")
    assert sorted(matches(got)) == sorted([f"Observation/{w['o1']}", f"Observation/{w['o3']}"])
    assert included(got) == []
    got = await _everything(client, w, "?_type=Observation,Practitioner&_type=Condition")
    assert set(matches(got)) == {f"Observation/{w['o1']}", f"Observation/{w['o3']}", f"Condition/{w['c1']}"}
    assert included(got) == [f"Practitioner/{w['pr']}"]


async def test_since_returns_what_changed_since(client: httpx.AsyncClient, w: World) -> None:
    await asyncio.sleep(0.01)
    stored = await put(
        client,
        {
            "resourceType": "Condition",
            "id": w["c1"],
            "subject": w.ref("p1"),
            "code": {"text": "changed"},
        },
    )
    since = stored["meta"]["lastUpdated"]
    got = await _everything(client, w, f"?_since={since.replace('+', '%2B')}")
    assert matches(got) == [f"Condition/{w['c1']}"]
    assert "_since=" in link(got, "self")
    later = await _everything(client, w, "?_since=2999-01-01T00:00:00Z")
    assert matches(later) == []


async def test_pages_through_next_links_without_duplicates(client: httpx.AsyncClient, w: World) -> None:
    first = await _everything(client, w, "?_count=2")
    assert len(matches(first)) == 2
    assert link(first, "next").startswith(f"http://testserver/fhir/Patient/{w['p1']}/$everything?")
    pages = await all_pages(client, first)
    seen = [m for page in pages for m in matches(page)]
    assert len(seen) == len(set(seen)) and set(seen) == _compartment(w)
    assert len(pages) == 3
    back = await follow(client, link(pages[-1], "previous"))
    assert matches(back) == matches(pages[1])
    for page in pages:  # what a page references comes with it
        for ref in included(page):
            assert ref.split("/")[0] in ("Practitioner", "Organization")


async def test_count_is_capped_with_a_warning(client: httpx.AsyncClient, w: World) -> None:
    got = await _everything(client, w, "?_count=100000")
    assert set(matches(got)) == _compartment(w)
    assert any("maximum page size" in text for text in outcome(got))
    assert link(got, "self").endswith("$everything?_count=1000")


async def test_post_with_parameters_answers_like_get(client: httpx.AsyncClient, w: World) -> None:
    body = {
        "resourceType": "Parameters",
        "parameter": [{"name": "_type", "valueCode": "Observation,Condition"}, {"name": "_count", "valueInteger": 2}],
    }
    r = await client.post(f"/fhir/Patient/{w['p1']}/$everything", json=body)
    assert r.status_code == 200, r.text
    got = await _everything(client, w, "?_type=Observation,Condition&_count=2")
    assert matches(r.json()) == matches(got) and link(r.json(), "next") == link(got, "next")
    empty = await client.post(f"/fhir/Patient/{w['p1']}/$everything")
    assert empty.status_code == 200 and set(matches(empty.json())) == _compartment(w)


async def test_encounter_everything(client: httpx.AsyncClient, w: World) -> None:
    r = await client.get(f"/fhir/Encounter/{w['e1']}/$everything")
    assert r.status_code == 200, r.text
    assert set(matches(r.json())) == {f"Encounter/{w['e1']}", f"Observation/{w['o1']}", f"Condition/{w['c1']}"}
    assert set(included(r.json())) == {f"Patient/{w['p1']}", f"Practitioner/{w['pr']}", f"Organization/{w['org']}"}


async def test_unknown_and_deleted_patients(client: httpx.AsyncClient, w: World, log_count) -> None:
    before = await log_count()
    assert_refused(await client.get("/fhir/Patient/no-such-one/$everything"), 404, "not-found", "Patient/no-such-one")
    assert await log_count() == before
    assert (await client.delete(f"/fhir/Patient/{w['p2']}")).status_code in (200, 204)
    assert_refused(await client.get(f"/fhir/Patient/{w['p2']}/$everything"), 410, "deleted", w["p2"])


@pytest.mark.parametrize(
    ("query", "status", "code", "text"),
    [
        ("?_type=Nonsense", 400, "invalid", "'Nonsense', which is not a FHIR R4 resource type"),
        ("?_type=Practitioner", 400, "invalid", "no type of the Patient compartment"),
        ("?_since=yesterday", 400, "invalid", "_since='yesterday'"),
        ("?_count=-1", 400, "invalid", "_count"),
        ("?_count=1&_count=2", 400, "invalid", "only once"),
        ("?start=2020-01-01", 400, "not-supported", "'start' is not supported"),
        ("?_page=forged", 400, "invalid", "_page"),
    ],
)
async def test_bad_parameters(
    client: httpx.AsyncClient, w: World, log_count, query: str, status: int, code: str, text: str
) -> None:
    before = await log_count()
    r = await client.get(f"/fhir/Patient/{w['p1']}/$everything{query}")
    assert_refused(r, status, code, text)
    assert await log_count() == before


async def test_lenient_handling_ignores_unsupported_parameters_with_a_warning(
    client: httpx.AsyncClient, w: World
) -> None:
    got = await _everything(client, w, "?start=2020-01-01", **LENIENT)
    assert set(matches(got)) == _compartment(w)
    assert any("'start' was ignored" in text for text in outcome(got))


async def test_only_patient_and_encounter(client: httpx.AsyncClient, w: World) -> None:
    assert_refused(await client.get(f"/fhir/Observation/{w['o1']}/$everything"), 400, "not-supported", "Patient")
    r = await client.post(f"/fhir/Patient/{w['p1']}/$everything", json={"resourceType": "Patient"})
    assert_refused(r, 400, "invalid", "Parameters")


async def test_patient_token_sees_its_own_record_only(auth_client: httpx.AsyncClient) -> None:
    w = await world(auth_client, bearer_for("system/*.cruds"))
    own = bearer_for("patient/*.rs", patient=w["p1"])
    r = await auth_client.get(f"/fhir/Patient/{w['p1']}/$everything", headers=own)
    assert r.status_code == 200, r.text
    assert set(matches(r.json())) == _compartment(w)
    assert sorted(included(r.json())) == sorted([f"Practitioner/{w['pr']}", f"Organization/{w['org']}"])
    r = await auth_client.get(f"/fhir/Patient/{w['p2']}/$everything", headers=own)
    assert_refused(r, 403, "forbidden", f"Patient/{w['p2']}")
    no_patient_read = bearer_for("user/Observation.rs")
    r = await auth_client.get(f"/fhir/Patient/{w['p1']}/$everything", headers=no_patient_read)
    assert_refused(r, 403, "forbidden", "Patient")


async def test_types_the_token_may_not_read_are_left_out_with_a_warning(auth_client: httpx.AsyncClient) -> None:
    w = await world(auth_client, bearer_for("system/*.cruds"))
    some = bearer_for("user/Patient.r user/Observation.r")
    r = await auth_client.get(f"/fhir/Patient/{w['p1']}/$everything", headers=some)
    assert r.status_code == 200, r.text
    got = r.json()
    assert set(matches(got)) == {f"Patient/{w['p1']}", f"Observation/{w['o1']}", f"Observation/{w['o3']}"}
    assert any("do not let it read" in text and "Condition" in text for text in outcome(got))
    assert included(got) == [], "Practitioner and Organization may not be read either"
    r = await auth_client.get(f"/fhir/Patient/{w['p1']}/$everything?_type=Condition", headers=some)
    assert_refused(r, 403, "forbidden", "Condition")


async def test_capability_statement_declares_everything_and_compartments(client: httpx.AsyncClient) -> None:
    rest = (await client.get("/fhir/metadata")).json()["rest"][0]
    assert "http://hl7.org/fhir/CompartmentDefinition/patient" in rest["compartment"]
    assert len(rest["compartment"]) == 5
    patient = next(r for r in rest["resource"] if r["type"] == "Patient")
    assert {"name": "everything", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"} in (
        patient["operation"]
    )


async def test_long_requests_page_through_a_token_bound_to_the_operation(client: httpx.AsyncClient, w: World) -> None:
    every = ",".join(resource_types())  # longer than a link may be
    first = await _everything(client, w, f"?_count=2&_type={every}")
    url = link(first, "next")
    assert "_page_token=" in url and len(url) < 500
    pages = await all_pages(client, first)
    seen = [m for page in pages for m in matches(page)]
    assert len(seen) == len(set(seen)) and set(seen) == _compartment(w)
    query = url.split("?", 1)[1]
    r = await client.get(f"/fhir/Patient/{w['p2']}/$everything?{query}")
    assert_refused(r, 400, "invalid", f"Patient/{w['p1']}/$everything")


async def test_since_applies_to_referenced_resources_too(client: httpx.AsyncClient, w: World) -> None:
    await asyncio.sleep(0.01)
    o1 = _obs_of(w, "o1", "changed")
    since = (await put(client, o1))["meta"]["lastUpdated"].replace("+", "%2B")
    got = await _everything(client, w, f"?_since={since}")
    assert matches(got) == [f"Observation/{w['o1']}"]
    assert included(got) == [], "the Practitioner o1 references has not changed since"
    await put(client, {"resourceType": "Practitioner", "id": w["pr"], "name": [{"family": "Changed"}]})
    got = await _everything(client, w, f"?_since={since}")
    assert matches(got) == [f"Observation/{w['o1']}"]
    assert included(got) == [f"Practitioner/{w['pr']}"]
    whole = await _everything(client, w)
    assert sorted(included(whole)) == sorted([f"Practitioner/{w['pr']}", f"Organization/{w['org']}"])


async def test_pages_say_that_referenced_resources_can_repeat(client: httpx.AsyncClient, w: World) -> None:
    pages = await all_pages(client, await _everything(client, w, "?_count=1"))
    with_practitioner = [p for p in pages if f"Practitioner/{w['pr']}" in included(p)]
    assert len(with_practitioner) >= 2, "e1 and o1 are on different pages and both reference pr"
    for page in pages:
        told = any("can appear on several pages" in text for text in outcome(page))
        assert told == bool(included(page)), (matches(page), included(page), outcome(page))


def _obs_of(w: World, name: str, text: str) -> dict:
    return {
        "resourceType": "Observation",
        "id": w[name],
        "status": "final",
        "code": {"text": text},
        "subject": w.ref("p1"),
        "encounter": w.ref("e1"),
        "performer": [w.ref("pr")],
    }
