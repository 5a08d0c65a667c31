"""Every interaction with a token whose scopes allow it (answered) and one whose scopes do not
(403 ``forbidden`` naming the scope that would allow it, nothing written)."""

from __future__ import annotations

import asyncpg
import httpx
import orjson
import pytest

from tests.api.authz_helpers import assert_refused, bearer_for, seed
from tests.helpers import new_id, patient

JSON_PATCH = {"Content-Type": "application/json-patch+json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
REPLACE = orjson.dumps([{"op": "replace", "path": "/name/0/family", "value": "P"}])


def _ident(pid: str) -> dict:
    return patient(pid, identifier=[{"system": "urn:authz", "value": pid}])


def _request(name: str, pid: str) -> tuple[str, str, dict]:
    """(method, url, httpx keyword arguments) of a case, for Patient ``pid``."""
    criteria = f"identifier=urn:authz|{pid}"
    return {
        "create": ("POST", "/fhir/Patient", {"json": patient()}),
        "read": ("GET", f"/fhir/Patient/{pid}", {}),
        "vread": ("GET", f"/fhir/Patient/{pid}/_history/1", {}),
        "history-instance": ("GET", f"/fhir/Patient/{pid}/_history", {}),
        "history-type": ("GET", "/fhir/Patient/_history?_count=1", {}),
        "history-system": ("GET", "/fhir/_history?_count=1", {}),
        "search-type": ("GET", f"/fhir/Patient?_id={pid}", {}),
        "search-type POST": ("POST", "/fhir/Patient/_search", {"content": f"_id={pid}", "headers": FORM}),
        "search-system _type": ("GET", f"/fhir?_type=Patient&_id={pid}", {}),
        "search-system all types": ("GET", f"/fhir?_id={pid}", {}),
        "update": ("PUT", f"/fhir/Patient/{pid}", {"json": patient(pid, family="U")}),
        "patch": ("PATCH", f"/fhir/Patient/{pid}", {"content": REPLACE, "headers": JSON_PATCH}),
        "delete": ("DELETE", f"/fhir/Patient/{pid}", {}),
        "conditional create": ("POST", "/fhir/Patient", {"json": patient(), "headers": {"If-None-Exist": criteria}}),
        "conditional update": ("PUT", f"/fhir/Patient?{criteria}", {"json": _ident(pid)}),
        "conditional delete": ("DELETE", f"/fhir/Patient?{criteria}", {}),
    }[name.removesuffix(" v1")]


CASES: dict[str, tuple[str, str, str]] = {
    # name: (an allowing scope, a refused scope, the scope the refusal names)
    "create": ("user/Patient.c", "user/Patient.rs", "user/Patient.c"),
    "create v1": ("user/Patient.write", "user/Patient.read", "user/Patient.c"),
    "read": ("user/Patient.r", "user/Patient.s", "user/Patient.r"),
    "read v1": ("patient/*.read", "user/Observation.read", "patient/Patient.r"),
    "vread": ("user/Patient.r", "user/Patient.cud", "user/Patient.r"),
    "history-instance": ("user/Patient.r", "user/Patient.s", "user/Patient.r"),
    "history-type": ("user/Patient.r", "user/Observation.r", "user/Patient.r"),
    "history-system": ("user/*.r", "user/Patient.s", "user/*.r"),  # user/Patient.r: Patient entries only
    "search-type": ("user/Patient.s", "user/Patient.r", "user/Patient.s"),
    "search-type POST": ("user/Patient.s", "user/Patient.r", "user/Patient.s"),
    "search-system _type": ("user/Patient.s", "user/Observation.s", "user/Patient.s"),
    "search-system all types": ("user/*.s", "user/Patient.r", "user/*.s"),  # user/Patient.s: Patients only
    "update": ("user/Patient.u", "user/Patient.c", "user/Patient.u"),
    "patch": ("user/Patient.u", "user/Patient.r", "user/Patient.u"),
    "delete": ("user/Patient.d", "user/Patient.cru", "user/Patient.d"),
    "delete v1": ("system/Patient.write", "system/Patient.read", "system/Patient.d"),
    "conditional create": ("user/Patient.cs", "user/Patient.c", "user/Patient.cs"),
    "conditional update": ("user/Patient.us", "user/Patient.u", "user/Patient.us"),
    "conditional delete": ("user/Patient.ds", "user/Patient.d", "user/Patient.ds"),
}


async def _call(client: httpx.AsyncClient, name: str, scope: str, pid: str) -> httpx.Response:
    method, url, kwargs = _request(name, pid)
    headers = {**bearer_for(scope, patient=pid), **kwargs.pop("headers", {})}
    return await client.request(method, url, headers=headers, **kwargs)


@pytest.mark.parametrize("name", list(CASES))
async def test_allowed_scope(auth_client: httpx.AsyncClient, pool: asyncpg.Pool, name: str) -> None:
    allowed, _, _ = CASES[name]
    pid = new_id("az")
    await seed(pool, auth_client, _ident(pid))
    r = await _call(auth_client, name, allowed, pid)
    assert r.status_code in (200, 201, 204), (name, r.text)


@pytest.mark.parametrize("name", list(CASES))
async def test_refused_scope_is_403_and_writes_nothing(
    auth_client: httpx.AsyncClient, pool: asyncpg.Pool, log_count, name: str
) -> None:
    _, refused, named = CASES[name]
    pid = new_id("az")
    await seed(pool, auth_client, _ident(pid))
    before = await log_count()
    r = await _call(auth_client, name, refused, pid)
    assert_refused(r, 403, "forbidden", "do not allow", named)
    assert 'error="insufficient_scope"' in r.headers["WWW-Authenticate"]
    assert await log_count() == before


async def test_token_without_resource_scopes_reads_nothing(auth_client: httpx.AsyncClient) -> None:
    r = await auth_client.get("/fhir/Patient", headers=bearer_for("openid fhirUser"))
    assert_refused(r, 403, "forbidden", "user/Patient.s")


async def test_patient_scopes_without_patient_claim_do_not_count(auth_client: httpx.AsyncClient) -> None:
    r = await auth_client.get("/fhir/Observation", headers=bearer_for("patient/*.rs"))
    assert_refused(r, 403, "forbidden", "no patient claim")
