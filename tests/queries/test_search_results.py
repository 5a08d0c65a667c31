"""Search results: Bundle shape, paging by keyset cursor, _sort, _total, _summary, _elements,
unknown and malformed parameters, POST _search."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import httpx

from tests.queries.test_search import TAG_SYSTEM, Scope, pat


def _link(bundle: dict, relation: str) -> str | None:
    return next((link["url"] for link in bundle.get("link", []) if link["relation"] == relation), None)


async def _follow(client: httpx.AsyncClient, url: str) -> dict:
    parts = urlsplit(url)
    assert parts.scheme == "http" and parts.netloc == "testserver" and parts.path.startswith("/fhir/")
    r = await client.get(f"{parts.path}?{parts.query}")
    assert r.status_code == 200, r.text
    return r.json()


async def test_searchset_bundle_shape(client: httpx.AsyncClient) -> None:
    s = Scope(client)
    pid = await s.add("a", pat(gender="male"))
    bundle = await s.bundle("Patient", "gender=male")
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
    assert bundle["total"] == 1
    entry = bundle["entry"][0]
    assert entry["fullUrl"] == f"http://testserver/fhir/Patient/{pid}"
    assert entry["search"] == {"mode": "match"}
    assert entry["resource"]["id"] == pid
    self_link = _link(bundle, "self")
    assert self_link.startswith("http://testserver/fhir/Patient?") and "gender=male" in self_link


async def test_paging_visits_every_match_once_even_while_writing(client: httpx.AsyncClient) -> None:
    s = Scope(client)
    for i in range(11):
        await s.add(f"p{i}", pat(gender="other"))
    first = (await client.get(f"/fhir/Patient?_tag={TAG_SYSTEM}|{s.tag}&_count=3&_total=accurate")).json()
    assert first["total"] == 11 and len(first["entry"]) == 3
    assert _link(first, "previous") is None
    seen = [e["resource"]["id"] for e in first["entry"]]
    page = first
    writers = asyncio.gather(*[s.add(f"late{i}", pat(gender="other")) for i in range(4)])
    pages = [first]
    while _link(page, "next"):
        page = await _follow(client, _link(page, "next"))
        pages.append(page)
        seen += [e["resource"]["id"] for e in page["entry"]]
    await writers
    assert len(seen) == len(set(seen)), "no result repeated"
    assert {s.ids[f"p{i}"] for i in range(11)} <= set(seen), "no result skipped"
    back = await _follow(client, _link(pages[2], "previous"))
    everything = (await client.get(f"/fhir/Patient?_tag={TAG_SYSTEM}|{s.tag}&_count=100")).json()
    ordered = [e["resource"]["id"] for e in everything["entry"]]
    at = ordered.index(pages[2]["entry"][0]["resource"]["id"])
    assert [e["resource"]["id"] for e in back["entry"]] == ordered[at - 3 : at]


async def test_next_link_works_as_query_string_on_the_type(client: httpx.AsyncClient) -> None:
    s = Scope(client)
    for i in range(3):
        await s.add(f"p{i}", pat())
    first = (await client.get(f"/fhir/Patient?_tag={TAG_SYSTEM}|{s.tag}&_count=2")).json()
    query = urlsplit(_link(first, "next")).query
    second = (await client.get(f"/fhir/Patient?{query}")).json()
    assert len(second["entry"]) == 1


async def test_sort_by_several_keys_and_directions(client: httpx.AsyncClient) -> None:
    s = Scope(client)
    await s.add("b80", pat(birthDate="1980-01-01", name=[{"family": "Baker"}]))
    await s.add("a80", pat(birthDate="1980-01-01", name=[{"family": "Adams"}]))
    await s.add("c70", pat(birthDate="1970-05-05", name=[{"family": "Clark"}]))
    await s.add("none", pat(name=[{"family": "Zed"}]))
    names = {v: k for k, v in s.ids.items()}

    async def order(sort: str, count: int = 100) -> list[str]:
        out: list[str] = []
        page = (await client.get(f"/fhir/Patient?_tag={TAG_SYSTEM}|{s.tag}&_sort={sort}&_count={count}")).json()
        while True:
            out += [names[e["resource"]["id"]] for e in page.get("entry", [])]
            if not _link(page, "next"):
                return out
            page = await _follow(client, _link(page, "next"))

    assert await order("birthdate,family") == ["c70", "a80", "b80", "none"]
    assert await order("-birthdate,family") == ["a80", "b80", "c70", "none"]
    assert await order("-birthdate,-family") == ["b80", "a80", "c70", "none"]
    assert await order("-birthdate,-family", count=1) == ["b80", "a80", "c70", "none"]
    assert await order("family", count=3) == ["a80", "b80", "c70", "none"]
    by_id = await order("_id")
    assert by_id == sorted(by_id, key=lambda n: s.ids[n])
    assert await order("-_lastUpdated") == ["none", "c70", "a80", "b80"]


async def test_total_summary_elements(client: httpx.AsyncClient) -> None:
    s = Scope(client)
    await s.add("a", pat(gender="female", name=[{"family": "Sum"}], photo=[{"contentType": "image/png"}]))
    base = f"/fhir/Patient?_tag={TAG_SYSTEM}|{s.tag}"
    assert "total" not in (await client.get(f"{base}&_total=none")).json()
    assert (await client.get(f"{base}&_total=accurate")).json()["total"] == 1
    count = (await client.get(f"{base}&_summary=count")).json()
    assert count["total"] == 1 and "entry" not in count
    summary = (await client.get(f"{base}&_summary=true")).json()["entry"][0]["resource"]
    assert "name" in summary and "photo" not in summary
    assert any(t["code"] == "SUBSETTED" for t in summary["meta"]["tag"])
    elements = (await client.get(f"{base}&_elements=gender")).json()["entry"][0]["resource"]
    assert set(elements) == {"resourceType", "id", "meta", "gender"}


async def test_unknown_parameter_lenient_warns_strict_rejects(client: httpx.AsyncClient) -> None:
    lenient = await client.get("/fhir/Patient?nonsense=1&_count=1", headers={"Prefer": "handling=lenient"})
    assert lenient.status_code == 200
    outcomes = [e for e in lenient.json().get("entry", []) if e["search"]["mode"] == "outcome"]
    assert outcomes and "nonsense" in outcomes[0]["resource"]["issue"][0]["diagnostics"]
    for headers in ({}, {"Prefer": "handling=strict"}):  # strict is the default
        strict = await client.get("/fhir/Patient?nonsense=1", headers=headers)
        assert strict.status_code == 400
        assert "nonsense" in strict.json()["issue"][0]["diagnostics"]


async def test_malformed_values_are_400_naming_parameter_and_value(client: httpx.AsyncClient, log_count) -> None:
    before = await log_count()
    cases = {
        "birthdate=1974-13-01": "birthdate",
        "birthdate=xx1974": "birthdate",
        "birthdate=notadate": "birthdate",
        "gender:fuzzy=male": "fuzzy",
        "value-quantity=abc": "value-quantity",
        "_count=many": "_count",
        "_sort=nonsense": "nonsense",
        "_summary=maybe": "_summary",
        "_total=all": "_total",
        "gender:missing=perhaps": "gender",
        "subject:Patient=Patient/1": "subject",
        "code-value-quantity=only-one-part": "code-value-quantity",
        "_page=bogus": "_page",
    }
    for query, text in cases.items():
        resource_type = "Observation" if "quantity" in query or "subject" in query else "Patient"
        r = await client.get(f"/fhir/{resource_type}?{query}")
        assert r.status_code == 400, (query, r.text)
        assert text in r.json()["issue"][0]["diagnostics"], (query, r.text)
    assert (await client.get("/fhir/Nope?x=1")).status_code == 404
    assert await log_count() == before


async def test_sql_looking_values_are_just_values(client: httpx.AsyncClient, log_count) -> None:
    s = Scope(client)
    await s.add("a", pat(name=[{"family": "O'Brien"}]))
    before = await log_count()
    for value in ("'; DROP TABLE event_log; --", "x' OR '1'='1", "%", "_", "\\", "O'Brien"):
        r = await client.get("/fhir/Patient", params={"family": value, "_tag": f"{TAG_SYSTEM}|{s.tag}"})
        assert r.status_code == 200
        ids = [e["resource"]["id"] for e in r.json().get("entry", [])]
        assert ids == ([s.ids["a"]] if value == "O'Brien" else [])
    assert await log_count() == before
    assert await client.get("/fhir/Patient?_count=1") is not None


async def test_post_search_equals_get(client: httpx.AsyncClient) -> None:
    s = Scope(client)
    await s.add("a", pat(gender="male"))
    await s.add("b", pat(gender="female"))
    form = {"gender": "male", "_tag": f"{TAG_SYSTEM}|{s.tag}"}
    posted = await client.post("/fhir/Patient/_search", data=form)
    assert posted.status_code == 200, posted.text
    got = await client.get("/fhir/Patient", params=form)
    assert [e["resource"]["id"] for e in posted.json()["entry"]] == [e["resource"]["id"] for e in got.json()["entry"]]
    assert posted.json()["total"] == 1


async def test_date_sort_pages_through_resources_with_and_without_the_date(client: httpx.AsyncClient) -> None:
    """``_sort=-date`` walks the sort-key index, then the resources without a date (NULLS LAST),
    in the same order as the general plan (latest end first, then creation order: the key)."""
    s = Scope(client)
    enc = {"resourceType": "Encounter", "status": "finished", "class": {"code": "AMB"}}
    periods = [
        ("2020-01-01", "2020-01-02"),
        ("2021-05-01", None),
        ("2019-03-03", "2019-03-04"),
        ("2020-01-01", "2020-01-02"),
    ]
    for i, (start, end) in enumerate(periods):
        period = {"start": start, **({"end": end} if end else {})}
        await s.add(f"e{i}", {**enc, "period": period})
    for i in range(3):
        await s.add(f"n{i}", enc)
    names = {v: k for k, v in s.ids.items()}

    async def walk(sort: str) -> list[str]:
        out: list[str] = []
        page = (await client.get(f"/fhir/Encounter?_tag={TAG_SYSTEM}|{s.tag}&_sort={sort}&_count=2")).json()
        while True:
            out += [names[e["resource"]["id"]] for e in page.get("entry", [])]
            if not _link(page, "next"):
                return out
            page = await _follow(client, _link(page, "next"))

    tie = ["e0", "e3"]
    nodate = ["n0", "n1", "n2"]
    assert await walk("-date") == ["e1", *tie, "e2", *nodate]  # an open end sorts as the latest
    assert await walk("date") == ["e2", *tie, "e1", *nodate]
