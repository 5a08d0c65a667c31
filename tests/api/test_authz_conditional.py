"""Conditional writes under confining scopes: the criteria match only what the token could find by
searching, so a ``patient/`` token cannot tell, from 404/201, 200 or 412, whether resources outside
its patient's compartment match (https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html:
a resource the token cannot see does not exist for it)."""

from __future__ import annotations

import httpx

from tests.api.authz_helpers import bearer_for, seed
from tests.helpers import new_id, patient

SYSTEM = "urn:test:leak"


def observation(pid: str, ident: str, oid: str | None = None) -> dict:
    body: dict = {
        "resourceType": "Observation",
        "status": "final",
        "identifier": [{"system": SYSTEM, "value": ident}],
        "code": {"text": "glucose"},
        "subject": {"reference": f"Patient/{pid}"},
    }
    if oid:
        body["id"] = oid
    return body


async def _world(pool, client: httpx.AsyncClient) -> tuple[str, str, dict[str, str]]:
    """Two patients; the other one's observations: ``two`` (identifier on 2), ``one`` (on 1)."""
    mine, other = new_id("me"), new_id("other")
    await seed(pool, client, patient(mine))
    await seed(pool, client, patient(other, identifier=[{"system": SYSTEM, "value": other}]))
    idents = {"two": new_id("two"), "one": new_id("one")}
    for ident in (idents["two"], idents["two"], idents["one"]):
        await seed(pool, client, observation(other, ident))
    return mine, other, idents


def _token(mine: str) -> dict[str, str]:
    return bearer_for("patient/Observation.cruds patient/Patient.rs", patient=mine)


async def _search_total(client: httpx.AsyncClient, ident: str) -> int:
    r = await client.get(
        f"/fhir/Observation?identifier={SYSTEM}|{ident}&_summary=count",
        headers=bearer_for("system/*.cruds"),
    )
    return r.json()["total"]


async def test_conditional_update_does_not_see_other_compartments(auth_client: httpx.AsyncClient, pool) -> None:
    mine, _, idents = await _world(pool, auth_client)
    token = _token(mine)
    criteria = f"identifier={SYSTEM}|{idents['two']}"
    r = await auth_client.put(f"/fhir/Observation?{criteria}", json=observation(mine, idents["two"]), headers=token)
    assert r.status_code == 201, r.text  # not 412: the other patient's two matches are invisible
    created = r.json()["id"]
    assert r.json()["subject"]["reference"] == f"Patient/{mine}"
    # now one visible match (mine) among three: it is updated
    body = observation(mine, idents["two"]) | {"status": "amended"}
    r = await auth_client.put(f"/fhir/Observation?{criteria}", json=body, headers=token)
    assert r.status_code == 200, r.text
    assert (r.json()["id"], r.json()["meta"]["versionId"]) == (created, "2")
    assert await _search_total(auth_client, idents["two"]) == 3


async def test_conditional_create_and_delete_and_patch(auth_client: httpx.AsyncClient, pool) -> None:
    mine, _, idents = await _world(pool, auth_client)
    token = _token(mine)
    one = f"identifier={SYSTEM}|{idents['one']}"
    two = f"identifier={SYSTEM}|{idents['two']}"
    # PATCH: 404 whatever the other patient has (not 412 for two, not 403 for one)
    headers = {**token, "Content-Type": "application/json-patch+json"}
    patch = [{"op": "replace", "path": "/status", "value": "amended"}]
    for criteria in (one, two):
        r = await auth_client.patch(f"/fhir/Observation?{criteria}", json=patch, headers=headers)
        assert r.status_code == 404, r.text
    # DELETE: nothing matches (not 412, not 403), and nothing of the other patient is deleted
    for criteria in (one, two):
        r = await auth_client.delete(f"/fhir/Observation?{criteria}", headers=token)
        assert r.status_code in (200, 204), r.text
    assert await _search_total(auth_client, idents["two"]) == 2
    # If-None-Exist: the other patient's observation does not exist for the token: created, not its id
    r = await auth_client.post(
        "/fhir/Observation", json=observation(mine, idents["one"]), headers={**token, "If-None-Exist": one}
    )
    assert r.status_code == 201, r.text
    assert r.json()["subject"]["reference"] == f"Patient/{mine}"
    # and now the token's own match answers
    r = await auth_client.post(
        "/fhir/Observation", json=observation(mine, idents["one"]), headers={**token, "If-None-Exist": one}
    )
    assert r.status_code == 200, r.text
    assert r.json()["subject"]["reference"] == f"Patient/{mine}"


async def test_transaction_entries_and_conditional_references(auth_client: httpx.AsyncClient, pool) -> None:
    mine, other, idents = await _world(pool, auth_client)
    token = _token(mine)
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": observation(mine, idents["two"]),
                "request": {"method": "PUT", "url": f"Observation?identifier={SYSTEM}|{idents['two']}"},
            },
            {
                "request": {"method": "DELETE", "url": f"Observation?identifier={SYSTEM}|{idents['one']}"},
            },
        ],
    }
    r = await auth_client.post("/fhir", json=bundle, headers=token)
    assert r.status_code == 200, r.text
    statuses = [e["response"]["status"] for e in r.json()["entry"]]
    assert statuses[0].startswith("201"), statuses
    assert await _search_total(auth_client, idents["one"]) == 1  # theirs, untouched
    # a conditional reference (in a transaction entry) to the other patient matches nothing for it
    body = observation(mine, new_id("ref")) | {
        "performer": [{"reference": f"Patient?identifier={SYSTEM}|{other}"}],
    }
    with_reference = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": body, "request": {"method": "POST", "url": "Observation"}}],
    }
    r = await auth_client.post("/fhir", json=with_reference, headers=token)
    assert r.status_code == 404, r.text
    assert "matches no resource" in r.text
    # the same criteria with an unrestricted token resolve (the reference exists)
    system = bearer_for("system/*.cruds")
    r = await auth_client.post("/fhir", json=with_reference, headers=system)
    assert r.status_code == 200, r.text
    written = await auth_client.get(f"/fhir/{r.json()['entry'][0]['response']['location']}", headers=system)
    assert written.json()["performer"][0]["reference"] == f"Patient/{other}"
