"""Audit with authorization off: every event records its actor (a configured proxy header, else
anonymous: an unverified bearer token never counts),
client address and request id; history filters by ``actor``; ``fhirledger audit`` prints the trail."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator

import asyncpg
import httpx
import orjson
import pytest
from rich.console import Console

from app.api.actor import actor_of
from app.api.app import create_app
from app.cli import main
from app.cli_events import CommandError, audit
from app.settings import Settings
from tests.helpers import new_id, patient


def jwt(claims: dict) -> str:
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


def bearer(claims: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {jwt(claims)}"}


async def _context(pool: asyncpg.Pool, rtype: str, rid: str) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT version, actor, client_addr, request_id FROM event_log"
        " WHERE resource_type = $1 AND resource_id = $2 ORDER BY version",
        rtype,
        rid,
    )


@pytest.fixture(scope="module")
async def header_client(settings: Settings, pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    """A second app whose proxy names the user in ``X-User``."""
    app = create_app(settings.model_copy(update={"actor_header": "X-User"}), pool)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        yield c


def test_actor_of_headers() -> None:
    assert actor_of({}) == "anonymous"
    # an unverified bearer token never names the actor (authorization off: tokens are not checked)
    assert actor_of({"authorization": f"Bearer {jwt({'sub': 'alice'})}"}) == "anonymous"
    assert actor_of({"authorization": "Bearer not-a-jwt-token"}) == "anonymous"
    assert actor_of({"x-user": "carol"}) == "anonymous"  # no header configured
    assert actor_of({"x-user": "carol"}, "x-user") == "carol"
    assert actor_of({"x-user": "carol", "authorization": f"Bearer {jwt({'sub': 'alice'})}"}, "x-user") == "carol"
    assert actor_of({"authorization": f"Bearer {jwt({'sub': 'alice'})}"}, "x-user") == "anonymous"
    assert actor_of({"x-user": "x" * 256}, "x-user") == "x" * 256


async def test_unverified_jwt_sub_is_not_recorded(client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    r = await client.post("/fhir/Patient", json=patient(), headers={"sub": "alice", "name": "Alice"})
    assert r.status_code == 201
    (row,) = await _context(pool, "Patient", r.json()["id"])
    assert row["actor"] == "anonymous"


async def test_anonymous_with_client_address_and_request_id(client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    pid = new_id()
    await client.put(f"/fhir/Patient/{pid}", json=patient(pid), headers={"X-Request-Id": "req-123", "X-User": "eve"})
    await client.put(f"/fhir/Patient/{pid}", json=patient(pid, family="B"))
    rows = await _context(pool, "Patient", pid)
    assert [r["actor"] for r in rows] == ["anonymous", "anonymous"]  # X-User counts only when configured
    assert rows[0]["request_id"] == "req-123"
    assert rows[1]["request_id"] and rows[1]["request_id"] != "req-123"  # generated
    assert all(r["client_addr"] == "127.0.0.1" for r in rows)


async def test_actor_from_configured_header(header_client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    pid = new_id()
    await header_client.put(f"/fhir/Patient/{pid}", json=patient(pid), headers={"X-User": "carol"})
    await header_client.put(
        f"/fhir/Patient/{pid}", json=patient(pid, family="B"), headers={"X-User": "dave", **bearer({"sub": "alice"})}
    )
    await header_client.put(f"/fhir/Patient/{pid}", json=patient(pid, family="C"), headers=bearer({"sub": "alice"}))
    await header_client.delete(f"/fhir/Patient/{pid}")
    rows = await _context(pool, "Patient", pid)
    assert [r["actor"] for r in rows] == ["carol", "dave", "anonymous", "anonymous"]


async def test_actor_in_transaction_bundle(header_client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    pid = new_id()
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": patient(pid), "request": {"method": "PUT", "url": f"Patient/{pid}"}}],
    }
    r = await header_client.post("/fhir", json=bundle, headers={"X-User": "batcher", "X-Request-Id": "tx-9"})
    assert r.status_code == 200, r.text
    (row,) = await _context(pool, "Patient", pid)
    assert (row["actor"], row["request_id"]) == ("batcher", "tx-9")


def _versions(bundle: dict) -> list[str]:
    return [e["response"]["etag"] for e in bundle.get("entry", [])]


async def test_history_actor_filter(header_client: httpx.AsyncClient) -> None:
    client = header_client
    pid = new_id()
    for who in ("alice", "bob", "alice", "bob", "bob"):
        await client.put(f"/fhir/Patient/{pid}", json=patient(pid, family=who), headers={"X-User": who})
    alice = (await client.get(f"/fhir/Patient/{pid}/_history", params={"actor": "alice"})).json()
    assert _versions(alice) == ['W/"3"', 'W/"1"']
    assert "total" not in alice
    bob = (await client.get(f"/fhir/Patient/{pid}/_history", params={"actor": "bob", "_count": 2})).json()
    assert _versions(bob) == ['W/"5"', 'W/"4"']
    (next_url,) = [link["url"] for link in bob["link"] if link["relation"] == "next"]
    assert "actor=bob" in next_url
    rest = (await client.get(next_url.removeprefix("http://testserver"))).json()
    assert _versions(rest) == ['W/"2"']
    nobody = (await client.get(f"/fhir/Patient/{pid}/_history", params={"actor": "mallory"})).json()
    assert nobody.get("entry", []) == []


async def test_type_and_system_history_actor_filter_with_since(header_client: httpx.AsyncClient) -> None:
    client = header_client
    who = new_id("auditor")
    first = await client.post("/fhir/Patient", json=patient(), headers={"X-User": who})
    await client.post("/fhir/Patient", json=patient(), headers={"X-User": "someone-else"})
    second = await client.post(
        "/fhir/Basic", json={"resourceType": "Basic", "code": {"text": "a"}}, headers={"X-User": who}
    )
    since = first.json()["meta"]["lastUpdated"]
    typed = (await client.get("/fhir/Patient/_history", params={"actor": who, "_since": since})).json()
    assert [e["resource"]["id"] for e in typed["entry"]] == [first.json()["id"]]
    system = (await client.get("/fhir/_history", params={"actor": who, "_since": since})).json()
    assert [e["resource"]["id"] for e in system["entry"]] == [second.json()["id"], first.json()["id"]]
    later = second.json()["meta"]["lastUpdated"]
    at = (await client.get("/fhir/Patient/_history", params={"actor": who, "_at": later})).json()
    assert [e["resource"]["id"] for e in at["entry"]] == [first.json()["id"]]


async def test_bad_actor_filter_is_400(client: httpx.AsyncClient) -> None:
    for query in ("actor=", "actor=a&actor=b"):
        r = await client.get(f"/fhir/_history?{query}")
        assert r.status_code == 400, query
        assert r.json()["resourceType"] == "OperationOutcome"


async def test_audit_cli_prints_who_did_what_when(header_client: httpx.AsyncClient, database_dsn: str) -> None:
    client = header_client
    pid = new_id()
    await client.put(f"/fhir/Patient/{pid}", json=patient(pid), headers={"X-User": "alice", "X-Request-Id": "r-1"})
    await client.patch(
        f"/fhir/Patient/{pid}",
        content=orjson.dumps([{"op": "replace", "path": "/name/0/family", "value": "P"}]),
        headers={"Content-Type": "application/json-patch+json", "X-User": "bob", "X-Request-Id": "r-2"},
    )
    await client.delete(f"/fhir/Patient/{pid}", headers={"X-Request-Id": "r-3"})
    out = io.StringIO()
    shown = await audit(database_dsn, f"Patient/{pid}", Console(file=out, width=300))
    assert shown == 3
    lines = [line for line in out.getvalue().splitlines() if pid in line and "Audit" not in line]
    assert len(lines) == 3
    for line, expected in zip(
        lines,
        [
            ("1", "created", "PUT", "alice", "r-1"),
            ("2", "updated", "PATCH", "bob", "r-2"),
            ("3", "deleted", "DELETE", "anonymous", "r-3"),
        ],
        strict=True,
    ):
        cells = [c.strip() for c in line.strip("│┃| ").split("│")]
        assert (cells[0], cells[1], cells[2], cells[5], cells[7]) == expected
        assert cells[3] == f"Patient/{pid}"
        assert cells[4].endswith("Z") or "+" in cells[4]
        assert cells[6] == "127.0.0.1"


async def test_audit_cli_unknown_and_bad_resource(database_dsn: str) -> None:
    out = io.StringIO()
    assert await audit(database_dsn, "Patient/never-written", Console(file=out, width=200)) == 0
    assert "No events for Patient/never-written" in out.getvalue()
    for bad in ("Patient", "Patient/", "Nope/1", "Patient/a/b"):
        with pytest.raises(CommandError):
            await audit(database_dsn, bad, Console(file=io.StringIO()))


def test_audit_command_line(database_dsn: str, capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    assert main(["audit", "--resource", "Patient/never-written", "--database-url", database_dsn]) == 0
    assert "No events" in capsys.readouterr().out
    assert main(["audit", "--resource", "bad", "--database-url", database_dsn]) == 2
    assert "not Type/id" in capsys.readouterr().err
