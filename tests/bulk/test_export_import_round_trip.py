"""The round trip of the Bulk Data issue: ``$export`` files downloaded from one server and loaded
with ``fhirledger import`` into a fresh server read back byte for byte (ETag and Last-Modified
too), and a second import of the same files changes nothing."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import asyncpg
import httpx
from rich.console import Console

from app.cli_import import run_import
from tests.api.bulk_helpers import finish, kick_off
from tests.bulk.test_import_round_trip import _written, fresh  # noqa: F401  (fixture)

pytest_plugins = ["tests.api.bulk_fixtures"]


async def test_export_then_import_into_a_fresh_server_is_byte_identical(
    bulk_client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    fresh: tuple[str, httpx.AsyncClient],  # noqa: F811
    tmp_path: Path,
) -> None:
    dsn, fresh_client = fresh
    since = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    refs = await _written(bulk_client)
    originals = {ref: await bulk_client.get(f"/fhir/{ref}") for ref in refs}
    status_url = await kick_off(bulk_client, f"/fhir/$export?_type=Patient,Observation&_since={quote(since)}")
    manifest = await finish(bulk_client, pool, status_url)
    assert manifest["error"] == []
    for n, item in enumerate(manifest["output"]):  # the files as a Bulk Data client stores them
        r = await bulk_client.get(item["url"])
        assert r.status_code == 200
        (tmp_path / f"{item['type']}-{n}.ndjson").write_bytes(r.content)
    summary = await run_import(dsn, [str(tmp_path)], Console(file=io.StringIO()), workers=1)
    assert (summary.rejected, summary.conflicts) == (0, 0)
    assert summary.imported == sum(item["count"] for item in manifest["output"]) >= len(refs)
    for ref, original in originals.items():
        copy = await fresh_client.get(f"/fhir/{ref}")
        assert copy.status_code == 200, copy.text
        assert copy.content == original.content
        assert (copy.headers["ETag"], copy.headers["Last-Modified"]) == (
            original.headers["ETag"],
            original.headers["Last-Modified"],
        )
    again = await run_import(dsn, [str(tmp_path)], Console(file=io.StringIO()), workers=1)
    assert (again.imported, again.skipped) == (0, summary.imported)
