"""Plain reads arriving together share one query (app/api/read_batch.py), and each still gets its
own answer: its resource, or the route's 404, whatever the others asked for."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest

from app.api.read_batch import ReadBatcher
from app.db.pool import BoundedPool, create_pool
from app.settings import Settings
from tests.helpers import FHIR, new_id, patient


@pytest.fixture
async def one_connection(database_dsn: str) -> AsyncIterator[tuple[BoundedPool, list[str]]]:
    """A request pool of one connection, and the statements it runs from now on."""
    pool = await create_pool(database_dsn, Settings(database_url=database_dsn, pool_min_size=1, pool_max_size=1))
    statements: list[str] = []
    async with pool.acquire() as conn:
        conn.add_query_logger(lambda record: statements.append(record.query))
    yield pool, statements
    await pool.close()


async def _patients(client: httpx.AsyncClient, count: int) -> list[str]:
    ids = [new_id() for _ in range(count)]
    for pid in ids:
        assert (await client.put(f"/fhir/Patient/{pid}", json=patient(pid), headers=FHIR)).status_code == 201
    return ids


async def test_concurrent_reads_each_get_their_own_resource(client: httpx.AsyncClient) -> None:
    ids = await _patients(client, 4)
    await client.put(f"/fhir/Patient/{ids[1]}", json=patient(ids[1], family="Roe"), headers=FHIR)
    missing = new_id()
    asked = [*ids, ids[0], missing, ids[2]]
    answers = await asyncio.gather(*(client.get(f"/fhir/Patient/{pid}") for pid in asked))
    for pid, answer in zip(asked, answers, strict=True):
        if pid == missing:
            assert answer.status_code == 404 and answer.json()["resourceType"] == "OperationOutcome"
            continue
        assert answer.status_code == 200 and answer.json()["id"] == pid
        assert answer.headers["etag"] == ('W/"2"' if pid == ids[1] else 'W/"1"')
    heads = await asyncio.gather(*(client.head(f"/fhir/Patient/{pid}") for pid in ids))
    assert all(h.status_code == 200 and h.content == b"" for h in heads)


async def test_reads_arriving_together_cost_one_query(
    client: httpx.AsyncClient, one_connection: tuple[BoundedPool, list[str]]
) -> None:
    ids = await _patients(client, 3)
    pool, statements = one_connection
    batcher = ReadBatcher(pool)
    missing = new_id()
    heads = await asyncio.gather(*(batcher.read("Patient", pid) for pid in [*ids, ids[0], missing]))
    assert [orjson.loads(h.resource)["id"] if h and h.resource else None for h in heads] == [*ids, ids[0], None]
    assert len(statements) == 1
    alone = await batcher.read("Patient", ids[1])
    await asyncio.sleep(0)  # asyncpg calls its query loggers soon after the query
    assert alone is not None and alone.version == 1 and len(statements) == 2


async def test_a_cancelled_read_leaves_the_reads_that_joined_it_served(
    client: httpx.AsyncClient, one_connection: tuple[BoundedPool, list[str]]
) -> None:
    first, second = await _patients(client, 2)
    batcher = ReadBatcher(one_connection[0])
    leader = asyncio.ensure_future(batcher.read("Patient", first))
    joined = asyncio.ensure_future(batcher.read("Patient", second))
    await asyncio.sleep(0)  # the first waits a turn for others, the second joins it
    leader.cancel()
    head = await joined
    assert head is not None and head.resource is not None and orjson.loads(head.resource)["id"] == second
    with pytest.raises(asyncio.CancelledError):
        await leader
