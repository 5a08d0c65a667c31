"""Every rejected request is an OperationOutcome with the right status and writes nothing."""

from __future__ import annotations

import httpx
import orjson
import pytest

from tests.helpers import FHIR, new_id, patient

BIG = orjson.dumps(patient(text={"status": "generated", "div": "<div>" + "x" * (2 * 1024 * 1024) + "</div>"}))

CASES = [
    # (name, method, path, body bytes, headers, status, text in diagnostics)
    ("malformed json", "POST", "/fhir/Patient", b'{"resourceType": "Patient",', FHIR, 400, "not valid JSON"),
    ("empty body", "POST", "/fhir/Patient", b"", FHIR, 400, "empty"),
    ("json array body", "POST", "/fhir/Patient", b"[]", FHIR, 400, "JSON object"),
    (
        "type mismatch on create",
        "POST",
        "/fhir/Patient",
        orjson.dumps({"resourceType": "Observation"}),
        FHIR,
        400,
        "does not match",
    ),
    ("no resourceType", "POST", "/fhir/Patient", b'{"active": true}', FHIR, 400, "resourceType"),
    (
        "type mismatch on update",
        "PUT",
        "/fhir/Patient/x1",
        orjson.dumps({"resourceType": "Observation", "id": "x1"}),
        FHIR,
        400,
        "does not match",
    ),
    ("id mismatch on update", "PUT", "/fhir/Patient/x1", orjson.dumps(patient("x2")), FHIR, 400, "does not match"),
    ("id missing on update", "PUT", "/fhir/Patient/x1", orjson.dumps(patient()), FHIR, 400, "no 'id'"),
    (
        "unknown type create",
        "POST",
        "/fhir/Patients",
        orjson.dumps({"resourceType": "Patients"}),
        FHIR,
        404,
        "Unknown resource type",
    ),
    (
        "unknown type update",
        "PUT",
        "/fhir/Foo/1",
        orjson.dumps({"resourceType": "Foo", "id": "1"}),
        FHIR,
        404,
        "Unknown resource type",
    ),
    ("unknown type delete", "DELETE", "/fhir/Foo/1", b"", {}, 404, "Unknown resource type"),
    ("invalid id", "PUT", "/fhir/Patient/bad_id!", orjson.dumps(patient("bad_id!")), FHIR, 400, "Invalid resource id"),
    (
        "id too long",
        "PUT",
        "/fhir/Patient/" + "a" * 65,
        orjson.dumps(patient("a" * 65)),
        FHIR,
        400,
        "Invalid resource id",
    ),
    ("invalid id delete", "DELETE", "/fhir/Patient/bad_id!", b"", {}, 400, "Invalid resource id"),
    ("body too large", "POST", "/fhir/Patient", BIG, FHIR, 413, "limit"),
    (
        "xml content type",
        "POST",
        "/fhir/Patient",
        b"<Patient/>",
        {"Content-Type": "application/fhir+xml"},
        415,
        "not supported",
    ),
    (
        "form content type",
        "PUT",
        "/fhir/Patient/x1",
        b"a=b",
        {"Content-Type": "application/x-www-form-urlencoded"},
        415,
        "not supported",
    ),
    ("unknown route", "GET", "/nothing/here", b"", {}, 404, "No FHIR endpoint"),
    ("unknown deep route", "GET", "/fhir/Patient/1/_history/1/extra", b"", {}, 404, "No FHIR endpoint"),
    ("method not allowed", "DELETE", "/fhir/metadata", b"", {}, 405, "not allowed"),
    ("method not allowed on history", "POST", "/fhir/Patient/1/_history", b"{}", FHIR, 405, "not allowed"),
    (
        "bad If-Match",
        "PUT",
        "/fhir/Patient/x1",
        orjson.dumps(patient("x1")),
        {**FHIR, "If-Match": "yesterday"},
        400,
        "If-Match",
    ),
    ("xml only accept", "GET", "/fhir/metadata", b"", {"Accept": "application/fhir+xml"}, 406, "cannot be served"),
    ("xml _format", "GET", "/fhir/metadata?_format=xml", b"", {}, 406, "_format"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
async def test_rejected_request_is_outcome_and_writes_nothing(client: httpx.AsyncClient, log_count, case) -> None:
    _, method, path, body, headers, status, text = case
    before = await log_count()
    r = await client.request(method, path, content=body, headers=headers)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/fhir+json")
    outcome = r.json()
    assert outcome["resourceType"] == "OperationOutcome"
    issue = outcome["issue"][0]
    assert issue["severity"] in ("error", "fatal")
    assert text in issue["diagnostics"], issue["diagnostics"]
    assert await log_count() == before


async def test_412_on_delete_with_stale_if_match_writes_nothing(client: httpx.AsyncClient, log_count) -> None:
    pid = new_id()
    await client.put(f"/fhir/Patient/{pid}", json=patient(pid))
    before = await log_count()
    r = await client.delete(f"/fhir/Patient/{pid}", headers={"If-Match": 'W/"3"'})
    assert r.status_code == 412
    assert await log_count() == before
    assert (await client.get(f"/fhir/Patient/{pid}")).status_code == 200


async def test_vread_of_unknown_type_is_404(client: httpx.AsyncClient) -> None:
    r = await client.get("/fhir/Nope/1/_history/1")
    assert r.status_code == 404
    assert "Unknown resource type" in r.json()["issue"][0]["diagnostics"]
