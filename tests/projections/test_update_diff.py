"""An update rewrites only the search rows of the parameters whose rows changed
(app/projections/one_statement.py, app/projections/row_diff.py): the other rows stay physically
where they were (same ctid and xmin), the changed parameters' rows are replaced, and after any
series of updates the rows (and so what searches find) are those a rebuild from the log gives.
A refused update writes nothing."""

from __future__ import annotations

from collections import Counter

import asyncpg
import httpx
import orjson
from hypothesis import given
from hypothesis import strategies as st

from app.commands.update import decide_update
from app.events.model import RequestContext
from app.fhirtime import now_millis
from app.projections import custom_params
from app.projections.current_state import Head, current_table
from app.projections.one_statement import append_and_project
from app.projections.rebuild import rebuild_type
from app.projections.row_diff import changes
from app.projections.search_index import COLUMNS, KINDS, rows_of, search_table
from tests.helpers import new_id

Snapshot = dict[tuple[str, str], list[tuple[str, str, str]]]
"""(kind, param) -> the rows' (ctid, xmin, values) sorted."""


def _patient(pid: str, phone: str = "(03) 5555 6473", **extra: object) -> dict:
    return {
        "resourceType": "Patient",
        "id": pid,
        "identifier": [{"system": "http://hospital.example/mrn", "value": pid}],
        "active": True,
        "name": [{"use": "official", "family": "Chalmers", "given": ["Peter", "James"]}],
        "telecom": [{"system": "phone", "value": phone, "use": "work"}],
        "gender": "male",
        "birthDate": "1974-12-25",
        "address": [{"use": "home", "line": ["534 Erewhon St"], "city": "PleasantVille", "postalCode": "3999"}],
        **extra,
    }


async def _snapshot(pool: asyncpg.Pool, resource_type: str, rid: str) -> Snapshot:
    """Every search row of one resource with its physical place and the transaction that wrote it."""
    out: Snapshot = {}
    for kind in KINDS:
        values = ", ".join(["s.param", *(f"s.{c}" for c, _ in COLUMNS[kind])])  # not the key
        sql = (
            f"SELECT s.ctid::text AS ctid, s.xmin::text AS xmin, s.param, ROW({values})::text AS row"
            f" FROM {search_table(resource_type, kind)} s JOIN {current_table(resource_type)} c ON c.key = s.key"
            " WHERE c.id = $1"
        )
        for r in await pool.fetch(sql, rid):
            out.setdefault((kind, r["param"]), []).append((r["ctid"], r["xmin"], r["row"]))
    return {k: sorted(v) for k, v in out.items()}


async def _put(client: httpx.AsyncClient, body: dict, **headers: str) -> httpx.Response:
    return await client.put(f"/fhir/{body['resourceType']}/{body['id']}", json=body, headers=headers)


