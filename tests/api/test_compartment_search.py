"""Compartment search ``[base]/Patient/[id]/[type]?…`` and ``[base]/Patient/[id]/*``: the same as
the plain search ORed over the compartment's parameters, paged with links of its own; clear
errors for what is not a compartment or not in one; authorization."""

from __future__ import annotations

import httpx
import pytest

from tests.api.authz_helpers import assert_refused, bearer_for
from tests.api.compartment_world import World, all_pages, follow, link, matches, outcome, world

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
LENIENT = {"Prefer": "handling=lenient"}


@pytest.fixture
async def w(client: httpx.AsyncClient) -> World:
    return await world(client)


async def _get(client: httpx.AsyncClient, url: str, **headers: str) -> dict:
    r = await client.get(url, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["type"] == "searchset"
    return r.json()


async def test_equals_the_plain_search_over_the_compartment_params(client: httpx.AsyncClient, w: World) -> None:
    got = await _get(client, f"/fhir/Patient/{w['p1']}/Observation")
    by_subject = await _get(client, f"/fhir/Observation?subject=Patient/{w['p1']}")
    by_performer = await _get(client, f"/fhir/Observation?performer=Patient/{w['p1']}")
    assert set(matches(got)) == set(matches(by_subject)) | set(matches(by_performer))
    assert set(matches(got)) == {f"Observation/{w['o1']}", f"Observation/{w['o3']}"}
    assert got["total"] == 2
    narrowed = await _get(client, f"/fhir/Patient/{w['p1']}/Observation?code=http://loinc.org|2-2")
    assert matches(narrowed) == [f"Observation/{w['o3']}"], "the search's own parameters are ANDed"
    other = await _get(client, f"/fhir/Patient/{w['p2']}/Condition")
    assert matches(other) == [f"Condition/{w['c2']}"]
    patient = await _get(client, f"/fhir/Patient/{w['p1']}/Patient")
    assert matches(patient) == [f"Patient/{w['p1']}"], "the patient is in its own compartment"


async def test_unknown_patient_is_an_empty_searchset(client: httpx.AsyncClient) -> None:
    got = await _get(client, "/fhir/Patient/no-such-patient/Observation")
    assert got["total"] == 0 and not matches(got)


async def test_paging_links_stay_in_the_compartment(client: httpx.AsyncClient, w: World) -> None:
    first = await _get(client, f"/fhir/Patient/{w['p1']}/Observation?_count=1")
    assert link(first, "self").startswith(f"http://testserver/fhir/Patient/{w['p1']}/Observation?")
    assert link(first, "next").startswith(f"http://testserver/fhir/Patient/{w['p1']}/Observation?")
    pages = await all_pages(client, first)
    seen = [m for page in pages for m in matches(page)]
    assert sorted(seen) == sorted({f"Observation/{w['o1']}", f"Observation/{w['o3']}"})
    back = await follow(client, link(pages[-1], "previous"))
    assert matches(back) == matches(pages[0])


async def test_post_search_form(client: httpx.AsyncClient, w: World) -> None:
    r = await client.post(
        f"/fhir/Patient/{w['p1']}/Observation/_search", content="code=http://loinc.org|1-1", headers=FORM
    )
    assert r.status_code == 200, r.text
    assert matches(r.json()) == [f"Observation/{w['o1']}"]


async def test_star_searches_every_type_of_the_compartment(client: httpx.AsyncClient, w: World) -> None:
    got = await _get(client, f"/fhir/Patient/{w['p1']}/*")
    assert matches(got)[0] == f"Patient/{w['p1']}", "the focal resource comes first"
    expected = {f"Patient/{w['p1']}", f"Observation/{w['o1']}", f"Observation/{w['o3']}"}
    expected |= {f"Encounter/{w['e1']}", f"Condition/{w['c1']}"}
    assert set(matches(got)) == expected and got["total"] == len(expected)
    typed = await _get(client, f"/fhir/Patient/{w['p1']}/*?_type=Condition,Encounter")
    assert matches(typed) == [f"Condition/{w['c1']}", f"Encounter/{w['e1']}"]
    recent = await _get(client, f"/fhir/Patient/{w['p1']}/*?_id={w['o1']},{w['o2']},{w['c1']}")
    assert set(matches(recent)) == {f"Observation/{w['o1']}", f"Condition/{w['c1']}"}
    pages = await all_pages(client, await _get(client, f"/fhir/Patient/{w['p1']}/*?_count=2"))
    seen = [m for page in pages for m in matches(page)]
    assert len(seen) == len(set(seen)) and set(seen) == expected
    assert link(pages[0], "next").startswith(f"http://testserver/fhir/Patient/{w['p1']}/*?")


async def test_star_takes_only_common_parameters_under_strict_handling(
    client: httpx.AsyncClient, w: World, log_count
) -> None:
    before = await log_count()
    r = await client.get(f"/fhir/Patient/{w['p1']}/*?code=http://loinc.org|1-1")
    assert_refused(r, 400, "not-supported", "'code'", f"Patient/{w['p1']}/*", "_type")
    lenient = await _get(client, f"/fhir/Patient/{w['p1']}/*?code=http://loinc.org|1-1", **LENIENT)
    assert matches(lenient) == [f"Observation/{w['o1']}"] and outcome(lenient)
    typed = await _get(client, f"/fhir/Patient/{w['p1']}/*?_type=Observation&code=http://loinc.org|1-1")
    assert matches(typed) == [f"Observation/{w['o1']}"], "every type named defines it"
    assert await log_count() == before


@pytest.mark.parametrize(
    ("url", "status", "code", "text"),
    [
        ("/fhir/Patient/{p1}/Practitioner", 400, "not-supported", "never in a Patient compartment"),
        ("/fhir/Patient/{p1}/Nonsense", 404, "not-found", "Unknown resource type 'Nonsense'"),
        ("/fhir/Observation/{o1}/Condition", 400, "not-supported", "Observation is not a compartment"),
        ("/fhir/Nonsense/{p1}/Condition", 404, "not-found", "Unknown resource type 'Nonsense'"),
        ("/fhir/Patient/{p1}/$nonsense", 404, "not-supported", "$nonsense is not supported"),
        ("/fhir/Patient/{p1}/*?_type=Practitioner", 400, "not-supported", "never in a Patient compartment"),
        ("/fhir/Patient/{p1}/Observation?nonsense=1", 400, "not-supported", "'nonsense'"),
    ],
)
async def test_errors(
    client: httpx.AsyncClient, w: World, log_count, url: str, status: int, code: str, text: str
) -> None:
    before = await log_count()
    r = await client.get(url.format(p1=w["p1"], o1=w["o1"]))
    assert_refused(r, status, code, text)
    assert await log_count() == before


async def test_instance_history_keeps_its_route(client: httpx.AsyncClient, w: World) -> None:
    r = await client.get(f"/fhir/Patient/{w['p1']}/_history")
    assert r.status_code == 200 and r.json()["type"] == "history"


async def test_other_compartments(client: httpx.AsyncClient, w: World) -> None:
    by_encounter = await _get(client, f"/fhir/Encounter/{w['e1']}/*")
    assert set(matches(by_encounter)) == {f"Encounter/{w['e1']}", f"Observation/{w['o1']}", f"Condition/{w['c1']}"}
    by_practitioner = await _get(client, f"/fhir/Practitioner/{w['pr']}/Observation")
    assert matches(by_practitioner) == [f"Observation/{w['o1']}"]
    assert (await _get(client, f"/fhir/Practitioner/{w['pr']}/Encounter"))["total"] == 1


async def test_patient_token_reaches_only_its_own_compartment(auth_client: httpx.AsyncClient) -> None:
    w = await world(auth_client, bearer_for("system/*.cruds"))
    own = bearer_for("patient/*.rs", patient=w["p1"])
    r = await auth_client.get(f"/fhir/Patient/{w['p1']}/Observation", headers=own)
    assert r.status_code == 200, r.text
    assert set(matches(r.json())) == {f"Observation/{w['o1']}", f"Observation/{w['o3']}"}
    r = await auth_client.get(f"/fhir/Patient/{w['p1']}/*", headers=own)
    assert r.status_code == 200 and len(matches(r.json())) == 5
    for url in (f"/fhir/Patient/{w['p2']}/Observation", f"/fhir/Patient/{w['p2']}/*"):
        assert_refused(await auth_client.get(url, headers=own), 403, "forbidden", f"Patient/{w['p1']}")
    only_obs = bearer_for("user/Observation.s")
    r = await auth_client.get(f"/fhir/Patient/{w['p1']}/Condition", headers=only_obs)
    assert_refused(r, 403, "forbidden", "Condition")
    r = await auth_client.get(f"/fhir/Patient/{w['p1']}/*", headers=only_obs)
    assert r.status_code == 200 and set(matches(r.json())) == {f"Observation/{w['o1']}", f"Observation/{w['o3']}"}


async def test_star_does_not_include(client: httpx.AsyncClient, w: World) -> None:
    r = await client.get(f"/fhir/Patient/{w['p1']}/*?_include=*")
    assert_refused(r, 400, "not-supported", "_include")
    got = await _get(client, f"/fhir/Patient/{w['p1']}/*?_include=*", **LENIENT)
    assert len(matches(got)) == 5 and any("_include" in text for text in outcome(got))
