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


async def test_rebuild_of_several_types_rebuilds_each(client: httpx.AsyncClient, database_dsn: str) -> None:
    """Types are rebuilt two at a time: every one of them ends rebuilt, searchable, and counted."""
    for _ in range(2):
        r = await client.post("/fhir/EnrollmentRequest", json={"resourceType": "EnrollmentRequest", "status": "active"})
        assert r.status_code == 201, r.text
    body = {"resourceType": "BodyStructure", "description": "left knee", "patient": {"reference": "Patient/k"}}
    r = await client.post("/fhir/BodyStructure", json=body)
    assert r.status_code == 201, r.text
    out = io.StringIO()
    types = ["EnrollmentRequest", "BodyStructure", "Linkage"]
    total = await rebuild(database_dsn, types, console=Console(file=out, width=200))
    assert total >= 3
    assert "rebuilt 3 type(s)" in out.getvalue()
    rows = await status(database_dsn, show_all=False, console=Console(file=io.StringIO(), width=200))
    by_name = {r["name"]: r for r in rows}
    for t in ("EnrollmentRequest", "BodyStructure"):
        assert by_name[f"current_state:{t}"]["status"] == "ready"
        assert by_name[f"search_index:{t}"]["version"] == "current"
    found = await client.get("/fhir/EnrollmentRequest", params={"status": "active", "_total": "accurate"})
    assert found.status_code == 200 and found.json()["total"] >= 2
    found = await client.get("/fhir/BodyStructure", params={"_content": "knee", "_total": "accurate"})
    assert found.status_code == 200 and found.json()["total"] >= 1


def test_rebuild_rejects_unknown_types(capsys) -> None:
    assert main(["projections", "rebuild", "--type", "Nope", "--database-url", "postgresql://x@/y"]) == 2
    assert "unknown: Nope" in capsys.readouterr().err
