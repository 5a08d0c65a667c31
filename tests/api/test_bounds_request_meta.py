"""Request metadata recorded on the log is bounded and clean (X-Request-Id, the client address from
X-Forwarded-For only behind a trusted proxy, the audit CLI printing stored values literally), and
requests a cross-site page could send or that name a foreign Host are refused."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from rich.console import Console

from app.api.app import create_app
from app.cli_events import audit
from app.settings import Settings
from tests.helpers import FHIR, new_id, patient


async def _event_row(pool: asyncpg.Pool, pid: str) -> asyncpg.Record:
    return await pool.fetchrow(
        "SELECT actor, client_addr, request_id FROM event_log WHERE resource_type = 'Patient' AND resource_id = $1",
        pid,
    )


async def test_a_request_id_of_128_printable_characters_is_recorded_as_sent(client, pool) -> None:
    pid = new_id()
    rid = "a-Z_0.9 " + "x" * 120
    r = await client.put(f"/fhir/Patient/{pid}", json=patient(pid), headers={**FHIR, "X-Request-Id": rid})
    assert r.status_code == 201, r.text
    assert (await _event_row(pool, pid))["request_id"] == rid


@pytest.mark.parametrize(
    ("value", "says"),
    [("r" * 129, "129 characters"), ("caf\u00e9", "outside printable ASCII"), ("a\x1bb", "control character")],
)
async def test_a_long_or_unprintable_request_id_is_400_and_writes_nothing(client, log_count, value, says) -> None:
    before = await log_count()
    headers = [(b"content-type", b"application/fhir+json"), (b"x-request-id", value.encode())]
    r = await client.post("/fhir/Patient", json=patient(), headers=headers)
    assert r.status_code == 400, r.text
    assert "X-Request-Id" in r.json()["issue"][0]["diagnostics"] and says in r.json()["issue"][0]["diagnostics"]
    assert await log_count() == before


async def test_x_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(client, pool) -> None:
    pid = new_id()
    await client.put(f"/fhir/Patient/{pid}", json=patient(pid), headers={**FHIR, "X-Forwarded-For": "203.0.113.9"})
    assert (await _event_row(pool, pid))["client_addr"] == "127.0.0.1"


@pytest.fixture(scope="module")
async def behind_proxy(settings: Settings, pool) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.model_copy(update={"trusted_proxies": "10.0.0.0/8, 127.0.0.1"}), pool)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        yield c


async def test_behind_a_trusted_proxy_the_nearest_untrusted_forwarded_address_is_the_client(behind_proxy, pool) -> None:
    pid = new_id()
    forwarded = "198.51.100.1, 203.0.113.9, 10.1.1.1"  # client-written, real client, inner proxy
    r = await behind_proxy.put(
        f"/fhir/Patient/{pid}", json=patient(pid), headers={**FHIR, "X-Forwarded-For": forwarded}
    )
    assert r.status_code == 201, r.text
    assert (await _event_row(pool, pid))["client_addr"] == "203.0.113.9"
    bad = await behind_proxy.post("/fhir/Patient", json=patient(), headers={**FHIR, "X-Forwarded-For": "[b]lue"})
    assert bad.status_code == 400 and "not an IP address" in bad.json()["issue"][0]["diagnostics"]


def test_a_bad_trusted_proxies_setting_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="not an IP address or CIDR"):
        Settings(trusted_proxies="10.0.0.0/8, proxy.example")


async def test_the_audit_cli_prints_stored_actor_and_request_id_literally(client, database_dsn: str) -> None:
    pid = new_id()
    actor = "[bold red]root[/bold red]"
    rid = "[link=http://evil.example]click[/link]"
    headers = {**FHIR, "X-Request-Id": rid, "Authorization": "Bearer x"}
    app_client = client
    r = await app_client.put(f"/fhir/Patient/{pid}", json=patient(pid), headers=headers)
    assert r.status_code == 201
    conn = await asyncpg.connect(database_dsn)
    try:  # an actor with markup, as a proxy header or a token could have named it
        await conn.execute("ALTER TABLE event_log DISABLE TRIGGER USER")
        await conn.execute("UPDATE event_log SET actor = $1 WHERE resource_id = $2", actor, pid)
        await conn.execute("ALTER TABLE event_log ENABLE TRIGGER USER")
    finally:
        await conn.close()
    out = io.StringIO()
    await audit(database_dsn, f"Patient/{pid}", Console(file=out, width=400, force_terminal=True))
    text = out.getvalue()
    assert actor in text and rid in text
    assert "\x1b]8;" not in text  # no terminal hyperlink was made from the stored value


@pytest.fixture(scope="module")
async def host_checked(settings: Settings, pool) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.model_copy(update={"allowed_hosts": "fhir.example.org, localhost:8080"}), pool)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fhir.example.org") as c:
        yield c


async def test_hosts_outside_allowed_hosts_are_400_and_listed_ones_served(host_checked) -> None:
    assert (await host_checked.get("/fhir/metadata")).status_code == 200
    assert (await host_checked.get("/fhir/metadata", headers={"Host": "fhir.example.org:443"})).status_code == 200
    assert (await host_checked.get("/fhir/metadata", headers={"Host": "localhost:8080"})).status_code == 200
    for host in ("evil.example", "localhost:9999"):
        r = await host_checked.get("/fhir/Patient", headers={"Host": host})
        assert r.status_code == 400, host
        issue = r.json()["issue"][0]
        assert host in issue["diagnostics"] and "FHIRLEDGER_ALLOWED_HOSTS" in issue["diagnostics"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/fhir/Patient"), ("PUT", "/fhir/Patient/x1"), ("PATCH", "/fhir/Patient/x1"), ("POST", "/fhir")]
    + [("POST", "/fhir/Binary"), ("DELETE", "/fhir/Patient/x1")],
)
@pytest.mark.parametrize(
    "ctype", ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/plain"]
)
async def test_state_changing_requests_with_cross_site_form_types_are_415(client, log_count, method, path, ctype):
    before = await log_count()
    body = b'{"resourceType":"Patient","id":"x1"}'
    r = await client.request(method, path, content=body, headers={"Content-Type": ctype})
    assert r.status_code == 415, r.text
    issue = r.json()["issue"][0]
    assert issue["code"] == "not-supported" and "cross-site" in issue["diagnostics"]
    assert await log_count() == before


async def test_post_search_still_takes_a_form_body(client) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert (await client.post("/fhir/Patient/_search", content=b"family=Doe", headers=form)).status_code == 200
    assert (await client.post("/fhir/_search", content=b"_type=Patient", headers=form)).status_code == 200
