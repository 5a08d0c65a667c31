"""A real Synthea patient written as one transaction Bundle, the same resources written one request
at a time, and the Bundle's versions replayed from the log all leave the same projection rows (every
search side table, the current state); a Bundle refused midway leaves the log and the projections
as they were."""

from __future__ import annotations

import gzip
import uuid
from pathlib import Path

import asyncpg
import httpx
import orjson

from app.projections.current_state import current_table
from app.projections.rebuild import rebuild_type
from app.projections.search_index import COLUMNS, KINDS, search_table
from tests.helpers import side_rows_sql

SYNTHEA = Path(__file__).resolve().parent.parent / "data" / "synthea" / "clemente_kreiger.json.gz"


def _synthea() -> dict:
    return orjson.loads(gzip.decompress(SYNTHEA.read_bytes()))


def _replace(value: object, mapping: dict[str, str]) -> object:
    """``value`` with every string that ``mapping`` names replaced, at any depth."""
    if isinstance(value, str):
        return mapping.get(value, value)
    if isinstance(value, dict):
        return {k: _replace(v, mapping) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace(v, mapping) for v in value]
    return value


def _location_id(location: str) -> str:
    return location.split("/")[1]  # Type/id/_history/n


async def _rows(pool: asyncpg.Pool, types: set[str], ids: list[str], names: dict[str, str]) -> dict[str, list]:
    """Every projection row of the resources ``ids``, their ids and references written as
    ``names`` gives them (so resources written under other ids compare equal): current-state rows
    as (id, version, deleted), search rows without the columns PostgreSQL generates from the others
    (a reference's hash is that of the target's id)."""

    def named(v: object) -> str:
        text = str(v)
        for rid, name in names.items():
            text = text.replace(rid, name)
        return text

    out: dict[str, list] = {}
    for t in sorted(types):
        rows = await pool.fetch(f"SELECT id, version, deleted FROM {current_table(t)} WHERE id = ANY($1)", ids)
        out[current_table(t)] = sorted(tuple(named(v) for v in r) for r in rows)
        for kind in KINDS:
            table = search_table(t, kind)
            columns = ", ".join(
                ["c.id", *(f"s.{c}" for c in ("param", *(c for c, _ in COLUMNS[kind])))]
            )  # not those PostgreSQL computes
            rows = await pool.fetch(side_rows_sql(table, current_table(t), columns, "c.id = ANY($1)"), ids)
            out[table] = sorted(tuple(named(v) for v in r) for r in rows)
    return out


async def _post_bundle(client: httpx.AsyncClient, bundle: dict) -> list[str]:
    r = await client.post("/fhir", json=bundle)
    assert r.status_code == 200, r.text[:2000]
    return [_location_id(e["response"]["location"]) for e in r.json()["entry"]]


async def _post_one_by_one(client: httpx.AsyncClient, bundle: dict) -> list[str]:
    """Each entry as its own create, its references to earlier entries rewritten to their ids."""
    mapping: dict[str, str] = {}
    ids = []
    for entry in bundle["entry"]:
        resource = _replace(entry["resource"], mapping)
        r = await client.post(f"/fhir/{resource['resourceType']}", json=resource)
        assert r.status_code == 201, r.text[:2000]
        ids.append(r.json()["id"])
        mapping[entry["fullUrl"]] = f"{resource['resourceType']}/{ids[-1]}"
    return ids


def _updates(bundle: dict, ids: list[str], every: int) -> list[tuple[str, str, dict]]:
    """(type, id, new body) for every ``every``-th resource written as ``ids``: an identifier
    added, the narrative dropped (new rows, rows gone, rows kept)."""
    mapping = {
        e["fullUrl"]: f"{e['resource']['resourceType']}/{rid}" for e, rid in zip(bundle["entry"], ids, strict=True)
    }
    out = []
    for i in range(0, len(ids), every):
        resource = dict(_replace(bundle["entry"][i]["resource"], mapping))  # type: ignore[call-overload]
        resource["id"] = ids[i]
        resource["identifier"] = [{"system": "urn:fhirledger:test", "value": f"updated-{i}"}]
        resource.pop("text", None)
        out.append((resource["resourceType"], ids[i], resource))
    return out


