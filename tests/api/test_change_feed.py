"""The change feed ``GET /fhir/_events`` and ``fhirledger events tail``: every event exactly once, in
an order that never skips a transaction committing late with a lower position (invariant 7)."""

from __future__ import annotations

import asyncio
import io
import random
from collections import Counter
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import orjson

from app.cli_events import tail
from app.commands.create import create
from app.commands.unit_of_work import WriteTransaction, run_write
from app.events.model import RequestContext
from app.queries.changes import EVENT_EXTENSION, Cursor
from tests.helpers import new_id, patient

Key = tuple[str, str, int]


async def feed_end(pool: asyncpg.Pool) -> str | None:
    """The cursor after the last event of the feed now (no write is in flight when called)."""
    row = await pool.fetchrow(
        "SELECT tx_id::text AS tx, position FROM event_log"
        " WHERE tx_id < (SELECT pg_snapshot_xmin(pg_current_snapshot()))"
        " ORDER BY tx_id DESC, position DESC LIMIT 1"
    )
    return f"{row['tx']}.{row['position']}" if row else None


def _basic(text: str) -> dict:
    return {"resourceType": "Basic", "code": {"text": text}}


def _next_cursor(page: dict) -> str | None:
    (url,) = [link["url"] for link in page["link"] if link["relation"] == "next"]
    values = parse_qs(urlsplit(url).query).get("after")
    return values[0] if values else None


def _event_info(entry: dict) -> dict[str, str]:
    (ext,) = [x for x in entry["extension"] if x["url"] == EVENT_EXTENSION]
    return {sub["url"]: next(v for k, v in sub.items() if k.startswith("value")) for sub in ext["extension"]}


def _key(entry: dict) -> Key:
    rtype, rid, _, version = entry["response"]["location"].split("/")
    return rtype, rid, int(version)


async def _page(client: httpx.AsyncClient, after: str | None, count: int = 100) -> dict:
    params: dict[str, str | int] = {"_count": count}
    if after is not None:
        params["after"] = after
    r = await client.get("/fhir/_events", params=params)
    assert r.status_code == 200, r.text
    return r.json()


async def _drain(client: httpx.AsyncClient, after: str | None, count: int = 100) -> tuple[list[dict], str | None]:
    entries: list[dict] = []
    while True:
        page = await _page(client, after, count)
        got = page.get("entry", [])
        entries += got
        after = _next_cursor(page)
        if len(got) < count:
            return entries, after


