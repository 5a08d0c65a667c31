"""history at instance, type and system level: newest first, deletions, _since, _at, _count and
keyset paging through Bundle.link."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import httpx

from tests.helpers import new_id, patient


async def _versions(client: httpx.AsyncClient, pid: str, n: int) -> None:
    for i in range(n):
        r = await client.put(f"/fhir/Patient/{pid}", json=patient(pid, family=f"V{i + 1}"))
        assert r.status_code in (200, 201)


def _link(bundle: dict, relation: str) -> str | None:
    for link in bundle.get("link", []):
        if link["relation"] == relation:
            return link["url"]
    return None


async def _get(client: httpx.AsyncClient, absolute: str) -> dict:
    parts = urlsplit(absolute)
    assert parts.scheme == "http" and parts.netloc == "testserver"
    r = await client.get(f"{parts.path}?{parts.query}")
    assert r.status_code == 200, r.text
    return r.json()


async def test_instance_history_newest_first_with_deletion_entry(client: httpx.AsyncClient) -> None:
    pid = new_id()
    await _versions(client, pid, 2)
    await client.delete(f"/fhir/Patient/{pid}")
    bundle = (await client.get(f"/fhir/Patient/{pid}/_history")).json()
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "history"
    assert bundle["total"] == 3
    entries = bundle["entry"]
    assert [e["response"]["etag"] for e in entries] == ['W/"3"', 'W/"2"', 'W/"1"']
    deletion = entries[0]
    assert deletion["request"] == {"method": "DELETE", "url": f"Patient/{pid}"}
    assert "resource" not in deletion
    assert entries[1]["request"]["method"] == "PUT"
    assert entries[1]["resource"]["meta"]["versionId"] == "2"
    assert entries[2]["response"]["status"].startswith("201")
    assert entries[1]["fullUrl"] == f"http://testserver/fhir/Patient/{pid}"
    assert entries[1]["response"]["lastModified"] == entries[1]["resource"]["meta"]["lastUpdated"]


async def test_instance_history_pages_forward_and_back(client: httpx.AsyncClient) -> None:
    pid = new_id()
    await _versions(client, pid, 7)
    first = (await client.get(f"/fhir/Patient/{pid}/_history?_count=3")).json()
    assert _link(first, "self").startswith("http://testserver/fhir/Patient/")
    assert _link(first, "previous") is None
    seen = [e["resource"]["meta"]["versionId"] for e in first["entry"]]
    page = first
    pages = [page]
    while _link(page, "next"):
        page = await _get(client, _link(page, "next"))
        pages.append(page)
        seen += [e["resource"]["meta"]["versionId"] for e in page["entry"]]
    assert seen == ["7", "6", "5", "4", "3", "2", "1"]
    assert len(pages) == 3
    back = await _get(client, _link(pages[2], "previous"))
    assert [e["resource"]["meta"]["versionId"] for e in back["entry"]] == ["4", "3", "2"]
    back2 = await _get(client, _link(back, "previous"))
    assert [e["resource"]["meta"]["versionId"] for e in back2["entry"]] == ["7", "6", "5"]
    assert _link(back2, "previous") is None


async def test_type_history_pages_without_skips_or_repeats_while_writing(client: httpx.AsyncClient) -> None:
    rtype = "Basic"
    made = []
    for _ in range(9):
        r = await client.post(f"/fhir/{rtype}", json={"resourceType": rtype, "code": {"text": "h"}})
        made.append(r.json()["id"])
    page = (await client.get(f"/fhir/{rtype}/_history?_count=4")).json()
    seen = _versions_of(page)
    writer = asyncio.gather(
        *[client.post(f"/fhir/{rtype}", json={"resourceType": rtype, "code": {"text": "late"}}) for _ in range(5)]
    )
    while _link(page, "next"):
        page = await _get(client, _link(page, "next"))
        seen += _versions_of(page)
    await writer
    assert len(seen) == len(set(seen))
    assert {(f"{rtype}/{rid}", 'W/"1"') for rid in made} <= set(seen)


def _versions_of(bundle: dict) -> list[tuple[str, str]]:
    """(type/id, ETag) of each history entry: a deletion (another test's) carries no resource, and
    another test's resource may have several versions."""
    return [
        (e["fullUrl"].rsplit("/", 2)[-2] + "/" + e["fullUrl"].rsplit("/", 1)[-1], e["response"]["etag"])
        for e in bundle["entry"]
    ]


async def test_system_history_contains_several_types(client: httpx.AsyncClient) -> None:
    r1 = await client.post("/fhir/Patient", json=patient())
    r2 = await client.post("/fhir/Basic", json={"resourceType": "Basic", "code": {"text": "s"}})
    bundle = (await client.get("/fhir/_history?_count=2")).json()
    ids = [e["resource"]["id"] for e in bundle["entry"]]
    assert ids == [r2.json()["id"], r1.json()["id"]]
    assert _link(bundle, "next") is not None


async def test_since_and_at(client: httpx.AsyncClient) -> None:
    pid = new_id()
    await _versions(client, pid, 1)
    v1_time = (await client.get(f"/fhir/Patient/{pid}")).json()["meta"]["lastUpdated"]
    await asyncio.sleep(0.02)
    await _versions(client, pid, 1)
    v2_time = (await client.get(f"/fhir/Patient/{pid}")).json()["meta"]["lastUpdated"]
    since = (await client.get(f"/fhir/Patient/{pid}/_history", params={"_since": v2_time})).json()
    assert [e["resource"]["meta"]["versionId"] for e in since["entry"]] == ["2"]
    at = (await client.get(f"/fhir/Patient/{pid}/_history", params={"_at": v1_time})).json()
    assert [e["resource"]["meta"]["versionId"] for e in at["entry"]] == ["1"]
    year = v1_time[:4]
    both = (await client.get(f"/fhir/Patient/{pid}/_history", params={"_at": year})).json()
    assert [e["resource"]["meta"]["versionId"] for e in both["entry"]] == ["2", "1"]
    before = (await client.get(f"/fhir/Patient/{pid}/_history", params={"_at": "1999"})).json()
    assert before.get("entry", []) == []


async def test_bad_history_parameters_are_400(client: httpx.AsyncClient) -> None:
    for query in ("_since=yesterday", "_count=-1", "_count=abc", "_at=2020-13", "_page=%%%"):
        r = await client.get(f"/fhir/Patient/_history?{query}")
        assert r.status_code == 400, query
        assert r.json()["resourceType"] == "OperationOutcome"


async def test_history_of_unknown_type_is_404(client: httpx.AsyncClient) -> None:
    assert (await client.get("/fhir/Nope/_history")).status_code == 404
    assert (await client.get("/fhir/Nope/1/_history")).status_code == 404


async def test_history_of_a_resource_that_never_existed_is_404(client: httpx.AsyncClient) -> None:
    r = await client.get(f"/fhir/Patient/{new_id()}/_history")
    assert r.status_code == 404
    assert "not known" in r.json()["issue"][0]["diagnostics"]