async def test_a_bundle_single_writes_and_replay_leave_the_same_rows(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    bundle = _synthea()
    types = {e["resource"]["resourceType"] for e in bundle["entry"]}
    in_bundle = await _post_bundle(client, bundle)
    one_by_one = await _post_one_by_one(client, bundle)
    names = [f"<entry {i}>" for i in range(len(in_bundle))]
    from_bundle = await _rows(pool, types, in_bundle, dict(zip(in_bundle, names, strict=True)))
    assert sum(len(v) for v in from_bundle.values()) > 10 * len(in_bundle), "a Synthea patient has many rows"
    assert from_bundle == await _rows(pool, types, one_by_one, dict(zip(one_by_one, names, strict=True)))

    # updates: a Bundle of PUTs against the same PUTs sent one at a time (rows replaced, version 2)
    updates = [
        {"resource": body, "request": {"method": "PUT", "url": f"{t}/{rid}"}}
        for t, rid, body in _updates(bundle, in_bundle, 3)
    ]
    await _post_bundle(client, {"resourceType": "Bundle", "type": "transaction", "entry": updates})
    for t, rid, body in _updates(bundle, one_by_one, 3):
        r = await client.put(f"/fhir/{t}/{rid}", json=body)
        assert r.status_code == 200, r.text[:2000]
    from_bundle = await _rows(pool, types, in_bundle, dict(zip(in_bundle, names, strict=True)))
    versions = [r[1] for r in from_bundle[current_table("Patient")]]
    assert versions == ["2"], "the Patient (entry 0 of every 3) was updated"
    assert from_bundle == await _rows(pool, types, one_by_one, dict(zip(one_by_one, names, strict=True)))

    for t in types:  # the log replayed gives the rows the Bundle's inline projection wrote
        await rebuild_type(pool, t, batch=50)
    assert await _rows(pool, types, in_bundle, dict(zip(in_bundle, names, strict=True))) == from_bundle


async def _state(pool: asyncpg.Pool, types: set[str]) -> tuple[int, dict[str, int]]:
    events = await pool.fetchval("SELECT count(*) FROM event_log")
    counts = {}
    for t in sorted(types):
        counts[current_table(t)] = await pool.fetchval(f"SELECT count(*) FROM {current_table(t)}")
        for kind in KINDS:
            counts[search_table(t, kind)] = await pool.fetchval(f"SELECT count(*) FROM {search_table(t, kind)}")
    return events, counts


async def test_a_bundle_refused_midway_leaves_the_log_and_the_projections_unchanged(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    bundle = _synthea()
    types = {e["resource"]["resourceType"] for e in bundle["entry"]} | {"Patient"}
    missing = str(uuid.uuid4())
    refusals = {
        # the last entry fails when its command runs, after every other entry's command ran
        412: {"request": {"method": "PUT", "url": f"Patient/{missing}", "ifMatch": 'W/"3"'}},
        # a reference to no entry: refused while the references are resolved
        400: {"request": {"method": "POST", "url": "Observation"}},
    }
    observation = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation")
    refusals[412]["resource"] = {"resourceType": "Patient", "id": missing, "active": True}
    refusals[400]["resource"] = {**observation, "subject": {"reference": f"urn:uuid:{missing}"}}
    for status, refused in refusals.items():
        before = await _state(pool, types)
        r = await client.post("/fhir", json={**bundle, "entry": [*bundle["entry"], refused]})
        assert r.status_code == status, r.text[:2000]
        assert f"Bundle.entry[{len(bundle['entry'])}]" in r.text, "the refusal names the entry"
        assert await _state(pool, types) == before
