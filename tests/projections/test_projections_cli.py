"""`fhirledger projections status` and `rebuild` as operators run them."""

from __future__ import annotations

import io

import httpx
from rich.console import Console

from app.cli import main
from app.cli_projections import rebuild, status


async def test_status_lists_projections_with_rows_and_state(client: httpx.AsyncClient, database_dsn: str) -> None:
    await client.post(
        "/fhir/Immunization",
        json={
            "resourceType": "Immunization",
            "status": "completed",
            "vaccineCode": {"text": "flu"},
            "patient": {"reference": "Patient/x"},
            "occurrenceDateTime": "2021-01-01",
        },
    )
    out = io.StringIO()
    rows = await status(database_dsn, show_all=False, console=Console(file=out, width=200))
    by_name = {r["name"]: r for r in rows}
    assert by_name["current_state:Immunization"]["status"] == "ready"
    assert by_name["current_state:Immunization"]["rows"] >= 1
    assert by_name["search_index:Immunization"]["rows"] >= 1
    assert by_name["search_index:Immunization"]["version"] == "current"
    assert "current_state:Immunization" in out.getvalue()


async def test_rebuild_command_rebuilds_and_reports(database_dsn: str) -> None:
    out = io.StringIO()
    total = await rebuild(database_dsn, ["Immunization"], console=Console(file=out, width=200))
    assert total >= 1
    assert "rebuilt 1 type(s)" in out.getvalue()


def test_rebuild_rejects_unknown_types(capsys) -> None:
    assert main(["projections", "rebuild", "--type", "Nope", "--database-url", "postgresql://x@/y"]) == 2
    assert "unknown: Nope" in capsys.readouterr().err
