"""Bundle.total (https://hl7.org/fhir/R4/search.html#total): counted when asked (``_total=accurate``,
``_summary=count``, ``_count=0``) or free (the first page holds every match); an estimate when
``_total=estimate`` (said so in an information issue); otherwise left out. Always a count of
distinct resources, never of index rows."""

from __future__ import annotations

import httpx

from tests.queries.test_search import TAG_SYSTEM, Scope, pat


async def _get(client: httpx.AsyncClient, s: Scope, query: str) -> dict:
    r = await client.get(f"/fhir/Patient?_tag={TAG_SYSTEM}|{s.tag}&{query}")
    assert r.status_code == 200, r.text
    return r.json()


def _matches(bundle: dict) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]


def _outcomes(bundle: dict) -> list[dict]:
    return [i for e in bundle.get("entry", []) if e["search"]["mode"] == "outcome" for i in e["resource"]["issue"]]


async def _five(client: httpx.AsyncClient) -> Scope:
    s = Scope(client)
    for i in range(5):  # two names each: two index rows per match of a name search
        await s.add(f"p{i}", pat(name=[{"family": "Totalson", "given": ["A"]}, {"family": "Totalsen"}]))
    return s


async def test_default_total_is_given_when_the_page_holds_every_match(client: httpx.AsyncClient) -> None:
    s = await _five(client)
    bundle = await _get(client, s, "family=totals")
    assert bundle["total"] == 5 and len(_matches(bundle)) == 5
    assert _outcomes(bundle) == []


async def test_default_total_is_left_out_when_counting_would_cost_more(client: httpx.AsyncClient) -> None:
    s = await _five(client)
    bundle = await _get(client, s, "family=totals&_count=2")
    assert "total" not in bundle and len(_matches(bundle)) == 2
    assert any(link["relation"] == "next" for link in bundle["link"])
    assert _outcomes(bundle) == []  # total is optional; nothing was asked that was not done


async def test_accurate_total_counts_distinct_resources_on_every_page(client: httpx.AsyncClient) -> None:
    s = await _five(client)
    first = await _get(client, s, "family=totals&_count=2&_total=accurate")
    assert first["total"] == 5  # each resource matches with two names: still counted once
    nxt = next(link["url"] for link in first["link"] if link["relation"] == "next")
    page = (await client.get(nxt.replace("http://testserver", ""))).json()
    assert page["total"] == 5


async def test_summary_count_and_count_zero_count_exactly(client: httpx.AsyncClient) -> None:
    s = await _five(client)
    counted = await _get(client, s, "family=totals&_summary=count")
    assert counted["total"] == 5 and "entry" not in counted
    zero = await _get(client, s, "family=totals&_count=0")
    assert zero["total"] == 5 and _matches(zero) == []


async def test_estimate_is_a_number_and_says_it_is_an_estimate(client: httpx.AsyncClient) -> None:
    s = await _five(client)
    bundle = await _get(client, s, "family=totals&_count=2&_total=estimate")
    assert isinstance(bundle["total"], int) and bundle["total"] >= 2
    issues = _outcomes(bundle)
    assert [i["severity"] for i in issues] == ["information"]
    assert "estimate" in issues[0]["diagnostics"] and "_total=accurate" in issues[0]["diagnostics"]
    complete = await _get(client, s, "family=totals&_total=estimate")
    assert complete["total"] == 5 and _outcomes(complete) == []  # the whole result: exact and free


async def test_total_none_leaves_it_out_even_when_free(client: httpx.AsyncClient) -> None:
    s = await _five(client)
    bundle = await _get(client, s, "family=totals&_total=none")
    assert "total" not in bundle and len(_matches(bundle)) == 5


async def test_system_search_follows_the_same_rules(client: httpx.AsyncClient) -> None:
    s = await _five(client)
    query = f"/fhir?_type=Patient&_tag={TAG_SYSTEM}|{s.tag}"
    assert (await client.get(query)).json()["total"] == 5
    assert "total" not in (await client.get(f"{query}&_count=2")).json()
    assert (await client.get(f"{query}&_count=2&_total=accurate")).json()["total"] == 5
    estimated = (await client.get(f"{query}&_count=2&_total=estimate")).json()
    assert estimated["total"] >= 2 and "estimate" in _outcomes(estimated)[0]["diagnostics"]
