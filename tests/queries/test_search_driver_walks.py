"""Which criterion drives a search, and how its rows are read (app/queries/search/driver.py):

- a criterion with few matches drives and its matches are read in full before the other criteria
  are probed, never by walking a side table's ``id`` index through every parameter's rows;
- with many matches on every side, a walk of the ``id`` index is not taken for an ordered path of
  one criterion: the criterion whose own index hands its rows over in id order drives;
- either way the answers and their paging (next and previous links) are those of the search.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import asyncpg
import httpx
import orjson
import pytest

from app.queries.search import driver as driver_module
from app.queries.search.driver import _estimate, choose_driver
from app.queries.search.parse import parse_search
from app.queries.search.plan import group_sql, group_types, page_sql
from app.queries.search.session import search_session
from tests.queries.test_search import TAG_SYSTEM, Scope

UCUM = "http://unitsofmeasure.org"


@pytest.fixture
def scope(client: httpx.AsyncClient) -> Scope:
    return Scope(client)


def obs(code: str, value: float, when: str, component: float | None = None) -> dict:
    resource: dict = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "system": UCUM, "code": "mg/dL"},
    }
    if component is not None:  # rows of another parameter in the same quantity table
        resource["component"] = [
            {
                "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                "valueQuantity": {"value": component, "system": UCUM, "code": "mg/dL"},
            }
        ]
    return resource


async def _fill(scope: Scope) -> None:
    """Twelve Observations of code A and four of B; values 100..111 (A), components 500.. (A)."""
    for i in range(12):
        await scope.add(f"a{i}", obs("2339-0", 100 + i, f"20{10 + i}-06-01", component=500 + i))
    for i in range(4):
        await scope.add(f"b{i}", obs("2345-7", 100 + i, f"20{10 + i}-06-01"))


async def _pages(client: httpx.AsyncClient, scope: Scope, query: str) -> tuple[list[str], list[str]]:
    """The ids of every page, following next links, then previous links back from the last page."""
    url = f"/fhir/Observation?{query}&_tag={TAG_SYSTEM}|{scope.tag}&_count=2"
    forward: list[list[str]] = []
    bundle: dict = {}
    while url:
        r = await client.get(url)
        assert r.status_code == 200, r.text
        bundle = r.json()
        forward.append([e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"])
        url = _link(bundle, "next")
    backward = [forward[-1]]
    url = _link(bundle, "previous")
    while url:
        bundle = (await client.get(url)).json()
        backward.insert(0, [e["resource"]["id"] for e in bundle.get("entry", [])])
        url = _link(bundle, "previous")
    return [i for page in forward for i in page], [i for page in backward for i in page]


def _link(bundle: dict, relation: str) -> str:
    for link in bundle.get("link", []):
        if link["relation"] == relation:
            parts = urlsplit(link["url"])
            return f"{parts.path}?{parts.query}"
    return ""


CASES = [  # query, the names it matches
    (f"code=2339-0&value-quantity=gt108|{UCUM}|mg/dL", {"a9", "a10", "a11"}),  # quantity: few
    ("code=2339-0&value-quantity=gt101", {f"a{i}" for i in range(2, 12)}),  # quantity, no unit: many
    ("value-quantity=ge102&value-quantity=lt104", {"a2", "a3", "b2", "b3"}),  # one parameter twice
    ("component-value-quantity=gt509&code=2339-0", {"a10", "a11"}),  # the other parameter's rows
    ("code=2339-0&date=ge2019-01-01", {"a9", "a10", "a11"}),  # date
    (f"code-value-quantity=2339-0$gt104|{UCUM}|mg/dL", {f"a{i}" for i in range(5, 12)}),  # composite
]


@pytest.mark.parametrize(("query", "expected"), CASES)
@pytest.mark.parametrize("enough", [driver_module.ENOUGH, 1])  # 1: every criterion counts as many
async def test_answers_and_paging_are_those_of_the_search(
    scope: Scope, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, query: str, expected: set, enough: int
) -> None:
    await _fill(scope)
    monkeypatch.setattr(driver_module, "ENOUGH", enough)
    forward, backward = await _pages(client, scope, query)
    names = {v: k for k, v in scope.ids.items()}
    assert {names[i] for i in forward} == expected
    created = list(scope.ids.values())
    assert forward == sorted(forward, key=created.index) and len(forward) == len(expected)  # creation order, each once
    assert backward == forward


def _query(query: str, scope: Scope):  # type: ignore[no-untyped-def]
    pairs = [*parse_qsl(query), ("_tag", f"{TAG_SYSTEM}|{scope.tag}")]
    return parse_search("Observation", pairs, strict=True, default_count=20, max_count=100)


async def test_few_matches_are_read_in_full_before_the_probes(scope: Scope, pool: asyncpg.Pool) -> None:
    await _fill(scope)
    q = _query(f"code=2339-0&value-quantity=gt110|{UCUM}|mg/dL", scope)
    async with search_session(pool) as conn:
        chosen = await choose_driver(conn, q, "")
        page = page_sql(q, "", chosen)
        assert page.sql is not None
        plan = "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN {page.sql}", *page.args))
        rows = await conn.fetch(page.sql, *page.args)
    assert chosen.few
    assert "CTE Scan on d" in plan, plan
    assert [r["id"] for r in rows] == [scope.ids["a11"]]


async def test_a_walk_of_the_id_index_is_not_an_ordered_path(
    scope: Scope, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With sorting made the planner's last resort, the quantity criterion's rows in key order come
    from a walk of the table's ``key`` index (every parameter's rows, filtered); the token
    criterion's from its own ``(hash, key)`` range. Only the latter is an ordered path: it drives."""
    await _fill(scope)
    q = _query("value-quantity=gt101&code=2339-0", scope)
    monkeypatch.setattr(driver_module, "ENOUGH", 1)  # every criterion has many matches
    async with search_session(pool) as conn:
        await conn.execute("SET enable_sort = off")
        await conn.execute("SET enable_bitmapscan = off")
        try:
            (quantity_sql, quantity_args), (code_sql, code_args) = group_sql(q, "")[:2]
            walk = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {quantity_sql} ORDER BY s.key", *quantity_args)
            quantity_ordered = (await _estimate(conn, quantity_sql, quantity_args))[1]
            code_ordered = (await _estimate(conn, code_sql, code_args))[1]
            chosen = await choose_driver(conn, q, "")
        finally:
            await conn.execute("RESET ALL")
    plan = orjson.loads(walk)[0]["Plan"]
    assert plan.get("Index Name") == "sp_observation_quantity_key" and "Index Cond" not in plan, plan
    assert not quantity_ordered and code_ordered
    assert group_types(q)[chosen.group] == "token" and not chosen.few