async def test_an_update_changing_a_phone_number_rewrites_only_its_parameters_rows(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    pid = new_id()
    assert (await _put(client, _patient(pid))).status_code == 201
    before = await _snapshot(pool, "Patient", pid)
    assert (await _put(client, _patient(pid, "(03) 5555 0001"))).status_code == 200
    after = await _snapshot(pool, "Patient", pid)
    replaced = {("token", "phone"), ("token", "telecom"), ("text", "_content")}
    assert after.keys() == before.keys()
    for key, rows in before.items():
        if key in replaced:
            assert not {(c, x) for c, x, _ in rows} & {(c, x) for c, x, _ in after[key]}, key
        else:
            assert after[key] == rows, f"{key} rewritten"
    assert ("token", "identifier") in before and ("string", "name") in before and ("sort", "birthdate") in before
    found = (await client.get("/fhir/Patient?phone=(03) 5555 0001&_count=100")).json()
    assert pid in {e["resource"]["id"] for e in found.get("entry", [])}
    old = (await client.get(f"/fhir/Patient?_id={pid}&phone=(03) 5555 6473")).json()
    assert old.get("entry", []) == []


async def test_a_name_moved_from_given_to_family_keeps_the_name_rows(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    pid = new_id()
    assert (await _put(client, _patient(pid))).status_code == 201
    before = await _snapshot(pool, "Patient", pid)
    moved = _patient(pid, name=[{"use": "official", "family": "James", "given": ["Peter", "Chalmers"]}])
    assert (await _put(client, moved)).status_code == 200
    after = await _snapshot(pool, "Patient", pid)
    assert after[("string", "name")] == before[("string", "name")], "the same values in another order"
    assert ("string", "phonetic") not in after, "phonetic is answered from name's rows"
    for param in ("family", "given"):
        assert after[("string", param)] != before[("string", param)]
    assert after[("token", "identifier")] == before[("token", "identifier")]
    family = (await client.get(f"/fhir/Patient?_id={pid}&family:exact=James")).json()
    assert [e["resource"]["id"] for e in family.get("entry", [])] == [pid]


async def test_a_refused_update_changes_no_row(client: httpx.AsyncClient, pool: asyncpg.Pool, log_count) -> None:
    pid = new_id()
    assert (await _put(client, _patient(pid))).status_code == 201
    assert (await _put(client, _patient(pid, "1"))).status_code == 200
    before, events = await _snapshot(pool, "Patient", pid), await log_count()
    refused = await _put(client, _patient(pid, "2"), **{"If-Match": 'W/"1"'})
    assert refused.status_code == 412
    invalid = await _put(client, _patient(pid, "3", birthDate="not a date"))
    assert invalid.status_code == 422
    # decided on a stale head (version 1), with version 1's bytes as the previous ones: nothing appended
    v1 = orjson.dumps((await client.get(f"/fhir/Patient/{pid}/_history/1")).json())
    stale = Head(1, False, now_millis(), v1)
    event = decide_update(stale, "Patient", pid, _patient(pid, "4"), None, now_millis(), RequestContext("PUT", "x"))
    async with pool.acquire() as conn:
        await custom_params.sync(conn)
        assert await append_and_project(conn, event, v1) is None
    assert await _snapshot(pool, "Patient", pid) == before
    assert await log_count() == events


def _practitioner(rid: str, **fields: object) -> dict:
    return {"resourceType": "Practitioner", "id": rid, **fields}


PHONE, EMAIL = {"system": "phone", "value": "555-1"}, {"system": "email", "value": "a@example.org"}
SERIES = [
    {"name": [{"family": "Alpha", "given": ["Beth"]}], "telecom": [PHONE], "gender": "female"},
    # a value added, one duplicated
    {"name": [{"family": "Alpha", "given": ["Beth", "Cara"]}], "telecom": [PHONE, PHONE, EMAIL], "gender": "female"},
    # the duplicate removed, the order changed
    {"name": [{"family": "Alpha", "given": ["Cara", "Beth"]}], "telecom": [EMAIL, PHONE], "gender": "female"},
    # a value moved between parameters (given -> family; the phone number becomes an email address)
    {"name": [{"family": "Cara", "given": ["Beth"]}], "telecom": [{**PHONE, "system": "email"}], "gender": "female"},
    # values removed, a parameter gone, another one new
    {"name": [{"family": "Cara"}], "active": True, "qualification": [{"code": {"text": "MD"}}]},
    {"name": [{"family": "Cara"}], "active": False, "identifier": [{"system": "urn:x", "value": "1"}] * 2},
]
QUERIES = [
    "family=Alpha",
    "family=Cara",
    "given=Beth",
    "given=Cara",
    "name=Cara",
    "phone=555-1",
    "email=555-1",
    "email=a@example.org",
    "telecom=555-1",
    "gender=female",
    "active=false",
    "identifier=urn:x|1",
    "_content=MD",
]


async def _found(client: httpx.AsyncClient, ids: list[str]) -> dict[str, list[str]]:
    out = {}
    for query in QUERIES:
        page = (await client.get(f"/fhir/Practitioner?{query}&_id={','.join(ids)}&_count=100")).json()
        out[query] = sorted(e["resource"]["id"] for e in page.get("entry", []))
    return out


async def _rows(pool: asyncpg.Pool, ids: list[str]) -> dict[str, list[str]]:
    """Each resource's search rows (their values, not where they are)."""
    out = {}
    for rid in ids:
        snapshot = await _snapshot(pool, "Practitioner", rid)
        out[rid] = sorted(f"{kind}:{row}" for (kind, _), rows in snapshot.items() for _, _, row in rows)
    return out


async def test_after_a_series_of_updates_the_rows_are_those_a_rebuild_gives(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    ids = [new_id() for _ in SERIES]
    for i, rid in enumerate(ids):  # each resource stops at another step of the series
        for fields in SERIES[: i + 1]:
            assert (await _put(client, _practitioner(rid, **fields))).status_code in (200, 201)
    found, rows = await _found(client, ids), await _rows(pool, ids)
    assert found["family=Cara"] == sorted(ids[3:]) and found["email=555-1"] == [ids[3]]
    assert found["phone=555-1"] == sorted(ids[:3]) and found["identifier=urn:x|1"] == [ids[5]]
    await rebuild_type(pool, "Practitioner")
    assert await _rows(pool, ids) == rows
    assert await _found(client, ids) == found


def test_a_parameter_changes_when_its_multiset_of_rows_does() -> None:
    a = rows_of(_practitioner("x", **SERIES[1]))
    b = rows_of(_practitioner("x", **SERIES[2]))
    assert a["token"] != b["token"] and a["string"] != b["string"], "the same values in another order"
    assert set(changes(a, b)) == {"text"}, "only the resource's text (its words in another order) changed"
    assert changes(a, a) == {}
    old = {"token": [("p", None, "1", None), ("q", None, "1", None), ("q", None, "2", None)]}
    twice = {"token": [("q", None, "2", None), ("p", None, "1", None), ("q", None, "1", None), ("p", None, "1", None)]}
    assert changes(old, twice) == {"token": (["p"], [("p", None, "1", None)] * 2)}, "a row repeated changes p only"
    moved = {"token": [("p", None, "1", None), ("p", None, "2", None)]}
    change = changes(old, moved)["token"]
    assert (sorted(change.params), change.rows) == (["p", "q"], moved["token"])
    assert changes(old, {})["token"] == (["p", "q"], [])


_ROWS = st.lists(st.tuples(st.sampled_from("abc"), st.sampled_from([None, "1", "2"])), max_size=6)


@given(_ROWS, _ROWS)
def test_the_rows_kept_and_the_rows_inserted_are_the_new_rows(old: list[tuple], new: list[tuple]) -> None:
    change = changes({"token": old}, {"token": new}).get("token")
    params, inserted = change if change is not None else ([], [])
    kept = [row for row in old if row[0] not in params]
    assert Counter(kept + inserted) == Counter(new)
    for param in params:  # and no parameter is replaced whose rows stay the same
        assert Counter(r for r in old if r[0] == param) != Counter(r for r in new if r[0] == param)
