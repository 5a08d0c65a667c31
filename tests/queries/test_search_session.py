"""A search plans its statements for their values (``plan_cache_mode = force_custom_plan``) on its
own connection only: the request pool hands connections on without asyncpg's ``RESET ALL``, so the
search takes the setting back, and the writes that later run on the connection keep their cached
generic plans instead of being planned anew each time."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from app.api.app import create_app
from app.db.pool import create_pool
from app.queries.search.session import search_session
from app.settings import Settings
from tests.helpers import new_id, patient


@pytest.fixture
async def one_connection(database_dsn: str) -> AsyncIterator[tuple[asyncpg.Pool, httpx.AsyncClient]]:
    """A request pool of one connection, and a client of an app serving from it."""
    settings = Settings(database_url=database_dsn, pool_min_size=1, pool_max_size=1)
    pool = await create_pool(database_dsn, settings)
    try:
        app = create_app(settings, pool)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
            yield pool, client
    finally:
        await pool.close()


async def test_a_search_leaves_the_connection_with_cached_plans(
    one_connection: tuple[asyncpg.Pool, httpx.AsyncClient],
) -> None:
    pool, client = one_connection
    family = f"Session{new_id()[:8]}"
    assert (await client.post("/fhir/Patient", json=patient(family=family))).status_code == 201
    found = await client.get(f"/fhir/Patient?family={family}")
    assert found.status_code == 200 and len(found.json()["entry"]) == 1
    async with pool.acquire() as conn:  # the only connection: the one the search ran on
        assert await conn.fetchval("SHOW plan_cache_mode") == "auto"
    assert (await client.get(f"/fhir/Patient?family={family}")).status_code == 200


async def test_a_search_still_plans_for_its_values(database_dsn: str, pool: asyncpg.Pool) -> None:

    async with search_session(pool) as conn:
        assert await conn.fetchval("SHOW plan_cache_mode") == "force_custom_plan"


def _plans(rows: list[asyncpg.Record], marker: str) -> tuple[int, int]:
    """(generic, custom) plans of the prepared statements holding ``marker``."""
    found = [r for r in rows if marker in r["statement"]]
    assert found, "\n".join(r["statement"][:150] for r in rows)
    return sum(r["generic_plans"] for r in found), sum(r["custom_plans"] for r in found)


async def test_searches_across_types_plan_for_their_values(
    one_connection: tuple[asyncpg.Pool, httpx.AsyncClient],
) -> None:
    """A search across types (``[base]?_type=…``) runs a statement of the same text for every search
    of the same shape; PostgreSQL's default switches such a statement to a generic plan after five
    runs, one that ignores the values (at a million resources a code + date search across types
    then took 602-688 ms instead of 120-139, session 21): it runs on a search session, each run
    planned for its values, as ``$everything``'s pages do (theirs, a union over the compartment's
    types, are mostly too long for asyncpg's statement cache, so planned anew each time anyway),
    and the connection is handed on as it was."""
    pool, client = one_connection
    family = f"Plans{new_id()[:8]}"
    created = await client.post("/fhir/Patient", json=patient(family=family))
    assert created.status_code == 201
    pid = created.json()["id"]
    for i in range(8):
        found = await client.get(f"/fhir?_type=Patient&family={family}&_count={i + 1}&_total=accurate")
        assert found.status_code == 200 and len(found.json()["entry"]) == 1
        everything = await client.get(f"/fhir/Patient/{pid}/$everything?_count={i + 1}")
        assert everything.status_code == 200 and everything.json()["entry"][0]["resource"]["id"] == pid
    async with pool.acquire() as conn:  # the only connection: the one every search ran on
        rows = await conn.fetch("SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements")
        assert await conn.fetchval("SHOW plan_cache_mode") == "auto"
    assert _plans(rows, "count(*) AS n FROM cur_patient") == (0, 8)  # the count across types
    assert _plans(rows, "SELECT * FROM ((SELECT 0 AS k") == (0, 8)  # its page


async def test_conditional_criteria_plan_for_their_values(
    one_connection: tuple[asyncpg.Pool, httpx.AsyncClient],
) -> None:
    """The criteria of a conditional write are matched in the write's transaction, planned for their
    values (after five runs PostgreSQL's cached generic plan made a conditional create by code and
    date take about 200 ms at a million resources where the code matches nothing, session 21), and
    the write's own statements keep their cached plans."""
    pool, client = one_connection
    family = f"Cond{new_id()[:8]}"
    for i in range(8):
        r = await client.post(
            "/fhir/Patient",
            json={"resourceType": "Patient", "name": [{"family": family, "given": [f"G{i}"]}]},
            headers={"If-None-Exist": f"family={family}&given=G{i}"},
        )
        assert r.status_code == 201, r.text
    again = await client.post(
        "/fhir/Patient",
        json={"resourceType": "Patient", "name": [{"family": family, "given": ["G3"]}]},
        headers={"If-None-Exist": f"family={family}&given=G3"},
    )
    assert again.status_code == 200 and again.json()["name"][0]["given"] == ["G3"]  # the match, not a new one
    async with pool.acquire() as conn:  # the only connection: the one every write ran on
        rows = await conn.fetch("SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements")
        assert await conn.fetchval("SHOW plan_cache_mode") == "auto"
    assert _plans(rows, "SELECT r.id FROM cur_patient r WHERE") == (0, 9)
