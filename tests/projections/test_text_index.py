"""The full-text index as a projection: the text-search configuration (``FHIRLEDGER_TEXT_SEARCH_CONFIG``)
is checked against the database at start and is part of the search index's layout version (changing
it leaves the search index stale, 503, until a rebuild has stored the text again with the new
stemming); the projection audit checks the stored tsvectors."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import httpx
import pytest

from app.api import staleness
from app.api.app import create_app
from app.db.migrations import migrate
from app.projections import one_statement, search_index, text_load
from app.projections.audit import audit_type
from app.projections.rebuild import rebuild_type
from app.projections.search_index import rows_of
from app.projections.state import check_projections, expected_version
from app.search_types.text import document_sql
from app.search_types.text_config import TextConfigError, text_config, use_text_config
from app.settings import Settings
from tests.conftest import _with_database

XHTML = "http://www.w3.org/1999/xhtml"


def _switch(name: str | None) -> None:
    """Another configuration, with every statement built under the one before forgotten (the
    writes' statements spell the configuration in: left built, they would write the next tests'
    documents under it)."""
    use_text_config(name)
    expected_version.cache_clear()
    search_index._statement.cache_clear()
    text_load._insert_sql.cache_clear()
    one_statement._statements.clear()
    one_statement._many_statements.clear()


@pytest.fixture
def restore_config() -> Iterator[None]:
    yield
    _switch(None)


@pytest.fixture
async def fresh_dsn(server_dsn: str) -> AsyncIterator[str]:
    name = f"fhirledger_text_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(server_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _with_database(server_dsn, name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_unknown_or_malformed_configuration_stops_the_start(pool: asyncpg.Pool, restore_config: None) -> None:
    assert text_config() == "english"
    _switch("klingon")
    async with pool.acquire() as conn:
        with pytest.raises(TextConfigError) as caught:
            await check_projections(conn)
    assert "klingon" in str(caught.value) and "english" in str(caught.value) and "simple" in str(caught.value)
    with pytest.raises(TextConfigError, match="not a text search configuration name"):
        use_text_config("english'; DROP TABLE event_log; --")


async def _found(client: httpx.AsyncClient, query: str, resource_type: str = "Patient") -> int:
    r = await client.get(f"/fhir/{resource_type}?{query}")
    assert r.status_code == 200, r.text
    return len(r.json().get("entry", []))


async def test_changing_the_configuration_needs_a_rebuild(fresh_dsn: str, restore_config: None) -> None:
    conn = await asyncpg.connect(fresh_dsn)
    pool = await asyncpg.create_pool(fresh_dsn, min_size=1, max_size=4)
    try:
        await migrate(conn)
        assert not await check_projections(conn)
        app = create_app(Settings(database_url=fresh_dsn), pool)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            narrative = {"status": "generated", "div": f'<div xmlns="{XHTML}">She runs daily</div>'}
            r = await client.post("/fhir/Patient", json={"resourceType": "Patient", "text": narrative})
            assert r.status_code == 201, r.text
            assert await _found(client, "_text=running") == 1  # english stems runs and running alike

            _switch("simple")
            assert "search_index:Patient" in await check_projections(conn)
            await staleness.refresh(app, pool)
            stale = await client.get("/fhir/Patient?_text=runs")
            assert stale.status_code == 503 and "rebuild" in stale.text

            await rebuild_type(pool, "Patient")
            assert "search_index:Patient" not in await check_projections(conn)  # the others stay stale
            await staleness.refresh(app, pool)
            assert await _found(client, "_text=running") == 0  # simple: no stemming
            assert await _found(client, "_text=runs") == 1
            assert await _found(client, "_text=she") == 1
    finally:
        await pool.close()
        await conn.close()


async def test_audit_checks_the_text_rows(client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    r = await client.post(
        "/fhir/BodyStructure",
        json={"resourceType": "BodyStructure", "patient": {"reference": "Patient/x"}, "description": "Left knee"},
    )
    assert r.status_code == 201, r.text
    victim = r.json()["id"]
    assert (await audit_type(pool, "BodyStructure", sample=50))[1] == []
    row = "(SELECT key FROM cur_body_structure WHERE id = $1)"
    await pool.execute(f"UPDATE sp_body_structure_text SET doc_id = doc_id + 1 WHERE key = {row}", victim)
    assert (await audit_type(pool, "BodyStructure", sample=50))[1] == [victim]
    await rebuild_type(pool, "BodyStructure")
    assert (await audit_type(pool, "BodyStructure", sample=50))[1] == []


async def test_audit_checks_the_documents_and_a_rebuild_repairs_them(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    """A document the text rows refer to, altered in place (stored once for every row with its
    text, :data:`app.search_types.text.DOCUMENTS`), is drift the audit reports, and a rebuild of a
    type whose rows refer to it puts the right one back: the search finds the resource again."""
    r = await client.post(
        "/fhir/BodyStructure",
        json={"resourceType": "BodyStructure", "patient": {"reference": "Patient/x"}, "description": "Kneecap"},
    )
    assert r.status_code == 201, r.text
    victim = r.json()["id"]
    assert await _found(client, "_content=kneecap", "BodyStructure") == 1
    altered = await pool.execute(
        "UPDATE text_document SET doc = to_tsvector('simple', 'tamperedelbow') WHERE id IN (SELECT doc_id FROM"
        " sp_body_structure_text WHERE param = '_content' AND key = (SELECT key FROM cur_body_structure WHERE id = $1)"
        ")",
        victim,
    )
    assert altered == "UPDATE 1"
    assert await _found(client, "_content=kneecap", "BodyStructure") == 0
    assert victim in (await audit_type(pool, "BodyStructure", sample=50))[1]
    await rebuild_type(pool, "BodyStructure")
    assert (await audit_type(pool, "BodyStructure", sample=50))[1] == []
    assert await _found(client, "_content=kneecap", "BodyStructure") == 1
    assert await pool.fetchval("SELECT count(*) FROM text_document WHERE doc @@ 'tamperedelbow'::tsquery") == 0


async def test_texts_repeated_in_one_write_each_get_their_rows(client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    """A write stores each distinct text's document once (``TextTable.companion_insert``); every
    resource still gets its own rows, each referring to its own text's document."""

    def observation(display: str) -> dict:
        code = {"coding": [{"system": "http://loinc.org", "code": "8302-2", "display": display}]}
        return {"resourceType": "Observation", "status": "final", "code": code}

    displays = ["Body height", "Body height", "Body height", "Heart rate", "Respiratory rate"]
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": observation(d), "request": {"method": "POST", "url": "Observation"}} for d in displays],
    }
    r = await client.post("/fhir", json=bundle)
    assert r.status_code == 200, r.text
    ids = [e["response"]["location"].split("/")[1] for e in r.json()["entry"]]
    rows = await pool.fetch(
        "SELECT c.id, t.param, t.doc_id FROM sp_observation_text t JOIN cur_observation c USING (key)"
        " WHERE c.id = ANY($1::text[])",
        ids,
    )
    stored: dict[str, dict[str, str]] = {}
    for row in rows:
        assert row["param"] not in stored.get(row["id"], {}), "one row per resource and parameter"
        documents = await pool.fetch("SELECT doc::text AS doc FROM text_document WHERE id = $1", row["doc_id"])
        assert len(documents) == 1, "each document stored once"
        stored.setdefault(row["id"], {})[row["param"]] = documents[0]["doc"]
    for rid in ids:  # each row's document is its own text's, computed alone
        resource = (await client.get(f"/fhir/Observation/{rid}")).json()
        expected = {}
        for param, text in rows_of(resource)["text"]:
            expected[param] = await pool.fetchval(f"SELECT ({document_sql('$1::text')})::text", text)
        assert set(expected) == {"_content", "code", "combo-code"}
        assert stored[rid] == expected
    found = await client.get("/fhir/Observation", params={"code:text": "height", "_id": ",".join(ids)})
    assert sorted(e["resource"]["id"] for e in found.json()["entry"]) == sorted(ids[:3])
