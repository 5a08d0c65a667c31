"""``_summary`` and ``_elements`` on read and vread give the subsetted resource with the
SUBSETTED tag, as search does; a value a read cannot honour is a 400 OperationOutcome."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers import new_id, patient

SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}


@pytest.fixture
async def pid(client: httpx.AsyncClient) -> str:
    pid = new_id()
    body = patient(pid, gender="female", birthDate="1970-01-01", text={"status": "generated", "div": _DIV})
    body["maritalStatus"] = {"text": "married"}
    assert (await client.put(f"/fhir/Patient/{pid}", json=body)).status_code == 201
    return pid


_DIV = '<div xmlns="http://www.w3.org/1999/xhtml">Jo Doe</div>'


@pytest.mark.parametrize("suffix", ["", "/_history/1"])
async def test_summary_true_keeps_summary_elements_and_tags_subsetted(
    client: httpx.AsyncClient, pid: str, suffix: str
) -> None:
    r = await client.get(f"/fhir/Patient/{pid}{suffix}?_summary=true")
    assert r.status_code == 200
    body = r.json()
    assert body["name"][0]["family"] == "Doe" and body["gender"] == "female"
    assert "maritalStatus" not in body and "text" not in body
    assert SUBSETTED in body["meta"]["tag"]
    assert r.headers["etag"] == 'W/"1"'


@pytest.mark.parametrize("suffix", ["", "/_history/1"])
async def test_elements_keeps_the_named_elements(client: httpx.AsyncClient, pid: str, suffix: str) -> None:
    body = (await client.get(f"/fhir/Patient/{pid}{suffix}?_elements=name,gender")).json()
    assert set(body) == {"resourceType", "id", "meta", "name", "gender"}
    assert SUBSETTED in body["meta"]["tag"]


async def test_summary_text_and_false(client: httpx.AsyncClient, pid: str) -> None:
    text = (await client.get(f"/fhir/Patient/{pid}?_summary=text")).json()
    assert text["text"]["div"] == _DIV and "name" not in text
    full = (await client.get(f"/fhir/Patient/{pid}?_summary=false")).json()
    assert full["maritalStatus"] == {"text": "married"} and "tag" not in full["meta"]


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("_summary=count", "for searches"),
        ("_summary=everything", "not one of"),
        ("_summary=true&_summary=text", "once"),
    ],
)
@pytest.mark.parametrize("suffix", ["", "/_history/1"])
async def test_a_summary_a_read_cannot_honour_is_400(
    client: httpx.AsyncClient, pid: str, suffix: str, query: str, says: str
) -> None:
    r = await client.get(f"/fhir/Patient/{pid}{suffix}?{query}")
    assert r.status_code == 400
    assert r.json()["resourceType"] == "OperationOutcome"
    assert says in r.json()["issue"][0]["diagnostics"]


async def test_a_parameter_read_does_not_use_is_named_in_a_warning(client: httpx.AsyncClient, pid: str) -> None:
    r = await client.get(f"/fhir/Patient/{pid}?name=x")
    assert r.status_code == 200
    assert "ignored: name" in r.headers["warning"]
