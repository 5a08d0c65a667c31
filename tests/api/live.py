"""A real HTTP server for tests that must go through uvicorn's HTTP parser (the ASGI test
transport skips it): uvicorn with fhirledger's protocol class on a free port, on the test event
loop, serving the session's app; and a raw HTTP/1.1 exchange over a socket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import orjson
import uvicorn
from fastapi import FastAPI

from app.api.protocol import FhirHttpToolsProtocol
from tests.server_process import free_port


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[int]:
    """Serve ``app`` (whose pool the tests own) over HTTP; yields the port."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, http=FhirHttpToolsProtocol, lifespan="off", log_level="warning"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        await task


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return orjson.loads(self.body)

    @property
    def diagnostics(self) -> str:
        return self.json()["issue"][0]["diagnostics"]


async def read_reply(reader: asyncio.StreamReader) -> Reply:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await asyncio.wait_for(reader.readexactly(int(headers.get("content-length", "0"))), 10)
    return Reply(status, headers, body)


class Connection:
    """One keep-alive connection: send raw requests, read replies in order."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def request(self, raw: bytes) -> Reply:
        self.writer.write(raw)
        await self.writer.drain()
        return await read_reply(self.reader)

    async def get(self, target: str | bytes, headers: bytes = b"") -> Reply:
        target = target.encode() if isinstance(target, str) else target
        return await self.request(b"GET " + target + b" HTTP/1.1\r\nHost: localhost\r\n" + headers + b"\r\n")

    async def closed_by_server(self) -> bool:
        return await asyncio.wait_for(self.reader.read(1), 5) == b""


@asynccontextmanager
async def connect(port: int) -> AsyncIterator[Connection]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        yield Connection(reader, writer)
    finally:
        writer.close()
