"""An export read back through the API, imported into a fresh database, reads back byte for byte;
and an import into a database while the API writes the same resources keeps every version chain
whole.

The ``$export`` operation is built on another branch; its files are simulated here as what it
writes: the stored bytes of each current resource, one per line, per type."""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from rich.console import Console

from app.api.app import create_app
from app.cli_import import run_import
from app.db.migrations import migrate
from app.projections.state import check_projections
from app.settings import Settings
from tests.helpers import new_id


@pytest.fixture
async def fresh(server_dsn: str, settings: Settings) -> AsyncIterator[tuple[str, httpx.AsyncClient]]:
    """A second, empty database with its own API (the "fresh server")."""
    name = f"fhirledger_fresh_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(server_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(server_dsn)
    dsn = urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))
    conn = await asyncpg.connect(dsn)
    await migrate(conn)
    await check_projections(conn)
    await conn.close()
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
    app = create_app(settings.model_copy(update={"database_url": dsn}), pool)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
            yield dsn, c
    finally:
        await pool.close()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def _written(client: httpx.AsyncClient) -> list[str]:
    """Resources of several shapes written through the API: a thrice-written Patient, an
    Observation with decimals, unicode and tags, and a deleted one (not exported)."""
    pid = new_id()
    patient = {"resourceType": "Patient", "id": pid, "name": [{"family": "Rounder", "given": ["Zoë"]}]}
    for gender in ("male", "female", "other"):
        r = await client.put(f"/fhir/Patient/{pid}", json={**patient, "gender": gender})
        assert r.status_code in (200, 201), r.text
    obs = {
        "resourceType": "Observation",
        "meta": {"tag": [{"system": "http://example.org/tags", "code": "round-trip"}]},
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}], "text": "Glucose – fasting ✓"},
        "subject": {"reference": f"Patient/{pid}"},
        "valueQuantity": {"value": 7.50, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"},
        "effectiveDateTime": "2021-03-28T01:30:00+01:00",
    }
    r = await client.post("/fhir/Observation", json=obs)
    assert r.status_code == 201, r.text
    oid = r.json()["id"]
    gone = (await client.post("/fhir/Patient", json={"resourceType": "Patient"})).json()["id"]
    assert (await client.delete(f"/fhir/Patient/{gone}")).status_code in (200, 204)
    return [f"Patient/{pid}", f"Observation/{oid}"]


async def test_export_files_import_into_a_fresh_server_byte_identical(
    client: httpx.AsyncClient, fresh: tuple[str, httpx.AsyncClient], tmp_path: Path
) -> None:
    dsn, fresh_client = fresh
    refs = await _written(client)
    originals = {ref: await client.get(f"/fhir/{ref}") for ref in refs}
    for ref, r in originals.items():  # the export files: stored bytes, one resource per line, per type
        with (tmp_path / f"{ref.split('/')[0]}.ndjson").open("ab") as f:
            f.write(r.content + b"\n")
    summary = await run_import(dsn, [str(tmp_path)], Console(file=io.StringIO()), workers=1)
    assert (summary.imported, summary.rejected, summary.conflicts) == (2, 0, 0)
    for ref, original in originals.items():
        copy = await fresh_client.get(f"/fhir/{ref}")
        assert copy.status_code == 200
        assert copy.content == original.content
        assert copy.headers["ETag"] == original.headers["ETag"]
        assert copy.headers["Last-Modified"] == original.headers["Last-Modified"]
    history = (await fresh_client.get(f"/fhir/{refs[0]}/_history")).json()
    assert [e["resource"]["meta"]["versionId"] for e in history["entry"]] == ["3"]
    again = await run_import(dsn, [str(tmp_path)], Console(file=io.StringIO()), workers=1)
    assert (again.imported, again.skipped) == (0, 2)


async def test_import_while_the_api_writes_the_same_resources(
    client: httpx.AsyncClient, database_dsn: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    ids = [new_id("race") for _ in range(300)]
    path = tmp_path / "race.ndjson"
    path.write_bytes(
        b"".join(
            b'{"resourceType": "Patient", "id": "%s", "name": [{"family": "Imported"}]}\n' % i.encode() for i in ids
        )
    )
    contested = ids[::10]

    async def api_writes() -> None:
        for i in contested:
            body = {"resourceType": "Patient", "id": i, "name": [{"family": "ApiWrote"}]}
            assert (await client.put(f"/fhir/Patient/{i}", json=body)).status_code in (200, 201)
            await asyncio.sleep(0)

    summary, _ = await asyncio.gather(
        run_import(database_dsn, [str(path)], Console(file=io.StringIO()), batch=25, workers=1), api_writes()
    )
    assert summary.imported + summary.conflicts == 300
    for i in contested:
        versions = [
            r["version"]
            for r in await pool.fetch(
                "SELECT version FROM event_log WHERE resource_type = 'Patient' AND resource_id = $1 ORDER BY version", i
            )
        ]
        assert versions == list(range(1, len(versions) + 1))
        current = (await client.get(f"/fhir/Patient/{i}")).json()
        assert current["meta"]["versionId"] == str(len(versions))
        assert current["name"][0]["family"] == "ApiWrote"  # the API's write is never overwritten by the import
