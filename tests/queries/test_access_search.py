"""Searches under restricted SMART scopes, with real signed tokens: a patient's compartment, v2
query-restricted scopes, _include/_revinclude, search across types; user/ scopes see everything."""

from __future__ import annotations

import httpx
import pytest

from tests.auth.keys import SigningKey
from tests.queries import access_app
from tests.queries.access_app import TAG_SYSTEM, World, outcome_issues, world

signing_key = access_app.signing_key
auth_settings = access_app.auth_settings
auth_client = access_app.auth_client

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
async def w(client: httpx.AsyncClient, signing_key: SigningKey) -> World:
    return await world(client, signing_key)


async def _get(c: httpx.AsyncClient, url: str, headers: dict[str, str], status: int = 200) -> dict:
    r = await c.get(url, headers=headers)
    assert r.status_code == status, r.text
    return r.json()


async def test_patient_token_finds_only_its_own_observations(auth_client: httpx.AsyncClient, w: World) -> None:
    headers = w.token("patient/Observation.rs", "A")
    tagged = await _get(auth_client, f"/fhir/Observation?_tag={TAG_SYSTEM}|{w.tag}", headers)
    assert w.names(tagged) == {"a_lab", "a_vital"} and tagged["total"] == 2
    everything = await _get(auth_client, "/fhir/Observation?_count=100", headers)
    assert w.names(everything) == {"a_lab", "a_vital"} and everything["total"] == 2, "other tests' data hidden too"
    asked_for_b = await _get(auth_client, f"/fhir/Observation?subject=Patient/{w.ids['B']}", headers)
    assert asked_for_b["total"] == 0 and "entry" not in asked_for_b
    counted = await _get(auth_client, "/fhir/Observation?_summary=count", headers)
    assert counted["total"] == 2
    paged = await _get(auth_client, "/fhir/Observation?_count=1", headers)
    assert len(w.names(paged)) == 1 and any(link["relation"] == "next" for link in paged["link"])


async def test_patient_search_of_patients_and_of_types_outside_the_compartment(
    auth_client: httpx.AsyncClient, w: World
) -> None:
    headers = w.token("patient/*.rs", "A")
    patients = await _get(auth_client, "/fhir/Patient?_count=100", headers)
    assert w.names(patients) == {"A"} and patients["total"] == 1
    practitioners = await _get(auth_client, f"/fhir/Practitioner?_tag={TAG_SYSTEM}|{w.tag}", headers)
    assert w.names(practitioners) == {"pr"}, "Practitioner holds no patient's data: readable with patient/ scopes"


async def test_a_patient_claim_naming_two_patients_matches_nothing(auth_client: httpx.AsyncClient, w: World) -> None:
    headers = w.token("patient/Observation.rs", f"{w.ids['A']},{w.ids['B']}")
    found = await _get(auth_client, f"/fhir/Observation?_tag={TAG_SYSTEM}|{w.tag}", headers)
    assert found["total"] == 0


async def test_search_of_an_ungranted_type_is_refused(auth_client: httpx.AsyncClient, w: World) -> None:
    outcome = await _get(auth_client, "/fhir/Condition", w.token("patient/Observation.rs", "A"), 403)
    assert outcome["issue"][0]["code"] == "forbidden" and "Condition.s" in outcome["issue"][0]["diagnostics"]


async def test_query_restricted_scope(auth_client: httpx.AsyncClient, w: World) -> None:
    tag = f"_tag={TAG_SYSTEM}|{w.tag}"
    lab_only = w.token("patient/Observation.rs?category=laboratory", "A")
    found = await _get(auth_client, f"/fhir/Observation?{tag}", lab_only)
    assert w.names(found) == {"a_lab"} and found["total"] == 1
    any_patient_lab = w.token("user/Observation.rs?category=laboratory")
    assert w.names(await _get(auth_client, f"/fhir/Observation?{tag}", any_patient_lab)) == {"a_lab", "b_lab"}
    either = w.token("patient/Observation.rs?category=vital-signs user/Observation.rs?category=laboratory", "A")
    found = await _get(auth_client, f"/fhir/Observation?{tag}", either)
    assert w.names(found) == {"a_lab", "b_lab", "a_vital"} and found["total"] == 3


