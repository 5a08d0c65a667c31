"""The driver choice with full-text criteria (``_content``, ``:text``): a rare text criterion is
counted through its GIN index, never by walking the text table, and drives the search when it is
the selective one; results are the same whichever criterion drives."""

from __future__ import annotations

import uuid
from urllib.parse import parse_qsl

import asyncpg
import httpx
import pytest

from app.queries.search.driver import choose_driver
from app.queries.search.parse import parse_search
from app.queries.search.plan import group_types
from app.queries.search.session import search_session
from tests.queries.test_search import Scope


@pytest.fixture
def scope(client: httpx.AsyncClient) -> Scope:
    return Scope(client)


def obs(note: str) -> dict:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0"}], "text": "Glucose"},
        "note": [{"text": note}],
    }


async def _choice(pool: asyncpg.Pool, query: str) -> tuple[str, list[str]]:
    """The type of the criterion chosen to drive an Observation search, and the plans (EXPLAIN,
    under the planner settings then in force) of the statements the choice ran."""
    q = parse_search("Observation", parse_qsl(query), strict=True, default_count=20, max_count=100)
    ran: list[tuple[str, tuple]] = []
    async with search_session(pool) as conn:

        def log(record: asyncpg.connection.LoggedQuery) -> None:
            ran.append((record.query, record.args))

        conn.add_query_logger(log)
        driver = (await choose_driver(conn, q, "")).group
        conn.remove_query_logger(log)
        plans = []
        for sql, args in ran:
            if sql.startswith(("SET", "RESET")):
                await conn.execute(sql)
            elif not sql.startswith("EXPLAIN"):  # the planner's estimates read no rows
                plans.append("\n".join(r[0] for r in await conn.fetch(f"EXPLAIN {sql}", *args)))
        await conn.execute("RESET ALL")
    return group_types(q)[driver], plans


async def test_a_rare_text_criterion_is_counted_through_its_index_and_drives(scope: Scope, pool) -> None:
    word = "quixotic" + uuid.uuid4().hex[:8].translate(str.maketrans("0123456789", "ghijklmnop"))
    await scope.add("rare", obs(f"the patient was {word} about it"))
    for i in range(3):
        await scope.add(f"plain{i}", obs("fasting sample"))
    query = f"status=final&_content={word[:12]}*"
    driven_by, plans = await _choice(pool, query)
    assert driven_by == "text"  # 1 match against every final Observation
    text_counts = [p for p in plans if "sp_observation_text" in p]
    assert text_counts, plans
    for plan in text_counts:
        # the documents found through their GIN index, the rows that have them through their ids'
        assert "Bitmap Index Scan on text_document_doc" in plan, plan
        assert "Index Scan using sp_observation_text_doc_id" in plan, plan
        assert "Seq Scan on sp_observation_text" not in plan, plan
        assert "Seq Scan on text_document" not in plan, plan
    assert await scope.find("Observation", query) == {"rare"}


async def test_results_do_not_depend_on_which_criterion_drives(scope: Scope, pool) -> None:
    marker = uuid.uuid4().hex
    word = "zebrine" + uuid.uuid4().hex[:6].translate(str.maketrans("0123456789", "ghijklmnop"))
    await scope.add("both", obs(f"{word} fasting") | {"identifier": [{"value": marker}]})
    await scope.add("text only", obs(f"{word} random"))
    await scope.add("id only", obs("fasting") | {"identifier": [{"value": marker}]})
    # the text criterion is the rarer one here (2 vs ...), then the identifier (2 vs many final)
    assert await scope.find("Observation", f"_content={word}&status=final") == {"both", "text only"}
    assert await scope.find("Observation", f"_content={word}&identifier={marker}") == {"both"}
    assert await scope.find("Observation", f"_content=fasting&identifier={marker}") == {"both", "id only"}
    assert await scope.find("Observation", f"code:text=glucose&_content={word}") == {"both", "text only"}
