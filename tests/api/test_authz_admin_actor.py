"""The operator surface needs the admin scope; with authorization on, events record the verified
actor, its client and its scopes' kind, which history and ``fhirledger audit`` filter by."""

from __future__ import annotations

import io

import httpx
import pytest
from rich.console import Console

from app.cli_events import audit
from tests.api.authz_helpers import ADMIN, assert_refused, bearer_for
from tests.auth.keys import SigningKey, unsigned_token
from tests.helpers import new_id, patient

SEARCH_PARAMETER = {
    "resourceType": "SearchParameter",
    "url": "http://example.org/sp/authz-nickname",
    "name": "nickname",
    "status": "active",
    "description": "nickname",
    "code": "nickname",
    "base": ["Patient"],
    "type": "string",
    "expression": "Patient.name.given",
}

ADMIN_REQUESTS = [
    ("POST", "/fhir/$reindex", "$reindex"),
    ("POST", "/fhir/Patient/$reindex", "$reindex"),
    ("GET", "/fhir/$reindex-status/1", "$reindex-status"),
    ("GET", "/fhir/_events", "change feed"),
    ("GET", "/fhir/_history?actor=alice", "audit query"),
    ("GET", "/fhir/Patient/_history?client=app-7", "audit query"),
    ("POST", "/fhir/SearchParameter", "Writing SearchParameter"),
]


@pytest.mark.parametrize(("method", "url", "what"), ADMIN_REQUESTS)
async def test_operator_surface_needs_the_admin_scope(
    auth_client: httpx.AsyncClient, log_count, method: str, url: str, what: str
) -> None:
    before = await log_count()
    body = SEARCH_PARAMETER if "SearchParameter" in url else None
    r = await auth_client.request(method, url, json=body, headers=bearer_for("user/*.cruds"))
    assert_refused(r, 403, "forbidden", what, ADMIN)
    assert await log_count() == before
    r = await auth_client.request(method, url, json=body, headers=bearer_for(ADMIN))
    assert r.status_code in (200, 201, 202, 404), r.text  # 404: no job 1
    assert r.status_code != 404 or "No job" in r.text


async def test_events_record_the_verified_actor_client_and_scope_kind(auth_client: httpx.AsyncClient, pool) -> None:
    pid = new_id("actor")
    token = bearer_for("system/Patient.cu", sub="svc-9", client_id="etl-client")
    await auth_client.put(f"/fhir/Patient/{pid}", json=patient(pid), headers={**token, "X-User": "mallory"})
    await auth_client.put(
        f"/fhir/Patient/{pid}", json=patient(pid, "B"), headers=bearer_for("user/*.u", client_id=None, azp="web")
    )
    no_sub = bearer_for("system/*.u", sub=None, client_id="robot")
    await auth_client.put(f"/fhir/Patient/{pid}", json=patient(pid, "C"), headers=no_sub)
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": patient(pid, "D"), "request": {"method": "PUT", "url": f"Patient/{pid}"}}],
    }
    await auth_client.post("/fhir", json=bundle, headers=bearer_for("patient/Patient.u", patient=pid, sub="pat-1"))
    rows = await pool.fetch(
        "SELECT actor, client_id, scope_kind FROM event_log WHERE resource_id = $1 ORDER BY version", pid
    )
    assert [tuple(r) for r in rows] == [
        ("svc-9", "etl-client", "system"),
        ("user-42", "web", "user"),
        ("client:robot", "robot", "system"),
        ("pat-1", "app-7", "patient"),
    ]
    admin = bearer_for(ADMIN)
    by_client = (await auth_client.get(f"/fhir/Patient/{pid}/_history?client=web", headers=admin)).json()
    assert [e["response"]["etag"] for e in by_client["entry"]] == ['W/"2"']
    by_actor = (await auth_client.get(f"/fhir/Patient/{pid}/_history?actor=svc-9", headers=admin)).json()
    assert [e["response"]["etag"] for e in by_actor["entry"]] == ['W/"1"']


async def test_audit_cli_filters_by_client_and_actor(auth_client: httpx.AsyncClient, database_dsn: str) -> None:
    client_id = new_id("cli")
    pid = new_id("audit")
    token = bearer_for("user/Patient.cu", sub="[bold]nurse[/bold]", client_id=client_id)
    await auth_client.put(f"/fhir/Patient/{pid}", json=patient(pid), headers=token)
    await auth_client.put(f"/fhir/Patient/{pid}", json=patient(pid, "B"), headers=token)
    out = io.StringIO()
    assert await audit(database_dsn, None, Console(file=out, width=400), client=client_id) == 2
    text = out.getvalue()
    assert "[bold]nurse[/bold]" in text and client_id in text and "user" in text  # stored values printed literally
    out = io.StringIO()
    assert await audit(database_dsn, f"Patient/{pid}", Console(file=out, width=400), actor="nobody") == 0
    assert "No events for" in out.getvalue()


async def test_unverified_tokens_never_name_the_actor(auth_client: httpx.AsyncClient, log_count) -> None:
    """The old path decoded any JWT's sub; now an unsigned or foreign-signed token is refused outright."""
    before = await log_count()
    for token in (
        unsigned_token({"alg": "none"}, {"sub": "admin", "scope": "system/*.*"}),
        SigningKey("rsa-1").sign({"sub": "admin", "scope": "system/*.*", "iss": "x", "aud": "y", "exp": 2**31}),
    ):
        r = await auth_client.post("/fhir/Patient", json=patient(), headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401
    assert await log_count() == before
