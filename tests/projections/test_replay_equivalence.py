"""Replaying the log (a full rebuild and a resumed one, row by row or through the worker processes
and COPY) gives exactly the rows the inline projectors and the custom-parameter jobs wrote: every
event kind (create, update, delete, re-create after a delete, transaction, patch) and custom
SearchParameters added, redefined and retired midway."""

from __future__ import annotations

import asyncpg
import httpx
import pytest

from app.jobs.runner import run_pending
from app.projections import bulk_load, custom_params
from app.projections.current_state import current_table
from app.projections.rebuild import RebuildInterrupted, custom_definitions, rebuild_type, replay_executor
from app.projections.search_index import KINDS, search_table
from tests.helpers import new_id

TYPES = ("Patient", "Observation", "SearchParameter")
MARITAL = "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"
PATCH = {"Content-Type": "application/json-patch+json"}


async def dump(pool: asyncpg.Pool) -> dict[str, list]:
    """Every row of every projection table of the types written here."""
    out: dict[str, list] = {}
    for t in TYPES:
        cur = current_table(t)
        out[cur] = [tuple(r) for r in await pool.fetch(f"SELECT * FROM {cur} ORDER BY id")]
        for kind in KINDS:
            table = search_table(t, kind)
            sql = f"SELECT * FROM {table}"
            if kind == "text":  # each row with the document it refers to (stored once for all its rows)
                sql = f"SELECT s.*, (SELECT min(d.doc::text) FROM text_document d WHERE d.id = s.doc_id) FROM {table} s"
            out[table] = sorted(tuple(str(v) for v in r) for r in await pool.fetch(sql))
    return out


def _param(sp_id: str, code: str, base: str, expression: str, status: str = "active") -> dict:
    return {
        "resourceType": "SearchParameter",
        "id": sp_id,
        "url": f"http://fhirledger.test/sp/{sp_id}",
        "name": code,
        "status": status,
        "description": "replay test",
        "code": code,
        "base": [base],
        "type": "token",
        "expression": expression,
    }


def _patient(pid: str, status: str = "M", lang: str = "fr") -> dict:
    return {
        "resourceType": "Patient",
        "id": pid,
        "maritalStatus": {"coding": [{"system": MARITAL, "code": status, "display": f"Marital status {status}"}]},
        "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": lang}]}}],
        "name": [{"family": f"Replay{pid[:6]}"}],
        "text": {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml">Speaks <b>{lang}</b></div>'},
    }


def _observation(pid: str, code: str) -> dict:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}], "text": f"Lab test {code}"},
        "note": [{"text": "Running late, sample haemolysed"}],
        "method": {"coding": [{"system": "http://snomed.info/sct", "code": "272391002"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectivePeriod": {"start": "2020-01-01T10:00:00Z"},  # no end: the range is open (DATE_MAX)
        "valueQuantity": {"value": 7.5, "system": "http://unitsofmeasure.org", "code": "mmol/L"},
    }


async def _ok(r: httpx.Response) -> dict:
    assert r.status_code in (200, 201), r.text
    return r.json()


async def _write_log(client: httpx.AsyncClient, pool: asyncpg.Pool, sp_a: str, sp_b: str) -> tuple[str, str]:
    """Writes of every kind, with custom parameters defined, redefined and retired in between."""
    p1, p2, p3 = new_id(), new_id(), new_id()
    await _ok(await client.put(f"/fhir/Patient/{p1}", json=_patient(p1)))  # before any custom parameter
    await _ok(await client.put(f"/fhir/Patient/{p2}", json=_patient(p2, "S")))
    code_a = f"ms{new_id()[:8]}".lower()
    await _ok(
        await client.put(f"/fhir/SearchParameter/{sp_a}", json=_param(sp_a, code_a, "Patient", "Patient.maritalStatus"))
    )
    await _ok(await client.put(f"/fhir/Patient/{p1}", json=_patient(p1, "D")))  # update, indexed inline
    await _ok(await client.delete(f"/fhir/Patient/{p2}"))
    await _ok(await client.put(f"/fhir/Patient/{p2}", json=_patient(p2, "W")))  # re-created after the delete
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": _patient(p3, "U"), "request": {"method": "PUT", "url": f"Patient/{p3}"}},
            {"resource": _observation(p3, "2339-0"), "request": {"method": "POST", "url": "Observation"}},
        ],
    }
    await _ok(await client.post("/fhir", json=bundle))
    await run_pending(pool)  # the first definition's index is built midway
    code_b = f"me{new_id()[:8]}".lower()
    await _ok(
        await client.put(
            f"/fhir/SearchParameter/{sp_b}", json=_param(sp_b, code_b, "Observation", "Observation.method")
        )
    )
    await _ok(await client.post("/fhir/Observation", json=_observation(p1, "718-7")))
    ops = [{"op": "replace", "path": "/maritalStatus/coding/0/code", "value": "S"}]
    await _ok(await client.patch(f"/fhir/Patient/{p3}", json=ops, headers=PATCH))
    code_a2 = f"ml{new_id()[:8]}".lower()  # redefined: another code and expression
    redefined = _param(sp_a, code_a2, "Patient", "Patient.maritalStatus | Patient.communication.language")
    await _ok(await client.put(f"/fhir/SearchParameter/{sp_a}", json=redefined))
    await _ok(await client.put(f"/fhir/Patient/{p1}", json=_patient(p1, "M", "de")))
    await _ok(
        await client.put(
            f"/fhir/SearchParameter/{sp_b}", json=_param(sp_b, code_b, "Observation", "Observation.method", "retired")
        )
    )
    await _ok(await client.post("/fhir/Observation", json=_observation(p3, "718-7")))
    while await run_pending(pool):
        pass
    return code_a2, p1