async def test_feed_lists_create_update_delete_in_order(client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    start = await feed_end(pool)
    pid = new_id()
    await client.put(f"/fhir/Patient/{pid}", json=patient(pid))
    await client.put(f"/fhir/Patient/{pid}", json=patient(pid, family="Two"))
    await client.delete(f"/fhir/Patient/{pid}")
    page = await _page(client, start)
    assert page["resourceType"] == "Bundle" and page["type"] == "history"
    entries = page["entry"]
    assert [_key(e) for e in entries] == [("Patient", pid, 1), ("Patient", pid, 2), ("Patient", pid, 3)]
    infos = [_event_info(e) for e in entries]
    assert [i["kind"] for i in infos] == ["created", "updated", "deleted"]
    assert [i["actor"] for i in infos] == ["anonymous"] * 3
    positions = [int(i["position"]) for i in infos]
    assert positions == sorted(positions)
    assert all(i["cursor"] == f"{i['tx']}.{i['position']}" for i in infos)
    assert entries[0]["resource"]["name"][0]["family"] == "Doe"
    assert entries[1]["response"]["etag"] == 'W/"2"'
    assert entries[2]["request"] == {"method": "DELETE", "url": f"Patient/{pid}"}
    assert "resource" not in entries[2]
    assert entries[0]["fullUrl"] == f"http://testserver/fhir/Patient/{pid}"
    assert _next_cursor(page) == infos[-1]["cursor"]
    empty = await _page(client, _next_cursor(page))
    assert empty.get("entry", []) == []
    assert _next_cursor(empty) == infos[-1]["cursor"]


async def test_feed_pages_by_count(client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    start = await feed_end(pool)
    made = [(await client.post("/fhir/Basic", json={"resourceType": "Basic", "code": {"text": "p"}})) for _ in range(7)]
    first = await _page(client, start, 3)
    assert len(first["entry"]) == 3
    entries, _ = await _drain(client, start, 3)
    assert [e["resource"]["id"] for e in entries] == [r.json()["id"] for r in made]


async def test_feed_without_cursor_starts_at_the_beginning(client: httpx.AsyncClient) -> None:
    await client.post("/fhir/Basic", json={"resourceType": "Basic", "code": {"text": "b"}})
    page = await _page(client, None, 2)
    infos = [_event_info(e) for e in page["entry"]]
    assert len(infos) == 2
    first_in_log = Cursor.parse(infos[0]["cursor"])
    assert first_in_log <= Cursor.parse(infos[1]["cursor"])


async def test_default_and_maximum_count(client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    total = await pool.fetchval("SELECT count(*) FROM event_log")
    default = await client.get("/fhir/_events")
    assert len(default.json().get("entry", [])) == min(total, 100)
    big = await client.get("/fhir/_events?_count=5000")
    assert len(big.json().get("entry", [])) == min(total, 1000)


async def test_bad_requests(client: httpx.AsyncClient) -> None:
    for query in (
        "after=abc",
        "after=12",
        "after=1.2.3",
        "after=-1.5",
        f"after={2**64}.1",
        f"after=1.{2**63}",
        "_count=-1",
        "_count=x",
        "since=1",
        "after=1.1&after=2.2",
    ):
        r = await client.get(f"/fhir/_events?{query}")
        assert r.status_code == 400, query
        assert r.json()["resourceType"] == "OperationOutcome"
    assert (await client.post("/fhir/_events", json={})).status_code == 405


async def test_late_commit_with_lower_position_is_not_skipped(client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    start = await feed_end(pool)
    conn = await pool.acquire()
    tr = conn.transaction()
    await tr.start()
    try:
        slow = await create(WriteTransaction(conn, RequestContext("POST", "Basic")), "Basic", _basic("slow"))
        fast = await asyncio.wait_for(client.post("/fhir/Basic", json=_basic("fast")), 10)
        assert fast.status_code == 201
        fast_id = fast.json()["id"]
        fast_position = await pool.fetchval(
            "SELECT position FROM event_log WHERE resource_type = 'Basic' AND resource_id = $1", fast_id
        )
        assert slow.position is not None and slow.position < fast_position
        # the fast write has committed, but the slow one (lower position) is in flight: neither may
        # be served yet, else a reader's cursor would pass the slow one
        page = await _page(client, start)
        ids = [e["resource"]["id"] for e in page.get("entry", [])]
        assert slow.resource_id not in ids and fast_id not in ids
        cursor = _next_cursor(page)
        await tr.commit()
    except BaseException:
        await tr.rollback()
        raise
    finally:
        await pool.release(conn)
    entries, _ = await _drain(client, cursor)
    ids = [e["resource"]["id"] for e in entries]
    assert ids == [slow.resource_id, fast_id]


async def test_concurrent_writers_and_a_reader_see_every_event_exactly_once(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    start = await feed_end(pool)
    written: list[Key] = []
    done = asyncio.Event()

    async def http_writer(n: int) -> None:
        for i in range(50):
            pid = new_id(f"w{n}")
            r = await client.put(f"/fhir/Patient/{pid}", json=patient(pid))
            assert r.status_code == 201, r.text
            written.append(("Patient", pid, 1))
            if i % 5 == 0:
                r = await client.put(f"/fhir/Patient/{pid}", json=patient(pid, family="Again"))
                assert r.status_code == 200, r.text
                written.append(("Patient", pid, 2))

    async def slow_writer() -> None:
        # transactions that stay open a while after taking their position commit out of order
        async def work(tx: WriteTransaction) -> str:
            out = await create(tx, "Basic", {"resourceType": "Basic", "code": {"text": "slow"}})
            await asyncio.sleep(random.uniform(0, 0.02))
            return out.resource_id

        for _ in range(25):
            rid = await run_write(pool, RequestContext("POST", "Basic"), work)
            written.append(("Basic", rid, 1))

    seen: Counter[Key] = Counter()
    polls = 0

    async def reader() -> None:
        nonlocal polls
        after = start
        while True:
            finished = done.is_set()
            page = await _page(client, after, 7)
            polls += 1
            for e in page.get("entry", []):
                seen[_key(e)] += 1
            after = _next_cursor(page)
            if finished and not page.get("entry"):
                return
            if not page.get("entry"):
                await asyncio.sleep(0.005)

    async def writers() -> None:
        await asyncio.gather(*[http_writer(n) for n in range(4)], slow_writer(), slow_writer())
        done.set()

    await asyncio.wait_for(asyncio.gather(writers(), reader()), 120)
    assert len(written) == 4 * 60 + 50
    assert polls > 10
    assert {k: seen[k] for k in written} == dict.fromkeys(written, 1)
    assert all(n == 1 for n in seen.values())


async def test_events_tail_prints_json_lines(client: httpx.AsyncClient, pool: asyncpg.Pool, database_dsn: str) -> None:
    start = await feed_end(pool)
    pid = new_id()
    await client.put(f"/fhir/Patient/{pid}", json=patient(pid), headers={"X-Request-Id": "tail-1"})
    await client.delete(f"/fhir/Patient/{pid}")
    out = io.StringIO()
    end = await tail(database_dsn, Cursor.parse(start) if start else None, out=out)
    lines = [orjson.loads(line) for line in out.getvalue().splitlines()]
    mine = [x for x in lines if x["id"] == pid]
    assert [(x["type"], x["version"], x["kind"]) for x in mine] == [
        ("Patient", 1, "created"),
        ("Patient", 2, "deleted"),
    ]
    assert set(mine[0]) == {"type", "id", "version", "kind", "position", "tx", "recorded_at", "actor", "cursor"}
    assert mine[0]["actor"] == "anonymous"
    assert end is not None and str(end) == lines[-1]["cursor"]
    again = io.StringIO()
    assert await tail(database_dsn, end, out=again) == end
    assert again.getvalue() == ""


async def test_events_tail_follow_picks_up_new_events(
    client: httpx.AsyncClient, pool: asyncpg.Pool, database_dsn: str
) -> None:
    start = await feed_end(pool)
    out = io.StringIO()
    follower = asyncio.create_task(tail(database_dsn, Cursor.parse(start) if start else None, True, out, 0.02))
    try:
        await asyncio.sleep(0.1)
        r = await client.post("/fhir/Basic", json=_basic("follow"))
        rid = r.json()["id"]
        for _ in range(200):
            if rid in out.getvalue():
                break
            await asyncio.sleep(0.02)
        assert rid in out.getvalue()
    finally:
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)
