"""Malformed ids, version ids and identity headers answer a 400 OperationOutcome over HTTP (never
500, never a plain-text answer), and write nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.api.live import connect, serve
from tests.helpers import new_id, patient


@pytest.fixture(scope="module")
async def port(app) -> AsyncIterator[int]:
    async with serve(app) as p:
        yield p


@pytest.fixture(scope="module")
async def stored(port: int) -> str:
    pid = new_id()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        assert (await client.put(f"/fhir/Patient/{pid}", json=patient(pid))).status_code == 201
    return pid


def _is_outcome_400(r) -> None:
    assert r.status == 400, r.body
    assert r.headers["content-type"].startswith("application/fhir+json")
    assert r.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize(
    "path",
    [
        "/fhir/Patient/a%00b",
        "/fhir/Patient/a%01b",
        "/fhir/Patient/a%0Ab",
        "/fhir/Patient/" + "x" * 65,
        "/fhir/Patient/a_b",
        "/fhir/Patient/%EF%BC%91",
        "/fhir/Patient/a%00b/_history",
        "/fhir/Patient/a%00b/_history/1",
    ],
)
async def test_a_malformed_id_is_400(port: int, path: str) -> None:
    async with connect(port) as conn:
        r = await conn.get(path)
        _is_outcome_400(r)
        assert "Invalid resource id" in r.diagnostics


@pytest.mark.parametrize(
    ("version", "says"),
    [
        ("%EF%BC%91", "ASCII digits"),  # full-width 1
        ("1%00", "Invalid version id"),
        ("%01", "Invalid version id"),
        ("99999999999999999999", "out of range"),
        ("1" * 65, "Invalid version id"),
    ],
)
async def test_a_malformed_version_id_is_400(port: int, stored: str, version: str, says: str) -> None:
    async with connect(port) as conn:
        r = await conn.get(f"/fhir/Patient/{stored}/_history/{version}")
        _is_outcome_400(r)
        assert says in r.diagnostics
        assert (await conn.get(f"/fhir/Patient/{stored}/_history/1")).status == 200


async def test_a_control_character_in_the_request_id_is_400_and_writes_nothing(port: int, log_count) -> None:
    body = b'{"resourceType":"Patient"}'
    raw = (
        b"POST /fhir/Patient HTTP/1.1\r\nHost: x\r\nContent-Type: application/fhir+json\r\nX-Request-Id: a\tb\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    before = await log_count()
    async with connect(port) as conn:
        r = await conn.request(raw)
        _is_outcome_400(r)
        assert "control character" in r.diagnostics and "X-Request-Id" in r.diagnostics
    assert await log_count() == before


async def test_an_over_long_request_id_is_400(port: int, log_count) -> None:
    before = await log_count()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        r = await client.post("/fhir/Patient", json=patient(), headers={"X-Request-Id": "r" * 201})
    assert r.status_code == 400 and "at most 128" in r.json()["issue"][0]["diagnostics"]
    assert await log_count() == before


async def test_a_control_character_in_the_actor_header_is_400(settings, pool, log_count) -> None:
    from app.api.app import create_app

    app = create_app(settings.model_copy(update={"actor_header": "X-User"}), pool)
    before = await log_count()
    async with serve(app) as port, connect(port) as conn:
        body = b'{"resourceType":"Patient"}'
        r = await conn.request(
            b"POST /fhir/Patient HTTP/1.1\r\nHost: x\r\nContent-Type: application/fhir+json\r\nX-User: al\tice\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        _is_outcome_400(r)
        assert "X-User" in r.diagnostics and "control character" in r.diagnostics
    assert await log_count() == before
