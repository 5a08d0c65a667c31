"""A minimal keep-alive HTTP/1.1 client over asyncio streams, so that the load generator costs
little CPU next to the server on a 2-core machine (httpx costs more than the server itself)."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit


class RawConnection:
    def __init__(self, base: str) -> None:
        parts = urlsplit(base)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """One request; a kept-alive connection the server closed meanwhile is reopened once."""
        fresh = self.writer is None
        try:
            return await self._once(method, path, body, headers)
        except (asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError):
            if fresh:
                raise
            self.writer = None
            return await self._once(method, path, body, headers)

    async def _once(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        lines = [
            f"{method} {self.prefix}{path} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            f"Content-Length: {len(body)}",
        ]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        out: dict[str, str] = {}
        for line in header_lines:
            if ":" in line:
                k, v = line.split(":", 1)
                out[k.strip().lower()] = v.strip()
        length = int(out.get("content-length", "0"))
        data = await self.reader.readexactly(length) if length else b""
        return status, out, data

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