async def test_scope_query_the_server_cannot_apply_is_refused(auth_client: httpx.AsyncClient, w: World) -> None:
    outcome = await _get(auth_client, "/fhir/Observation", w.token("patient/Observation.rs?bogus=1", "A"), 403)
    text = outcome["issue"][0]["diagnostics"]
    assert outcome["issue"][0]["code"] == "forbidden" and "bogus=1" in text


async def test_include_leaves_out_resources_outside_the_compartment(auth_client: httpx.AsyncClient, w: World) -> None:
    headers = w.token("patient/*.rs", "A")
    r = await auth_client.get(f"/fhir/Observation?_id={w.ids['a_lab']}&_include=Observation:focus", headers=headers)
    assert r.status_code == 200, r.text
    assert w.names(r.json()) == {"a_lab"} and w.names(r.json(), "include") == set()
    assert f'"id":"{w.ids["B"]}"' not in r.text, "Patient B is not included"
    issues = outcome_issues(r.json())
    assert [i["code"] for i in issues] == ["forbidden"]
    assert "of type Patient outside what the token's scopes allow" in issues[0]["diagnostics"]
    assert w.ids["B"] not in issues[0]["diagnostics"]
    ok = await _get(
        auth_client,
        f"/fhir/Observation?_id={w.ids['a_lab']}&_include=Observation:subject&_include=Observation:performer",
        headers,
    )
    assert w.names(ok, "include") == {"A", "pr"} and outcome_issues(ok) == []


async def test_include_of_an_ungranted_type_is_left_out(auth_client: httpx.AsyncClient, w: World) -> None:
    headers = w.token("patient/Observation.rs", "A")
    found = await _get(auth_client, f"/fhir/Observation?_id={w.ids['a_lab']}&_include=Observation:subject", headers)
    assert w.names(found, "include") == set()
    assert "of type Patient, which the token may not read (needs scope patient/Patient.r" in str(outcome_issues(found))


async def test_revinclude_is_filtered(auth_client: httpx.AsyncClient, w: World) -> None:
    headers = w.token("patient/*.rs", "A")
    url = f"/fhir/Patient?_id={w.ids['A']}&_revinclude=Observation:focus&_revinclude=Observation:subject"
    r = await auth_client.get(url, headers=headers)
    assert r.status_code == 200, r.text
    assert w.names(r.json(), "include") == {"a_lab", "a_vital"}, "B's Observation focused on A is not A's"
    assert w.ids["b_focus_a"] not in r.text and "outside what the token's scopes allow" in str(outcome_issues(r.json()))
    everything = await _get(auth_client, url, w.token("user/*.rs"))
    assert w.names(everything, "include") == {"a_lab", "a_vital", "b_focus_a"}


async def test_system_search(auth_client: httpx.AsyncClient, w: World) -> None:
    tag = f"_tag={TAG_SYSTEM}|{w.tag}"
    patient = w.token("patient/*.rs", "A")
    found = await _get(auth_client, f"/fhir?_type=Observation,Patient&{tag}", patient)
    assert w.names(found) == {"A", "a_lab", "a_vital"} and found["total"] == 3
    found = await _get(auth_client, f"/fhir?{tag}", patient)
    assert w.names(found) == {"A", "a_lab", "a_vital", "pr"}, "every type the token may search"
    observations = w.token("patient/Observation.rs", "A")
    found = await _get(auth_client, f"/fhir?{tag}", observations)
    assert w.names(found) == {"a_lab", "a_vital"}
    posted = await auth_client.post("/fhir/_search", content=tag, headers={**observations, **FORM})
    assert posted.status_code == 200 and w.names(posted.json()) == {"a_lab", "a_vital"}
    refused = await _get(auth_client, f"/fhir?_type=Observation,Practitioner&{tag}", observations, 403)
    assert refused["issue"][0]["code"] == "forbidden" and "Practitioner" in refused["issue"][0]["diagnostics"]


async def test_user_scope_sees_everything(auth_client: httpx.AsyncClient, w: World) -> None:
    headers = w.token("user/*.rs")
    found = await _get(auth_client, f"/fhir/Observation?_tag={TAG_SYSTEM}|{w.tag}&_include=Observation:focus", headers)
    assert w.names(found) == {"a_lab", "a_vital", "b_lab", "b_focus_a"} and found["total"] == 4
    assert w.names(found, "include") == {"A", "B"} and outcome_issues(found) == []