async def test_replay_gives_the_rows_the_inline_projectors_wrote(
    client: httpx.AsyncClient, app, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    sp_a, sp_b = new_id(), new_id()
    code, p1 = await _write_log(client, pool, sp_a, sp_b)
    try:
        found = await _ok(await client.get(f"/fhir/Patient?{code}=de"))
        assert [e["resource"]["id"] for e in found.get("entry", [])] == [p1], "the redefined parameter is served"
        inline = await dump(pool)
        indexed = {r[1] for r in inline[search_table("Patient", "token")]}
        assert code in indexed, "the custom parameter's rows are part of what is compared"
        texts = {r[1] for r in inline[search_table("Patient", "text")]}
        assert {"_content", "_text", code} <= texts, "so are the full-text rows, with their documents"
        for t in TYPES:
            assert all(r[-1] != "None" for r in inline[search_table(t, "text")]), "every row's document is stored"
        assert {"_content", "code"} <= {r[1] for r in inline[search_table("Observation", "text")]}
        for t in TYPES:  # full replay, row by row
            await rebuild_type(pool, t, batch=7)
        assert await dump(pool) == inline
        for t in TYPES:  # killed after one batch, then resumed
            with pytest.raises(RebuildInterrupted):
                await rebuild_type(pool, t, batch=3, stop_after_batches=1)
            assert (await rebuild_type(pool, t, batch=3)).resumed_from > 0
        assert await dump(pool) == inline
        monkeypatch.setattr(bulk_load, "BULK_MIN", 1)  # through the worker processes and COPY
        with replay_executor(await custom_definitions(pool)) as executor:
            for t in TYPES:
                await rebuild_type(pool, t, batch=5, executor=executor)
        assert await dump(pool) == inline
        async with pool.acquire() as conn:
            urls = {u for u in custom_params.load_definitions(await custom_params.current_definitions(conn))}
        assert f"http://fhirledger.test/sp/{sp_a}" in urls and f"http://fhirledger.test/sp/{sp_b}" not in urls
    finally:
        for sp in (sp_a, sp_b):
            await client.delete(f"/fhir/SearchParameter/{sp}")
        while await run_pending(pool):
            pass


async def test_a_new_parameter_is_seen_by_the_next_search_without_a_timer(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    sp, code = new_id(), f"nt{new_id()[:8]}".lower()
    pid = new_id()
    await _ok(await client.put(f"/fhir/Patient/{pid}", json=_patient(pid, "T")))
    await _ok(
        await client.put(f"/fhir/SearchParameter/{sp}", json=_param(sp, code, "Patient", "Patient.maritalStatus"))
    )
    try:
        building = await client.get(f"/fhir/Patient?{code}=T")
        assert building.status_code == 503, "known at once (no refresh timer), and refused while its index builds"
        await run_pending(pool)
        found = await _ok(await client.get(f"/fhir/Patient?{code}={MARITAL}|T"))
        assert pid in {e["resource"]["id"] for e in found.get("entry", [])}
    finally:
        await client.delete(f"/fhir/SearchParameter/{sp}")
        while await run_pending(pool):
            pass
