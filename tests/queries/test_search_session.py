"""A search plans its statements for their values (``plan_cache_mode = force_custom_plan``) on its
own connection only: the request pool hands connections on without asyncpg's ``RESET ALL``, so the
search takes the setting back, and the writes that later run on the connection keep their cached
generic plans instead of being planned anew each time."""

from __future__ import annotations

import asyncpg
import httpx

from app.api.app import create_app
from app.db.pool import create_pool
from app.queries.search.session import search_session
from app.settings import Settings
from tests.helpers import new_id, patient


async def test_a_search_leaves_the_connection_with_cached_plans(database_dsn: str) -> None:
    settings = Settings(database_url=database_dsn, pool_min_size=1, pool_max_size=1)
    pool = await create_pool(database_dsn, settings)
    try:
        app = create_app(settings, pool)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
            family = f"Session{new_id()[:8]}"
            assert (await client.post("/fhir/Patient", json=patient(family=family))).status_code == 201
            found = await client.get(f"/fhir/Patient?family={family}")
            assert found.status_code == 200 and len(found.json()["entry"]) == 1
            async with pool.acquire() as conn:  # the only connection: the one the search ran on
                assert await conn.fetchval("SHOW plan_cache_mode") == "auto"
            assert (await client.get(f"/fhir/Patient?family={family}")).status_code == 200
    finally:
        await pool.close()


async def test_a_search_still_plans_for_its_values(database_dsn: str, pool: asyncpg.Pool) -> None:

    async with search_session(pool) as conn:
        assert await conn.fetchval("SHOW plan_cache_mode") == "force_custom_plan"
