"""Read, vread and history under restricted SMART scopes, with real signed tokens: resources
outside the patient's compartment or a scope's query are 403 on read and left out of history."""

from __future__ import annotations

import httpx
import pytest

from tests.auth.keys import SigningKey
from tests.queries import access_app
from tests.queries.access_app import World, world

signing_key = access_app.signing_key
auth_settings = access_app.auth_settings
auth_client = access_app.auth_client


@pytest.fixture
async def w(client: httpx.AsyncClient, signing_key: SigningKey) -> World:
    return await world(client, signing_key)


def _history_names(w: World, bundle: dict) -> list[str]:
    return [w.name(e["fullUrl"].rsplit("/", 1)[1]) for e in bundle.get("entry", [])]


async def test_read_outside_the_compartment_is_forbidden(auth_client: httpx.AsyncClient, w: World, log_count) -> None:
    headers = w.token("patient/*.rs", "A")
    mine = await auth_client.get(f"/fhir/Observation/{w.ids['a_lab']}", headers=headers)
    assert mine.status_code == 200 and mine.json()["id"] == w.ids["a_lab"]
    before = await log_count()
    theirs = await auth_client.get(f"/fhir/Observation/{w.ids['b_lab']}", headers=headers)
    assert theirs.status_code == 403, theirs.text
    issue = theirs.json()["issue"][0]
    assert issue["code"] == "forbidden"
    assert f"only in the compartment of Patient/{w.ids['A']}" in issue["diagnostics"]
    assert "status" not in theirs.text, "nothing of the resource is returned"
    assert (await auth_client.get(f"/fhir/Patient/{w.ids['B']}", headers=headers)).status_code == 403
    assert (await auth_client.get(f"/fhir/Patient/{w.ids['A']}", headers=headers)).status_code == 200
    practitioner = await auth_client.get(f"/fhir/Practitioner/{w.ids['pr']}", headers=headers)
    assert practitioner.status_code == 200, "types outside the compartment are readable with patient/ scopes"
    assert await log_count() == before


async def test_vread_outside_the_compartment_is_forbidden(auth_client: httpx.AsyncClient, w: World) -> None:
    headers = w.token("patient/Observation.r", "A")
    assert (await auth_client.get(f"/fhir/Observation/{w.ids['a_lab']}/_history/1", headers=headers)).status_code == 200
    r = await auth_client.get(f"/fhir/Observation/{w.ids['b_lab']}/_history/1", headers=headers)
    assert r.status_code == 403 and "(version 1) is outside" in r.json()["issue"][0]["diagnostics"]


async def test_version_moved_into_another_compartment(
    auth_client: httpx.AsyncClient, client: httpx.AsyncClient, w: World
) -> None:
    """A version is judged by what it holds: A's old version stays A's, B's new one is not A's."""
    current = (await client.get(f"/fhir/Observation/{w.ids['a_vital']}")).json()
    current["subject"] = {"reference": f"Patient/{w.ids['B']}"}
    assert (await client.put(f"/fhir/Observation/{w.ids['a_vital']}", json=current)).status_code == 200
    a, b = w.token("patient/Observation.r", "A"), w.token("patient/Observation.r", "B")
    url = f"/fhir/Observation/{w.ids['a_vital']}"
    assert (await auth_client.get(url, headers=a)).status_code == 403
    assert (await auth_client.get(url, headers=b)).status_code == 200
    assert (await auth_client.get(f"{url}/_history/1", headers=a)).status_code == 200
    assert (await auth_client.get(f"{url}/_history/1", headers=b)).status_code == 403
    assert (await auth_client.get(f"{url}/_history", headers=a)).status_code == 403, "its latest version is B's"
    history = await auth_client.get(f"{url}/_history", headers=b)
    assert history.status_code == 200
    assert [e["response"]["etag"] for e in history.json()["entry"]] == ['W/"2"'], "B does not see A's version"
    assert "total" not in history.json()


async def test_read_under_a_query_restricted_scope(auth_client: httpx.AsyncClient, w: World) -> None:
    headers = w.token("patient/Observation.r?category=laboratory", "A")
    assert (await auth_client.get(f"/fhir/Observation/{w.ids['a_lab']}", headers=headers)).status_code == 200
    r = await auth_client.get(f"/fhir/Observation/{w.ids['a_vital']}", headers=headers)
    assert r.status_code == 403
    assert "matching category=laboratory" in r.json()["issue"][0]["diagnostics"]


async def test_history_is_filtered(auth_client: httpx.AsyncClient, client: httpx.AsyncClient, w: World) -> None:
    deleted = await client.delete(f"/fhir/Observation/{w.ids['b_lab']}")
    assert deleted.status_code in (200, 204)
    a = w.token("patient/*.r", "A")
    since = {"_since": w.since, "_count": "100"}
    typed = await auth_client.get("/fhir/Observation/_history", params=since, headers=a)
    assert typed.status_code == 200, typed.text
    assert sorted(_history_names(w, typed.json())) == ["a_lab", "a_vital"], "B's Observations and its deletion hidden"
    system = await auth_client.get("/fhir/_history", params=since, headers=a)
    assert sorted(_history_names(w, system.json())) == ["A", "a_lab", "a_vital", "pr"]
    observations_only = await auth_client.get(
        "/fhir/_history", params=since, headers=w.token("patient/Observation.r", "A")
    )
    assert sorted(_history_names(w, observations_only.json())) == ["a_lab", "a_vital"]
    instance = await auth_client.get(f"/fhir/Observation/{w.ids['b_lab']}/_history", headers=a)
    assert instance.status_code == 403
    b = await auth_client.get(f"/fhir/Observation/{w.ids['b_lab']}/_history", headers=w.token("patient/*.r", "B"))
    assert b.status_code == 200 and len(b.json()["entry"]) == 2, "B sees its deleted Observation's history"
    everyone = await auth_client.get("/fhir/Observation/_history", params=since, headers=w.token("user/*.r"))
    assert sorted(_history_names(w, everyone.json())) == ["a_lab", "a_vital", "b_focus_a", "b_lab", "b_lab"]


async def test_user_scope_reads_everything(auth_client: httpx.AsyncClient, w: World) -> None:
    headers = w.token("user/*.rs")
    for name in ("b_lab", "B", "a_lab"):
        kind = "Patient" if name == "B" else "Observation"
        assert (await auth_client.get(f"/fhir/{kind}/{w.ids[name]}", headers=headers)).status_code == 200
    history = await auth_client.get(f"/fhir/Observation/{w.ids['b_lab']}/_history", headers=headers)
    assert history.status_code == 200 and history.json()["total"] == 1
