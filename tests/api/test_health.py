"""Where to start and whether to route traffic here: ``GET /``, ``GET [base]``, ``/healthz``,
``/readyz``."""

from __future__ import annotations

import httpx

from app.api.app import create_app


async def test_root_links_to_the_capability_statement(client: httpx.AsyncClient) -> None:
    r = await client.get("/")
    assert r.status_code == 200
    assert r.json()["capabilityStatement"] == "http://testserver/fhir/metadata"
    html = await client.get("/", headers={"Accept": "text/html"})
    assert html.headers["content-type"].startswith("text/html")
    assert 'href="http://testserver/fhir/metadata"' in html.text


async def test_base_without_parameters_points_to_the_capability_statement(client: httpx.AsyncClient) -> None:
    for url in ("/fhir", "/fhir/"):
        r = await client.get(url)
        assert r.status_code == 200
        issue = r.json()["issue"][0]
        assert r.json()["resourceType"] == "OperationOutcome" and issue["severity"] == "information"
        assert "http://testserver/fhir/metadata" in issue["diagnostics"]


async def test_healthz_answers_without_a_database(settings) -> None:
    app = create_app(settings, pool=None)  # no pool at all: liveness must not need one
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        r = await c.get("/healthz")
        assert r.status_code == 200 and r.json() == {"status": "ok"}
        ready = await c.get("/readyz")
        assert ready.status_code == 503 and "not open" in ready.json()["reason"]


async def test_readyz_is_200_when_the_database_answers_and_projections_are_ready(client: httpx.AsyncClient) -> None:
    r = await client.get("/readyz")
    assert r.status_code == 200 and r.json() == {"status": "ready"}


async def test_readyz_is_503_naming_a_stale_projection(client: httpx.AsyncClient, pool) -> None:
    name = await pool.fetchval("SELECT name FROM projection_state ORDER BY name LIMIT 1")
    status = await pool.fetchval("SELECT status FROM projection_state WHERE name = $1", name)
    await pool.execute("UPDATE projection_state SET status = 'stale' WHERE name = $1", name)
    try:
        r = await client.get("/readyz")
    finally:
        await pool.execute("UPDATE projection_state SET status = $2 WHERE name = $1", name, status)
    assert r.status_code == 503
    assert r.json()["projections"] == {name: "stale"}
    assert "fhirledger projections rebuild" in r.json()["reason"]


async def test_readyz_is_503_when_the_database_does_not_answer(settings) -> None:
    import asyncpg

    closed = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=1)
    await closed.close()
    app = create_app(settings, pool=closed)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        r = await c.get("/readyz")
    assert r.status_code == 503 and "does not answer" in r.json()["reason"]
