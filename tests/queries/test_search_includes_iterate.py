"""Wildcard and iterating _include / _revinclude, and the warnings when their bounds cut the
included set (https://hl7.org/fhir/R4/search.html#include)."""

from __future__ import annotations

import httpx
import pytest

from app.queries.search import includes
from tests.queries.test_search import Scope, pat

OBS = {"resourceType": "Observation", "status": "final", "code": {"text": "c"}}


def _included(bundle: dict) -> set[tuple[str, str]]:
    return {
        (e["resource"]["resourceType"], e["resource"]["id"])
        for e in bundle["entry"]
        if e["search"]["mode"] == "include"
    }


def _warnings(bundle: dict) -> str:
    return " ".join(
        i["diagnostics"]
        for e in bundle.get("entry", [])
        if e["search"]["mode"] == "outcome"
        for i in e["resource"]["issue"]
    )


async def _orgs(s: Scope, n: int) -> list[str]:
    """A chain of ``n`` organisations, each partOf the one before."""
    ids: list[str] = []
    for i in range(n):
        org = {"resourceType": "Organization", "name": f"Org{i}"}
        if ids:
            org["partOf"] = {"reference": f"Organization/{ids[-1]}"}
        ids.append(await s.add(f"org{i}", org))
    return ids


async def test_wildcard_includes(client: httpx.AsyncClient) -> None:
    s = Scope(client)
    doc = await s.add("doc", {"resourceType": "Practitioner", "name": [{"family": "Wild"}]})
    pid = await s.add("p", pat(generalPractitioner=[{"reference": f"Practitioner/{doc}"}]))
    obs = await s.add(
        "o", {**OBS, "subject": {"reference": f"Patient/{pid}"}, "performer": [{"reference": f"Practitioner/{doc}"}]}
    )
    enc = await s.add(
        "e",
        {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"code": "AMB"},
            "subject": {"reference": f"Patient/{pid}"},
        },
    )
    expected = {("Patient", pid), ("Practitioner", doc)}
    assert _included(await s.bundle("Observation", f"_id={obs}&_include=Observation:*")) == expected
    assert _included(await s.bundle("Observation", f"_id={obs}&_include=*")) == expected
    assert _included(await s.bundle("Observation", f"_id={obs}&_include=Observation:*:Practitioner")) == {
        ("Practitioner", doc)
    }
    assert _included(await s.bundle("Patient", f"_id={pid}&_revinclude=*")) == {
        ("Observation", obs),
        ("Encounter", enc),
    }
    assert _included(await s.bundle("Practitioner", f"_id={doc}&_revinclude=Observation:*")) == {("Observation", obs)}


async def test_iterate_follows_includes_until_nothing_new(client: httpx.AsyncClient) -> None:
    s = Scope(client)
    orgs = await _orgs(s, 4)
    once = await s.bundle("Organization", f"_id={orgs[3]}&_include=Organization:partof")
    assert _included(once) == {("Organization", orgs[2])}
    up = await s.bundle("Organization", f"_id={orgs[3]}&_include:iterate=Organization:partof")
    assert _included(up) == {("Organization", o) for o in orgs[:3]}
    assert _warnings(up) == ""
    down = await s.bundle("Organization", f"_id={orgs[0]}&_revinclude:iterate=Organization:partof")
    assert _included(down) == {("Organization", o) for o in orgs[1:]}
    pid = await s.add("p", pat(managingOrganization={"reference": f"Organization/{orgs[1]}"}))
    obs = await s.add("o", {**OBS, "subject": {"reference": f"Patient/{pid}"}})
    mixed = await s.bundle(
        "Observation",
        f"_id={obs}&_include=Observation:subject&_include:iterate=Patient:organization"
        "&_include:iterate=Organization:partof",
    )
    assert _included(mixed) == {("Patient", pid), ("Organization", orgs[1]), ("Organization", orgs[0])}


async def test_iterate_bounds_are_reported(client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    s = Scope(client)
    orgs = await _orgs(s, 6)
    monkeypatch.setattr(includes, "ITERATE_ROUNDS", 3)
    bundle = await s.bundle("Organization", f"_id={orgs[5]}&_include:iterate=Organization:partof")
    assert _included(bundle) == {("Organization", o) for o in orgs[2:5]}
    assert "3" in _warnings(bundle) and "iterat" in _warnings(bundle)


async def test_revinclude_beyond_the_cap_is_not_cut_silently(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = Scope(client)
    pid = await s.add("p", pat())
    for i in range(3):
        await s.add(f"o{i}", {**OBS, "subject": {"reference": f"Patient/{pid}"}})
    monkeypatch.setattr(includes, "INCLUDE_LIMIT", 2)
    bundle = await s.bundle("Patient", f"_id={pid}&_revinclude=Observation:subject")
    assert len(_included(bundle)) == 2
    text = _warnings(bundle)
    assert "truncated" in text and "Observation?subject=" in text, text
    monkeypatch.setattr(includes, "INCLUDE_LIMIT", 3)
    bundle = await s.bundle("Patient", f"_id={pid}&_revinclude=Observation:subject")
    assert len(_included(bundle)) == 3 and _warnings(bundle) == ""
