"""Patient- and Group-level bulk exports hold exactly the resources in the compartments of their
patients (R4 Patient CompartmentDefinition), as they stood at the kick-off."""

from __future__ import annotations

import asyncpg
import httpx

from tests.api.bulk_helpers import download, finish, ids, kick_off
from tests.helpers import new_id, patient

pytest_plugins = ["tests.api.bulk_fixtures"]
TYPES = "Patient,Goal,FamilyMemberHistory"


async def _put(client: httpx.AsyncClient, resource: dict) -> dict:
    r = await client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource)
    assert r.status_code in (200, 201), r.text
    return r.json()


def _goal(subject: str) -> dict:
    return {
        "resourceType": "Goal",
        "id": new_id("goal"),
        "lifecycleStatus": "active",
        "description": {"text": "walk"},
        "subject": {"reference": subject},
    }


def _history(pid: str) -> dict:
    return {
        "resourceType": "FamilyMemberHistory",
        "id": new_id("fmh"),
        "status": "completed",
        "patient": {"reference": f"Patient/{pid}"},
        "relationship": {"text": "mother"},
    }


async def _world(client: httpx.AsyncClient) -> dict:
    pids = [new_id("pt") for _ in range(3)]
    for pid in pids:
        await _put(client, patient(pid))
        await _put(client, _goal(f"Patient/{pid}"))
        await _put(client, _history(pid))
    org = await _put(client, {"resourceType": "Organization", "id": new_id("org"), "name": "o"})
    await _put(client, _goal(f"Organization/{org['id']}"))  # in no patient's compartment
    members = [{"entity": {"reference": f"Patient/{pid}"}} for pid in pids[:2]]
    members.append({"entity": {"reference": f"Patient/{pids[2]}"}, "inactive": True})
    members.append({"entity": {"reference": f"Organization/{org['id']}"}})
    group = {"resourceType": "Group", "id": new_id("grp"), "type": "person", "actual": True, "member": members}
    await _put(client, group)
    return {"patients": pids, "group": group}


async def _compartment_search(client: httpx.AsyncClient, pids: list[str]) -> dict[str, set[str]]:
    refs = ",".join(f"Patient/{p}" for p in pids)
    out = {}
    for kind, param in (("Patient", "_id"), ("Goal", "subject"), ("FamilyMemberHistory", "patient")):
        value = ",".join(pids) if param == "_id" else refs
        r = await client.get(f"/fhir/{kind}?{param}={value}&_count=1000")
        out[kind] = {e["resource"]["id"] for e in r.json().get("entry", [])}
    return out


async def test_group_export_is_the_members_compartments(bulk_client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    world = await _world(bulk_client)
    group_id = world["group"]["id"]
    status_url = await kick_off(bulk_client, f"/fhir/Group/{group_id}/$export?_type={TYPES}")
    late = world["patients"][2]  # activated after the kick-off: not in this export
    members = [m for m in world["group"]["member"] if not m.get("inactive")]
    await _put(bulk_client, {**world["group"], "member": [*members, {"entity": {"reference": f"Patient/{late}"}}]})
    manifest = await finish(bulk_client, pool, status_url)
    files = await download(bulk_client, manifest)
    expected = await _compartment_search(bulk_client, world["patients"][:2])
    assert {kind: ids(rs) for kind, rs in files.items()} == expected
    [error] = manifest["error"]
    text = (await bulk_client.get(error["url"])).text
    assert "not Patient references" in text and "Organization/" in text


async def test_patient_export_covers_every_patient_compartment(
    bulk_client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    await _world(bulk_client)
    manifest = await finish(bulk_client, pool, await kick_off(bulk_client, "/fhir/Patient/$export?_type=Goal"))
    exported = (await download(bulk_client, manifest))["Goal"]
    r = await bulk_client.get("/fhir/Goal?_count=1000")
    goals = [e["resource"] for e in r.json()["entry"]]
    assert ids(exported) == {g["id"] for g in goals if g["subject"]["reference"].startswith("Patient/")}


async def test_patient_export_of_given_patients(bulk_client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    world = await _world(bulk_client)
    chosen = world["patients"][1]
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "_type", "valueString": TYPES},
            {"name": "patient", "valueReference": {"reference": f"Patient/{chosen}"}},
        ],
    }
    manifest = await finish(bulk_client, pool, await kick_off(bulk_client, "/fhir/Patient/$export", json=body))
    files = await download(bulk_client, manifest)
    assert {kind: ids(rs) for kind, rs in files.items()} == await _compartment_search(bulk_client, [chosen])


async def test_patient_export_without_type_covers_the_compartment_types(
    bulk_client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    world = await _world(bulk_client)
    group_id = world["group"]["id"]
    manifest = await finish(bulk_client, pool, await kick_off(bulk_client, f"/fhir/Group/{group_id}/$export"))
    files = await download(bulk_client, manifest)
    assert "Organization" not in files  # outside the Patient compartment
    assert group_id in ids(files["Group"])  # Group is in it, by member
    expected = await _compartment_search(bulk_client, world["patients"][:2])
    assert {kind: ids(files.get(kind, [])) for kind in expected} == expected
