"""What the full-text table stores (issue 12, fewer bytes per resource): each distinct string of a
resource once, positions only on the configured language's lexemes, a GIN index with a small
pending list (also given to the indexes of an existing database by migration 20), and the stored
documents part of the search layout version, so a database holding documents of the earlier
layout is stale until ``fhirledger projections rebuild``."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import httpx
import pytest

from app.db.migrations import MIGRATIONS
from app.projections.state import expected_version
from app.projections.text_load import CheckedTexts
from app.search_types import text as text_search
from app.search_types.text import PENDING_LIST_KB
from tests.helpers import side_rows_sql

BP = "Systolic blood pressure"


async def _docs(pool: asyncpg.Pool, oid: str) -> dict[str, str]:
    """The documents of an Observation's text rows, by parameter."""
    columns = "s.param, (SELECT d.doc::text FROM text_document d WHERE d.id = s.doc_id) AS doc"
    rows = await pool.fetch(side_rows_sql("sp_observation_text", "cur_observation", columns, "c.id = $1"), oid)
    return {r["param"]: r["doc"] for r in rows}


async def test_each_distinct_string_is_stored_once(client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    concept = {"coding": [{"system": "http://loinc.org", "code": "8480-6", "display": BP}], "text": BP}
    body = {"resourceType": "Observation", "status": "final", "code": concept, "note": [{"text": BP}]}
    r = await client.post("/fhir/Observation", json=body)
    assert r.status_code == 201, r.text
    docs = await _docs(pool, r.json()["id"])
    # the display, the concept's text and the note are one string: its words once, at positions 1-3
    assert docs["code"] == "'blood':2 'pressur':3 'pressure' 'systol':1 'systolic'"
    assert docs["_content"] == "'-6':3 '8480':2 'blood':5 'final':1 'pressur':6 'pressure' 'systol':4 'systolic'"


async def test_stemmed_phrases_and_stop_words_under_the_smaller_documents(client: httpx.AsyncClient) -> None:
    tag = {"system": "http://fhirledger.test/tag", "code": "text-documents"}
    texts = {"attack": "History of heart attack in 2019", "reversed": "Attack of the heart worms"}
    ids = {}
    for name, note in texts.items():
        body = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "meta": {"tag": [tag]}}
        r = await client.post("/fhir/Observation", json={**body, "note": [{"text": note}]})
        assert r.status_code == 201, r.text
        ids[r.json()["id"]] = name

    async def found(query: str) -> set[str]:
        r = await client.get(f"/fhir/Observation?_tag=http://fhirledger.test/tag|text-documents&{query}")
        assert r.status_code == 200, r.text
        return {ids[e["resource"]["id"]] for e in r.json().get("entry", [])}

    assert await found('_content="heart attacks"') == {"attack"}  # a phrase is stemmed
    assert await found('_content="attacks of the hearts"') == {"reversed"}  # its stop words hold their place
    assert await found('_content="heart attack in"') == {"attack"}
    assert await found('_content="attack of heart"') == set()  # a stop word's place counts
    assert await found('_content="of the"') == {"reversed"}  # stop words only: all of them, anywhere
    assert await found("_content=hist*") == {"attack"}  # a prefix of the word as written
    assert await found("_content=histori*") == {"attack"}  # ... or of its stem


async def _pending_list(conn: asyncpg.Connection, index: str) -> list[str] | None:
    return await conn.fetchval("SELECT reloptions FROM pg_class WHERE relname = $1", index)


async def test_the_one_text_index_keeps_a_small_pending_list(pool: asyncpg.Pool) -> None:
    """The documents' GIN index is the only full-text index (migration 31: the rows hold document
    ids, under a btree), and it has the small pending list; migration 20, which gave the rows' GIN
    indexes of the layout before theirs, leaves a database of this layout as it is."""
    option = f"gin_pending_list_limit={PENDING_LIST_KB}"
    step = next(m for v, _, m in MIGRATIONS if v == 20)
    gin = "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam"
    gin += " WHERE a.amname = 'gin' AND c.relname LIKE '%text%doc%'"
    async with pool.acquire() as conn:
        assert [r["relname"] for r in await conn.fetch(gin)] == ["text_document_doc"]
        assert await _pending_list(conn, "text_document_doc") == [option]
        await step(conn)
        assert [r["relname"] for r in await conn.fetch(gin)] == ["text_document_doc"]


def test_documents_of_the_earlier_layout_are_stale(monkeypatch: pytest.MonkeyPatch) -> None:
    current = expected_version("search_index", "Observation")
    earlier = "to_tsvector('english'::regconfig, text) || to_tsvector('simple'::regconfig, text)"
    monkeypatch.setattr(text_search, "layout", lambda: ["text-1", earlier])
    expected_version.cache_clear()
    try:
        # the version an upgraded database recorded for its stored documents is not the expected one
        assert expected_version("search_index", "Observation") != current
    finally:
        monkeypatch.undo()
        expected_version.cache_clear()
    assert expected_version("search_index", "Observation") == current


def test_a_rebuild_checks_each_text_once_within_its_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """Later batches of a rebuild do not compute again the documents of texts an earlier one
    checked; past the budget of remembered characters, every batch checks the rest itself."""
    checked = CheckedTexts()
    assert checked.unchecked(["blood pressure", "heart rate"]) == ["blood pressure", "heart rate"]
    assert checked.unchecked(["heart rate", "body height"]) == ["body height"]
    monkeypatch.setattr(CheckedTexts, "BUDGET", 10)
    small = CheckedTexts()
    assert small.unchecked(["short", "a much longer text"]) == ["short", "a much longer text"]
    assert small.unchecked(["short", "a much longer text"]) == ["a much longer text"]  # never remembered


async def test_writers_storing_one_new_text_at_once_neither_waits_nor_fails(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    """The documents' ids are not unique: two writes that both bring a text never stored before may
    both store its document, and searches still find each resource once."""
    word = "concurrentword" + uuid.uuid4().hex[:8].translate(str.maketrans("0123456789", "ghijklmnop"))
    body = {"resourceType": "Observation", "status": "final", "code": {"text": f"{word} panel"}}
    created = await asyncio.gather(*(client.post("/fhir/Observation", json=body) for _ in range(4)))
    assert [r.status_code for r in created] == [201] * 4, [r.text for r in created]
    found = await client.get("/fhir/Observation", params={"_content": word, "_count": "50"})
    assert found.status_code == 200, found.text
    ids = [e["resource"]["id"] for e in found.json().get("entry", [])]
    missing = await pool.fetchval(
        side_rows_sql("sp_observation_text", "cur_observation", "count(*)", "c.id = ANY($1::text[])")
        + " AND NOT EXISTS (SELECT 1 FROM text_document d WHERE d.id = s.doc_id)",
        [r.json()["id"] for r in created],
    )
    assert missing == 0, "every text row's document is stored (concurrent creates share one statement)"
    assert sorted(ids) == sorted(r.json()["id"] for r in created)
    stored = await pool.fetchval("SELECT count(*) FROM text_document WHERE doc @@ to_tsquery('simple', $1)", word)
    assert 1 <= stored <= 4 * 3  # one per text, or one per writer that met it unstored
