"""An app with authorization on (real RS256 and ES256 keys, the JWKS in a file), and bearer tokens
for it; imported by the tests/api/test_authz_*.py modules."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from app.api.app import create_app
from app.settings import Settings
from tests.auth.keys import AUDIENCE, ISSUER, SigningKey, claims, jwks

RSA_KEY = SigningKey("rsa-1")
EC_KEY = SigningKey("ec-1", "EC")
ADMIN = "system/*.*"
TOKEN_ENDPOINT = "https://auth.example.org/token"
AUTHORIZE_ENDPOINT = "https://auth.example.org/authorize"

Bearer = Callable[..., dict[str, str]]


def bearer_for(scope: str | None, key: SigningKey = RSA_KEY, **overrides: Any) -> dict[str, str]:
    """``Authorization`` header of a token signed by ``key`` with ``scope`` (and other claims)."""
    return {"Authorization": f"Bearer {key.sign(claims(scope=scope, **overrides))}"}


@pytest.fixture(scope="session")
def auth_settings(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    path: Path = tmp_path_factory.mktemp("jwks") / "jwks.json"
    path.write_bytes(orjson.dumps(jwks(RSA_KEY, EC_KEY)))
    return settings.model_copy(
        update={
            "auth_issuer": ISSUER,
            "auth_audience": AUDIENCE,
            "auth_jwks": str(path),
            "auth_token_endpoint": TOKEN_ENDPOINT,
            "auth_authorization_endpoint": AUTHORIZE_ENDPOINT,
            "auth_admin_scope": ADMIN,
        }
    )


@pytest.fixture(scope="session")
async def auth_client(auth_settings: Settings, pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(auth_settings, pool)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        yield c


@pytest.fixture
def bearer() -> Bearer:
    return bearer_for


async def seed(pool: asyncpg.Pool, client: httpx.AsyncClient, resource: dict) -> dict:
    """Write ``resource`` with an all-powerful token; returns it as stored."""
    kind, rid = resource["resourceType"], resource.get("id")
    headers = bearer_for("system/*.cruds")
    if rid:
        r = await client.put(f"/fhir/{kind}/{rid}", json=resource, headers=headers)
    else:
        r = await client.post(f"/fhir/{kind}", json=resource, headers=headers)
    assert r.status_code in (200, 201), r.text
    return r.json()


def assert_refused(r: httpx.Response, status: int, code: str, *texts: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["resourceType"] == "OperationOutcome"
    issue = body["issue"][0]
    assert issue["code"] == code, body
    for text in texts:
        assert text in issue["diagnostics"], (text, issue["diagnostics"])
