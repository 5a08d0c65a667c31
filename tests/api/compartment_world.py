"""Two patients with observations, an encounter and conditions, a practitioner and an organization:
the data the compartment search and ``$everything`` tests share (fresh ids per call)."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

from tests.helpers import new_id, patient


@dataclass
class World:
    ids: dict[str, str] = field(default_factory=dict)

    def ref(self, name: str) -> dict:
        kind = {"pr": "Practitioner", "org": "Organization"}.get(name)
        kind = kind or {"p": "Patient", "o": "Observation", "e": "Encounter", "c": "Condition"}[name[0]]
        return {"reference": f"{kind}/{self.ids[name]}"}

    def __getitem__(self, name: str) -> str:
        return self.ids[name]


async def put(client: httpx.AsyncClient, resource: dict, headers: dict | None = None) -> dict:
    r = await client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource, headers=headers)
    assert r.status_code in (200, 201), r.text
    return r.json()


def _obs(rid: str, code: str, **refs: object) -> dict:
    coding = [{"system": "http://loinc.org", "code": code}]
    return {"resourceType": "Observation", "id": rid, "status": "final", "code": {"coding": coding}, **refs}


async def world(client: httpx.AsyncClient, headers: dict | None = None) -> World:
    """p1 (with o1, o3 as performer, e1, c1), p2 (with o2, c2), pr and org referenced from p1's data."""
    w = World({name: new_id(name) for name in ("p1", "p2", "o1", "o2", "o3", "e1", "c1", "c2", "pr", "org")})
    await put(client, {"resourceType": "Organization", "id": w["org"], "name": "Clinic"}, headers)
    await put(client, {"resourceType": "Practitioner", "id": w["pr"], "name": [{"family": "Who"}]}, headers)
    await put(client, patient(w["p1"], managingOrganization=w.ref("org")), headers)
    await put(client, patient(w["p2"], family="Other"), headers)
    encounter = {
        "resourceType": "Encounter",
        "id": w["e1"],
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": w.ref("p1"),
        "participant": [{"individual": w.ref("pr")}],
        "serviceProvider": w.ref("org"),
    }
    await put(client, encounter, headers)
    await put(
        client, _obs(w["o1"], "1-1", subject=w.ref("p1"), encounter=w.ref("e1"), performer=[w.ref("pr")]), headers
    )
    await put(client, _obs(w["o2"], "1-1", subject=w.ref("p2")), headers)
    await put(client, _obs(w["o3"], "2-2", subject=w.ref("p2"), performer=[w.ref("p1")]), headers)
    for name, subject in (("c1", "p1"), ("c2", "p2")):
        condition = {"resourceType": "Condition", "id": w[name], "subject": w.ref(subject), "code": {"text": "c"}}
        if name == "c1":
            condition["encounter"] = w.ref("e1")
        await put(client, condition, headers)
    return w


def matches(bundle: dict) -> list[str]:
    """``Type/id`` of the entries with ``search.mode = match``, in order."""
    return [_key(e) for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]


def included(bundle: dict) -> list[str]:
    return [_key(e) for e in bundle.get("entry", []) if e["search"]["mode"] == "include"]


def outcome(bundle: dict) -> list[str]:
    return [
        i["diagnostics"]
        for e in bundle.get("entry", [])
        if e["search"]["mode"] == "outcome"
        for i in e["resource"]["issue"]
    ]


def _key(entry: dict) -> str:
    return f"{entry['resource']['resourceType']}/{entry['resource']['id']}"


def link(bundle: dict, relation: str) -> str | None:
    return next((x["url"] for x in bundle.get("link", []) if x["relation"] == relation), None)


async def follow(client: httpx.AsyncClient, url: str, headers: dict | None = None) -> dict:
    parts = urlsplit(url)
    assert parts.scheme == "http" and parts.netloc == "testserver", url  # absolute links
    r = await client.get(f"{parts.path}?{parts.query}", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def all_pages(client: httpx.AsyncClient, first: dict, headers: dict | None = None) -> list[dict]:
    pages = [first]
    while (url := link(pages[-1], "next")) is not None:
        pages.append(await follow(client, url, headers))
        assert len(pages) < 100
    return pages
