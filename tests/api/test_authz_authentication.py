"""Authentication over HTTP with authorization on: which requests need a token, the 401 answers
(``WWW-Authenticate`` challenge, OperationOutcome code ``login``), and that they write nothing."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.api.authz_helpers import AUTHORIZE_ENDPOINT, EC_KEY, RSA_KEY, TOKEN_ENDPOINT, assert_refused, bearer_for
from tests.auth.keys import AUDIENCE, ISSUER, SigningKey, claims, unsigned_token
from tests.helpers import patient

FORGER = SigningKey("rsa-1")  # same kid as the real key, another private key


def _bad_tokens() -> dict[str, str]:
    now = int(time.time())
    good = claims(scope="user/*.cruds")
    return {
        "expired": RSA_KEY.sign({**good, "iat": now - 900, "nbf": now - 900, "exp": now - 300}),
        "forged": FORGER.sign(good),
        "alg none": unsigned_token({"alg": "none", "typ": "JWT", "kid": "rsa-1"}, good),
        "HS256 with the public key": unsigned_token({"alg": "HS256", "kid": "rsa-1"}, good, RSA_KEY.public_pem),
        "wrong issuer": RSA_KEY.sign({**good, "iss": "https://evil.example.org"}),
        "wrong audience": EC_KEY.sign({**good, "aud": "https://other.example.org/fhir"}),
        "not a JWT": "abc.def",
    }


@pytest.mark.parametrize("case", sorted(_bad_tokens()))
async def test_invalid_token_is_401_and_writes_nothing(auth_client: httpx.AsyncClient, log_count, case: str) -> None:
    token = _bad_tokens()[case]
    before = await log_count()
    r = await auth_client.post("/fhir/Patient", json=patient(), headers={"Authorization": f"Bearer {token}"})
    assert_refused(r, 401, "login", "Invalid bearer token")
    challenge = r.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="fhirledger"') and 'error="invalid_token"' in challenge
    assert await log_count() == before


async def test_no_token_is_401_with_challenge(auth_client: httpx.AsyncClient, log_count) -> None:
    before = await log_count()
    for method, url in (("GET", "/fhir/Patient"), ("POST", "/fhir/Patient"), ("GET", "/fhir?_type=Patient")):
        r = await auth_client.request(method, url, json=patient() if method == "POST" else None)
        assert_refused(r, 401, "login", "Authorization: Bearer")
        assert r.headers["WWW-Authenticate"] == 'Bearer realm="fhirledger"'
    r = await auth_client.get("/fhir/Patient", headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert_refused(r, 401, "login")
    assert await log_count() == before


async def test_valid_rsa_and_ec_tokens_are_accepted(auth_client: httpx.AsyncClient) -> None:
    for key in (RSA_KEY, EC_KEY):
        r = await auth_client.get("/fhir/Patient", headers=bearer_for("user/Patient.rs", key))
        assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    "path", ["/fhir/metadata", "/fhir/.well-known/smart-configuration", "/", "/fhir", "/fhir/", "/healthz"]
)
async def test_public_endpoints_need_no_token(auth_client: httpx.AsyncClient, path: str) -> None:
    r = await auth_client.get(path)
    assert r.status_code == 200, (path, r.text)


async def test_capability_statement_describes_smart_security(auth_client: httpx.AsyncClient) -> None:
    security = (await auth_client.get("/fhir/metadata")).json()["rest"][0]["security"]
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    (oauth,) = security["extension"]
    uris = {e["url"]: e["valueUri"] for e in oauth["extension"]}
    assert uris == {"token": TOKEN_ENDPOINT, "authorize": AUTHORIZE_ENDPOINT}


async def test_smart_configuration(auth_client: httpx.AsyncClient) -> None:
    r = await auth_client.get("/fhir/.well-known/smart-configuration")
    assert r.headers["content-type"].startswith("application/json")
    doc = r.json()
    assert doc["issuer"] == ISSUER
    assert (doc["token_endpoint"], doc["authorization_endpoint"]) == (TOKEN_ENDPOINT, AUTHORIZE_ENDPOINT)
    assert {"permission-v2", "permission-v1", "context-standalone-patient"} <= set(doc["capabilities"])
    assert "S256" in doc["code_challenge_methods_supported"]
    assert AUDIENCE  # the audience is not published; tokens name it


async def test_smart_configuration_when_authorization_is_off(client: httpx.AsyncClient) -> None:
    r = await client.get("/fhir/.well-known/smart-configuration")
    assert_refused(r, 404, "not-found", "Authorization is off")
    assert "security" not in (await client.get("/fhir/metadata")).json()["rest"][0]
