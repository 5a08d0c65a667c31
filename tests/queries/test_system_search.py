"""search-system: ``POST [base]/_search`` like ``GET [base]?…``, ``_summary``/``_elements`` on
entries of several types, and ``previous`` links across types."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

from tests.queries.test_search import TAG_SYSTEM, Scope, pat

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}


def _link(bundle: dict, relation: str) -> str | None:
    return next((link["url"] for link in bundle.get("link", []) if link["relation"] == relation), None)


async def _get(client: httpx.AsyncClient, url: str) -> dict:
    parts = urlsplit(url)
    r = await client.get(f"{parts.path}?{parts.query}")
    assert r.status_code == 200, r.text
    return r.json()


def _ids(bundle: dict) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]


async def _mixed(client: httpx.AsyncClient) -> Scope:
    s = Scope(client)
    for i in range(3):
        await s.add(f"p{i}", pat(gender="female", maritalStatus={"text": "M"}, name=[{"family": f"F{i}"}]))
        obs = {"resourceType": "Observation", "status": "final", "code": {"text": "t"}, "note": [{"text": "n"}]}
        await s.add(f"o{i}", obs)
    return s


async def test_post_system_search_answers_like_get(client: httpx.AsyncClient, log_count) -> None:
    s = await _mixed(client)
    query = f"_type=Patient,Observation&_tag={TAG_SYSTEM}|{s.tag}"
    before = await log_count()
    got = await _get(client, f"/fhir?{query}")
    r = await client.post("/fhir/_search", content=query, headers=FORM)
    assert r.status_code == 200, r.text
    posted = r.json()
    assert posted["type"] == "searchset" and posted["total"] == got["total"] == 6
    assert _ids(posted) == _ids(got) and sorted(_ids(posted)) == sorted(s.ids.values())
    mixed = await client.post("/fhir/_search?_type=Observation", content=f"_tag={TAG_SYSTEM}|{s.tag}", headers=FORM)
    assert sorted(_ids(mixed.json())) == sorted(s.ids[f"o{i}"] for i in range(3)), "URL and body parameters combine"
    assert await log_count() == before


async def test_post_system_search_wants_a_form_body(client: httpx.AsyncClient) -> None:
    r = await client.post("/fhir/_search", json={"_type": "Patient"})
    assert r.status_code == 415 and r.json()["resourceType"] == "OperationOutcome"


async def test_elements_and_summary_on_system_search(client: httpx.AsyncClient) -> None:
    s = await _mixed(client)
    tag = f"_type=Patient,Observation&_tag={TAG_SYSTEM}|{s.tag}"
    elements = await _get(client, f"/fhir?{tag}&_elements=status,gender")
    assert len(elements["entry"]) == 6
    for e in elements["entry"]:
        resource = e["resource"]
        assert set(resource) <= {"resourceType", "id", "meta", "status", "gender"}, resource
        assert SUBSETTED in resource["meta"]["tag"]
    kinds = {e["resource"]["resourceType"]: e["resource"] for e in elements["entry"]}
    assert kinds["Patient"]["gender"] == "female" and kinds["Observation"]["status"] == "final"
    summary = await _get(client, f"/fhir?{tag}&_summary=true")
    for e in summary["entry"]:
        assert "maritalStatus" not in e["resource"] and "note" not in e["resource"], e["resource"]
        assert SUBSETTED in e["resource"]["meta"]["tag"]
    assert any("name" in e["resource"] for e in summary["entry"])
    count = await _get(client, f"/fhir?{tag}&_summary=count")
    assert count["total"] == 6 and "entry" not in count


async def test_system_search_pages_back_with_previous_links(client: httpx.AsyncClient) -> None:
    s = await _mixed(client)
    page = await _get(client, f"/fhir?_type=Patient,Observation&_tag={TAG_SYSTEM}|{s.tag}&_count=2")
    assert _link(page, "previous") is None
    pages = [page]
    while _link(page, "next"):
        page = await _get(client, _link(page, "next"))
        pages.append(page)
    assert len(pages) == 3 and sorted(sum((_ids(p) for p in pages), [])) == sorted(s.ids.values())
    assert _ids(pages[0])[0] in {s.ids[f"o{i}"] for i in range(3)}, "ordered by type, then id"
    for i in (2, 1):
        back = await _get(client, _link(pages[i], "previous"))
        assert _ids(back) == _ids(pages[i - 1])
    back = await _get(client, _link(pages[1], "previous"))
    assert _link(back, "previous") is None and _link(back, "next")
