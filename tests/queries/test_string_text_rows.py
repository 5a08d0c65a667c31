"""``:text`` on a string parameter searches the string rows (no full-text rows of its own) through
the GIN index of the values' words, with the values tested together: words of different values,
phrases across values, stemming in the configured language, negation, updates."""

from __future__ import annotations

import asyncpg
import httpx
import pytest

from app.search_types.text_query import describe, parse_text_query, row_relaxation
from tests.queries.test_search import TAG_SYSTEM, Scope, pat


@pytest.fixture
def scope(client: httpx.AsyncClient) -> Scope:
    return Scope(client)


def _relaxed(query: str) -> str | None:
    node = row_relaxation(parse_text_query("name", query, bare_prefix=True))
    return None if node is None else describe(node)


def test_relaxation_is_what_one_value_must_match() -> None:
    assert _relaxed("james chal") == "james*"  # every word: one of them is in some value
    assert _relaxed("james | chal") == "(james | chal)"  # an operator: words as written
    assert _relaxed('"peter james"') == "(peter | james)"  # a phrase may run over two values
    assert _relaxed("-smith") is None  # a negation alone: no value needs to match
    assert _relaxed("(a | -b)") is None
    assert _relaxed("-smith jones") == "jones"


async def test_no_text_rows_for_string_parameters(scope: Scope, pool: asyncpg.Pool) -> None:
    await scope.add("p", pat(name=[{"family": "Rowless", "given": ["Ada"]}], address=[{"city": "Leeds"}]))
    pid = scope.ids["p"]
    params = {
        r["param"]
        for r in await pool.fetch(
            "SELECT s.param FROM sp_patient_text s JOIN cur_patient c ON c.key = s.key WHERE c.id = $1", pid
        )
    }
    assert params <= {"_content", "_text", "language", "identifier", "marital-status"}  # tokens may have text
    assert "name" not in params and "address-city" not in params and "family" not in params
    assert await scope.find("Patient", "name:text=rowless ada") == {"p"}
    assert await scope.find("Patient", "address-city:text=leeds") == {"p"}


async def test_values_together_and_stemming(scope: Scope) -> None:
    await scope.add("both", pat(name=[{"family": "Runnings", "given": ["Walker"]}]))
    await scope.add("one", pat(name=[{"family": "Runnings", "given": ["Sitter"]}]))
    assert await scope.find("Patient", "name:text=runnings walker") == {"both"}  # two values, each word
    assert await scope.find("Patient", "name:text=runnings -walker") == {"one"}
    assert await scope.find("Patient", "name:text=-walker&family=Runnings") == {"one"}
    assert await scope.find("Patient", 'name:text="running"') == {"both", "one"}  # stemmed alike (english)
    assert await scope.find("Patient", 'name:text="runnings walker"') == {"both"}  # a phrase over two values
    assert await scope.find("Patient", 'name:text="walker runnings"') == set()
    meta = {"tag": [{"system": TAG_SYSTEM, "code": scope.tag}]}
    body = {**pat(name=[{"family": "Stands"}]), "id": scope.ids["both"], "meta": meta}
    assert (await scope.client.put(f"/fhir/Patient/{scope.ids['both']}", json=body)).status_code == 200
    assert await scope.find("Patient", "name:text=walker") == set()


async def test_the_words_index_answers(client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL enable_seqscan = off")
        rows = await conn.fetch(
            "EXPLAIN SELECT s.key FROM sp_patient_string s WHERE s.param = 'name' AND "
            "(to_tsvector('english'::regconfig, left(s.norm, 100000)) || strip(to_tsvector('simple'::regconfig, "
            "left(s.norm, 100000)))) @@ to_tsquery('simple', 'abc:*')"
        )
    assert "sp_patient_string_words" in "\n".join(r[0] for r in rows)
