"""Per-parameter statistics: parameters sharing a side table are told apart by the hash of
(parameter, value), both in what a search finds and in what PostgreSQL's planner expects
(``code`` vs ``component-code`` of Observation share the token table); custom parameters get
the same layout without any schema change."""

from __future__ import annotations

import asyncpg
import httpx
import orjson

from app.api import staleness
from app.jobs.runner import run_pending
from app.queries.search.sql import Args
from app.search_types.registry import search_type
from tests.helpers import new_id, search_parameter
from tests.queries.test_search import Scope, scope

__all__ = ["scope"]  # the fixture

LOINC = "http://loinc.org"


def _obs(code: str, components: tuple[str, ...] = ()) -> dict:
    out: dict = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}]},
    }
    if components:
        out["component"] = [{"code": {"coding": [{"system": LOINC, "code": c}]}} for c in components]
    return out


async def test_code_and_component_code_find_only_their_own_rows(scope: Scope) -> None:
    systolic, diastolic = new_id("sys"), new_id("dia")
    await scope.add("panel", _obs(new_id("panel"), (systolic, diastolic)))
    await scope.add("alone", _obs(systolic))
    assert await scope.find("Observation", f"code={systolic}") == {"alone"}
    assert await scope.find("Observation", f"code={LOINC}|{systolic}") == {"alone"}
    assert await scope.find("Observation", f"component-code={systolic}") == {"panel"}
    assert await scope.find("Observation", f"combo-code={LOINC}|{systolic}") == {"panel", "alone"}
    assert await scope.find("Observation", f"code={diastolic}") == set()
    assert await scope.find("Observation", f"code:not={systolic}") == {"panel"}
    assert await scope.find("Observation", f"code=|{systolic}") == set()  # a system is stored
    assert await scope.find("Observation", f"code={LOINC}|") == {"panel", "alone"}


async def test_a_component_only_code_with_count_one_answers_nothing(scope: Scope) -> None:
    only = new_id("comp")
    await scope.add("panel", _obs(new_id("panel"), (only,)))
    r = await scope.client.get(f"/fhir/Observation?code={LOINC}|{only}&_count=1")
    assert r.status_code == 200 and "entry" not in r.json() and r.json()["total"] == 0


async def _estimate(pool: asyncpg.Pool, code: str, value: str) -> float:
    args = Args()
    cond = search_type("token").condition(code, value, None, None, args, "")  # type: ignore[arg-type]
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
        plan = await conn.fetchval(
            f"EXPLAIN (FORMAT JSON) SELECT s.key FROM sp_observation_token s WHERE {cond}", *args.values
        )
    return orjson.loads(plan)[0]["Plan"]["Plan Rows"]


async def test_the_planner_counts_each_parameters_values_apart(client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    only = new_id("bp")
    entries = [{"resource": _obs(new_id("panel"), (only,)), "request": {"method": "POST", "url": "Observation"}}]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries * 300}
    assert (await client.post("/fhir", json=bundle)).status_code == 200
    await pool.execute("ANALYZE sp_observation_token")
    as_component = await _estimate(pool, "component-code", only)
    as_code = await _estimate(pool, "code", only)
    assert as_component > 100, as_component  # the (component-code, value) hash is a frequent value
    assert as_code < 30, as_code  # while no `code` row has it: one column's statistics tell them apart


def _custom(code: str, kind: str, expression: str) -> dict:
    return search_parameter(code, kind, expression, f"http://fhirledger.test/sp/{code}", f"custom {kind}", "Patient")


async def test_custom_parameters_of_each_hashed_kind_are_searchable(
    client: httpx.AsyncClient, app, pool: asyncpg.Pool
) -> None:
    suffix = new_id("c").lower()
    nick, buddy = f"nick-{suffix}", f"buddy-{suffix}"
    for definition in (
        _custom(nick, "string", "Patient.name.given"),
        _custom(buddy, "reference", "Patient.generalPractitioner"),
    ):
        assert (await client.post("/fhir/SearchParameter", json=definition)).status_code == 201
    await run_pending(pool)
    await staleness.refresh(app, pool)
    s = Scope(client)
    doc = await s.add("doc", {"resourceType": "Practitioner", "name": [{"family": "Who"}]})
    await s.add(
        "p",
        {
            "resourceType": "Patient",
            "name": [{"given": ["Zebedee"]}],
            "generalPractitioner": [{"reference": f"Practitioner/{doc}"}],
        },
    )
    await s.add("q", {"resourceType": "Patient", "name": [{"family": "Zebedee"}]})
    assert await s.find("Patient", f"{nick}=zeb") == {"p"}  # given names only, not the family
    assert await s.find("Patient", "family=zeb") == {"q"}
    assert await s.find("Patient", f"{buddy}=Practitioner/{doc}") == {"p"}
    assert await s.find("Patient", f"{buddy}:Practitioner.name=who") == {"p"}
    assert await s.find("Patient", f"general-practitioner=Practitioner/{doc}") == {"p"}
