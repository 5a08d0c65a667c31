"""Paging links that stay short whatever the query: a long search (a large ``POST _search`` form
body) pages through ``_page_token`` links; short ones keep their parameters and cursor in the link
and write nothing; expired, unknown, malformed or misused tokens answer an OperationOutcome."""

from __future__ import annotations

import uuid
from urllib.parse import parse_qsl, urlencode, urlsplit

import asyncpg
import httpx

from tests.queries.test_search import TAG_SYSTEM, Scope, pat

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def _link(bundle: dict, relation: str) -> str | None:
    return next((link["url"] for link in bundle.get("link", []) if link["relation"] == relation), None)


async def _follow(client: httpx.AsyncClient, url: str) -> httpx.Response:
    """Re-sends the link's path and query string, as a client would."""
    parts = urlsplit(url)
    assert parts.scheme == "http" and parts.netloc == "testserver", url
    return await client.get(f"{parts.path}?{parts.query}")


async def _long_search(client: httpx.AsyncClient, scope: Scope, path: str, *extra: tuple[str, str]) -> httpx.Response:
    """A ~60 KB form body: 16 ``_id`` criteria (ANDed), each ORing the scope's ids among 95 others."""
    criteria = []
    for _ in range(16):
        decoys = [str(uuid.uuid4()) for _ in range(95)]
        criteria.append(("_id", ",".join([*decoys[:40], *scope.ids.values(), *decoys[40:]])))
    body = urlencode([*criteria, ("_tag", f"{TAG_SYSTEM}|{scope.tag}"), ("_count", "2"), *extra])
    assert len(body) > 58_000
    return await client.post(path, content=body, headers=FORM)


async def _walk(client: httpx.AsyncClient, first: dict) -> tuple[list[str], list[dict]]:
    pages, seen, page = [first], [e["resource"]["id"] for e in first.get("entry", [])], first
    while _link(page, "next"):
        assert len(_link(page, "next")) <= 2048
        r = await _follow(client, _link(page, "next"))
        assert r.status_code == 200, r.text
        page = r.json()
        pages.append(page)
        seen += [e["resource"]["id"] for e in page.get("entry", [])]
    return seen, pages


async def _five_patients(client: httpx.AsyncClient) -> Scope:
    s = Scope(client)
    for i in range(5):
        await s.add(f"p{i}", pat(gender="male"))
    return s


async def test_long_post_search_pages_through_short_token_links(client: httpx.AsyncClient, log_count) -> None:
    s = await _five_patients(client)
    before = await log_count()
    r = await _long_search(client, s, "/fhir/Patient/_search", ("_total", "accurate"))
    assert r.status_code == 200, r.text
    first = r.json()
    assert first["total"] == 5
    link = _link(first, "next")
    assert link.startswith("http://testserver/fhir/Patient?_page_token=") and len(link) < 300, link
    assert "_id=" not in link
    seen, pages = await _walk(client, first)
    assert sorted(seen) == sorted(s.ids.values()) and len(pages) == 3
    assert all(p["total"] == 5 for p in pages), "every page still applies the whole search"
    back = await _follow(client, _link(pages[2], "previous"))
    assert back.status_code == 200, back.text
    assert [e["resource"]["id"] for e in back.json()["entry"]] == [e["resource"]["id"] for e in pages[1]["entry"]]
    assert _link(back.json(), "previous").startswith("http://testserver/fhir/Patient?_page_token=")
    assert await log_count() == before


async def test_short_search_links_keep_parameters_and_write_nothing(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    s = await _five_patients(client)
    stored = await pool.fetchval("SELECT count(*) FROM search_page")
    r = await client.post(
        "/fhir/Patient/_search", content=f"gender=male&_tag={TAG_SYSTEM}|{s.tag}&_count=2", headers=FORM
    )
    first = r.json()
    query = dict(parse_qsl(urlsplit(_link(first, "next")).query))
    assert query["gender"] == "male" and query["_count"] == "2" and "_page" in query and "_page_token" not in query
    seen, _ = await _walk(client, first)
    assert sorted(seen) == sorted(s.ids.values())
    assert await pool.fetchval("SELECT count(*) FROM search_page") == stored


async def test_long_system_search_pages_both_ways_with_tokens(client: httpx.AsyncClient) -> None:
    s = await _five_patients(client)
    r = await _long_search(client, s, "/fhir/_search", ("_type", "Patient,Observation"))
    assert r.status_code == 200, r.text
    first = r.json()
    assert _link(first, "next").startswith("http://testserver/fhir?_page_token=")
    seen, pages = await _walk(client, first)
    assert sorted(seen) == sorted(s.ids.values())
    back = (await _follow(client, _link(pages[-1], "previous"))).json()
    assert [e["resource"]["id"] for e in back["entry"]] == [e["resource"]["id"] for e in pages[-2]["entry"]]
    token = dict(parse_qsl(urlsplit(_link(first, "next")).query))["_page_token"]
    on_type = await client.get(f"/fhir/Patient?_page_token={token}")
    assert on_type.status_code == 400 and "[base] (all types)" in on_type.json()["issue"][0]["diagnostics"]


async def test_expired_or_unknown_token_asks_to_rerun(client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    s = await _five_patients(client)
    link = _link((await _long_search(client, s, "/fhir/Patient/_search")).json(), "next")
    token = dict(parse_qsl(urlsplit(link).query))["_page_token"]
    await pool.execute("UPDATE search_page SET used_at = now() - interval '2 hours' WHERE token = $1", token)
    for url in (link, "http://testserver/fhir/Patient?_page_token=" + "A" * 22):
        r = await _follow(client, url)
        assert r.status_code == 410, r.text
        outcome = r.json()
        assert (
            outcome["resourceType"] == "OperationOutcome" and "re-run the search" in outcome["issue"][0]["diagnostics"]
        )


async def test_malformed_or_misused_token_is_400(client: httpx.AsyncClient) -> None:
    s = await _five_patients(client)
    link = _link((await _long_search(client, s, "/fhir/Patient/_search")).json(), "next")
    token = dict(parse_qsl(urlsplit(link).query))["_page_token"]
    cases = {
        "/fhir/Patient?_page_token=nope": "not one this server issued",
        f"/fhir/Patient?_page_token={token}&_page_token={token}": "only once",
        f"/fhir/Patient?_page_token={token}&gender=female": "cannot be combined with gender",
        f"/fhir/Observation?_page_token={token}": "belongs to a search on [base]/Patient",
        f"/fhir?_page_token={token}": "belongs to a search on [base]/Patient",
    }
    for url, words in cases.items():
        r = await client.get(url)
        assert r.status_code == 400, (url, r.text)
        assert words in r.json()["issue"][0]["diagnostics"], (url, r.text)


async def test_links_are_absolute_with_the_requests_host(client: httpx.AsyncClient) -> None:
    s = await _five_patients(client)
    for path in ("/fhir/Patient", "/fhir"):
        r = await client.get(
            path,
            params={"_type": "Patient", "_tag": f"{TAG_SYSTEM}|{s.tag}", "_count": "2"},
            headers={"Host": "fhir.example.org:8443"},
        )
        assert r.status_code == 200, r.text
        bundle = r.json()
        for relation in ("self", "next"):
            assert _link(bundle, relation).startswith(f"http://fhir.example.org:8443{path}?"), bundle["link"]
        assert bundle["entry"][0]["fullUrl"].startswith("http://fhir.example.org:8443/fhir/Patient/")
