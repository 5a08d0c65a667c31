"""Responses without a body over a real keep-alive connection (uvicorn's HTTP parser, fhirledger's
protocol): a HEAD, a 304, an error and a read answer in order on one connection, pipelined
(app/api/one_send.py holds a response's head until its body, or until the response completes)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.api.live import connect, read_reply, serve
from tests.helpers import FHIR, new_id, patient


@pytest.fixture(scope="module")
async def port(app) -> AsyncIterator[int]:
    async with serve(app) as p:
        yield p


def request(method: str, path: str, headers: str = "") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: localhost\r\n{headers}\r\n".encode()


async def read_head_only(reader: asyncio.StreamReader) -> dict[str, str]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    lines = head.decode("latin-1").split("\r\n")
    fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    return {"status": lines[0].split()[1], **fields}


async def test_head_304_and_errors_answer_in_order_on_one_connection(port: int, client: httpx.AsyncClient) -> None:
    pid = new_id()
    await client.put(f"/fhir/Patient/{pid}", json=patient(pid), headers=FHIR)
    path = f"/fhir/Patient/{pid}"
    async with connect(port) as conn:
        conn.writer.write(
            request("HEAD", path)
            + request("GET", path, 'If-None-Match: W/"1"\r\n')
            + request("GET", f"/fhir/Patient/{new_id()}")
            + request("GET", path)
        )
        head = await read_head_only(conn.reader)
        assert head["status"] == "200" and head["etag"] == 'W/"1"' and int(head["content-length"]) > 0
        not_modified = await read_head_only(conn.reader)
        assert not_modified["status"] == "304"
        missing = await read_reply(conn.reader)
        assert missing.status == 404 and missing.json()["resourceType"] == "OperationOutcome"
        read = await read_reply(conn.reader)
        assert read.status == 200 and read.json()["id"] == pid
        assert len(read.body) == int(head["content-length"])
