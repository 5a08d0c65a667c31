"""A request the server refuses while its client is still sending it (a request head over the hard
limit) gets its answer: the server answers, stops reading into its buffers, and discards what
still comes for a while before it closes, instead of closing at once. A connection closed with
unread data is reset by the kernel, and the client then meets that reset while it sends, before
it ever reads the 414 (``tests/api/test_http_limits.py`` failed so once at 1.1 MB)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.api.live import connect, serve


@pytest.fixture
async def port(app) -> AsyncIterator[int]:
    async with serve(app) as p:
        yield p


@pytest.mark.parametrize("megabytes", [2, 6])
async def test_a_client_still_sending_an_over_long_url_reads_its_414(port: int, megabytes: int) -> None:
    async with connect(port) as conn:
        r = await conn.get("/fhir/Patient?name=" + "a" * (megabytes * 1024 * 1024))
        assert r.status == 414 and r.json()["resourceType"] == "OperationOutcome"
        assert "Send long searches as POST" in r.diagnostics
        assert r.headers["connection"] == "close"
        assert await conn.closed_by_server()
