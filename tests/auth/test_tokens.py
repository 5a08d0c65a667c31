"""Bearer JWT validation with real RS256/ES256 keys and a JWKS served over HTTP or read from a file."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson
import pytest

from app.auth.jwks import JwksSource
from app.auth.principal import Authenticator
from app.auth.tokens import TokenVerifier
from app.errors import FhirError
from tests.auth.keys import AUDIENCE, ISSUER, JwksServer, SigningKey, claims, jwks, unsigned_token

RSA_KEY = SigningKey("rsa-1")
EC_KEY = SigningKey("ec-1", "EC")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def authenticator(location: str, clock: Clock | None = None, timeout: float = 5.0) -> Authenticator:
    source = JwksSource(location, timeout_seconds=timeout, clock=clock or time.monotonic)
    return Authenticator(TokenVerifier(ISSUER, AUDIENCE, source))


@pytest.fixture
def server():
    with JwksServer(jwks(RSA_KEY, EC_KEY)) as running:
        yield running


async def refused(auth: Authenticator, token: str) -> FhirError:
    with pytest.raises(FhirError) as caught:
        await auth.authenticate(f"Bearer {token}")
    return caught.value


@pytest.mark.parametrize("key", [RSA_KEY, EC_KEY], ids=["RS256", "ES256"])
async def test_valid_token_from_served_jwks(server, key):
    principal = await authenticator(server.url).authenticate(f"Bearer {key.sign(claims(scope='user/*.rs'))}")
    assert (principal.sub, principal.client_id, principal.kind) == ("user-42", "app-7", "user")
    assert principal.allows("Observation", "read").allowed
    assert not principal.allows("Observation", "create").allowed


async def test_valid_token_from_jwks_file(tmp_path: Path):
    path = tmp_path / "jwks.json"
    path.write_bytes(orjson.dumps(jwks(RSA_KEY, EC_KEY)))
    principal = await authenticator(str(path)).authenticate(
        f"bearer {EC_KEY.sign(claims(azp='app-9', client_id=None))}"
    )
    assert principal.client_id == "app-9"


async def test_keys_fetched_once_for_many_tokens(server):
    auth = authenticator(server.url)
    for _ in range(5):
        await auth.authenticate(f"Bearer {RSA_KEY.sign(claims())}")
    await asyncio.gather(*(auth.authenticate(f"Bearer {EC_KEY.sign(claims())}") for _ in range(5)))
    assert server.hits == 1


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"exp": -120}, "expired"),  # seconds from now
        ({"nbf": 120}, "not valid yet"),
        ({"iss": "https://evil.example.org"}, f"issuer (iss) is not {ISSUER}"),
        ({"aud": "https://other.example.org/fhir"}, f"audience (aud) does not include {AUDIENCE}"),
        ({"exp": None}, "no exp claim"),
        ({"aud": None}, "no aud claim"),
    ],
    ids=["expired", "not-yet-valid", "wrong-issuer", "wrong-audience", "no-exp", "no-aud"],
)
async def test_claims_checked(server, overrides, reason):
    now = int(time.time())
    overrides = {k: now + v if k in ("exp", "nbf") and v is not None else v for k, v in overrides.items()}
    error = await refused(authenticator(server.url), RSA_KEY.sign(claims(**overrides)))
    assert error.status == 401 and error.code == "login"
    assert reason in error.diagnostics
    challenge = error.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="fhirledger", error="invalid_token", error_description="')
    assert reason in challenge


async def test_leeway_of_sixty_seconds(server):
    now = int(time.time())
    token = RSA_KEY.sign(claims(exp=now - 30, nbf=now + 30, iat=now))
    assert (await authenticator(server.url).authenticate(f"Bearer {token}")).sub == "user-42"


async def test_forged_signature_refused(server):
    impostor = SigningKey(RSA_KEY.kid)  # same kid, different private key
    error = await refused(authenticator(server.url), impostor.sign(claims()))
    assert "signature does not verify" in error.diagnostics


async def test_tampered_payload_refused(server):
    head, _, signature = RSA_KEY.sign(claims(scope="patient/*.rs")).split(".")
    payload = unsigned_token({}, claims(scope="system/*.cruds")).split(".")[1]
    error = await refused(authenticator(server.url), f"{head}.{payload}.{signature}")
    assert "signature does not verify" in error.diagnostics


async def test_alg_none_refused(server):
    token = unsigned_token({"alg": "none", "typ": "JWT", "kid": RSA_KEY.kid}, claims())
    error = await refused(authenticator(server.url), token)
    assert "algorithm 'none' is not accepted" in error.diagnostics
    assert server.hits == 0  # refused before any key is looked at


async def test_hs256_signed_with_public_key_refused(server):
    token = unsigned_token({"alg": "HS256", "typ": "JWT", "kid": RSA_KEY.kid}, claims(), secret=RSA_KEY.public_pem)
    error = await refused(authenticator(server.url), token)
    assert "algorithm 'HS256' is not accepted" in error.diagnostics


async def test_alg_not_matching_key_type_refused(server):
    # an ES256 header pointing at the RSA key: the key decides the algorithm, not the token
    token = EC_KEY.sign(claims(), headers={"kid": RSA_KEY.kid})
    error = await refused(authenticator(server.url), token)
    assert "alg ES256" in error.diagnostics and "RS256 key" in error.diagnostics


async def test_unknown_kid_refused(server):
    error = await refused(authenticator(server.url), SigningKey("nobody").sign(claims()))
    assert "kid='nobody' is not in the issuer's key set" in error.diagnostics


async def test_key_rotation_picked_up_and_refetch_rate_limited(server):
    clock = Clock()
    auth = authenticator(server.url, clock)
    await auth.authenticate(f"Bearer {RSA_KEY.sign(claims())}")
    assert server.hits == 1
    rotated = SigningKey("rsa-2")
    server.document = jwks(RSA_KEY, EC_KEY, rotated)
    clock.now += 61
    assert (await auth.authenticate(f"Bearer {rotated.sign(claims())}")).sub == "user-42"
    assert server.hits == 2
    # unknown kids within the next minute: no fetch, refused
    for n in range(5):
        await refused(auth, SigningKey(f"bogus-{n}").sign(claims()))
    assert server.hits == 2
    newer = SigningKey("rsa-3")
    server.document = jwks(rotated, newer)
    await refused(auth, newer.sign(claims()))  # too soon after the last fetch
    clock.now += 60
    assert (await auth.authenticate(f"Bearer {newer.sign(claims())}")).sub == "user-42"
    assert server.hits == 3
    await auth.authenticate(f"Bearer {rotated.sign(claims())}")  # still cached: no fetch
    assert server.hits == 3
    error = await refused(auth, RSA_KEY.sign(claims()))  # rsa-1 left the served set: revoked
    assert "kid='rsa-1' is not in the issuer's key set" in error.diagnostics


async def test_fetch_does_not_block_event_loop(server):
    server.delay = 0.3
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    await authenticator(server.url).authenticate(f"Bearer {RSA_KEY.sign(claims())}")
    task.cancel()
    assert ticks >= 10


async def test_unreachable_jwks_answers_503(server):
    server.delay = 1.0
    error = await refused(authenticator(server.url, timeout=0.2), RSA_KEY.sign(claims()))
    assert error.status == 503 and error.code == "transient"
    assert server.url in error.diagnostics


@pytest.mark.parametrize(
    ("header", "has_error_code"),
    [(None, False), ("", False), ("Basic dXNlcjpwYXNz", False), ("Bearer", True), ("Bearer not-a-jwt", True)],
)
async def test_missing_or_malformed_header(server, header, has_error_code):
    with pytest.raises(FhirError) as caught:
        await authenticator(server.url).authenticate(header)
    error = caught.value
    assert error.status == 401 and error.code == "login"
    assert ('error="invalid_token"' in error.headers["WWW-Authenticate"]) == has_error_code
    assert error.headers["WWW-Authenticate"].startswith('Bearer realm="fhirledger"')


async def test_auth_off_gives_open_principal():
    from app.auth.principal import authenticate
    from app.settings import Settings

    principal = await authenticate(None, Settings())
    assert principal.is_open and principal.admin
    assert principal.allows("Patient", "delete").unrestricted


async def test_remembered_token_still_expires(server):
    source = JwksSource(server.url)
    auth = Authenticator(TokenVerifier(ISSUER, AUDIENCE, source, leeway_seconds=0))
    exp = int(time.time()) + 4  # room for the first verification (a JWKS fetch) on a loaded machine
    token = RSA_KEY.sign(claims(exp=exp))
    await auth.authenticate(f"Bearer {token}")
    await auth.authenticate(f"Bearer {token}")  # remembered
    await asyncio.sleep(max(0.0, exp - time.time()) + 1.1)
    error = await refused(auth, token)
    assert "expired" in error.diagnostics


async def test_remembered_token_revoked_with_its_key(server):
    clock = Clock()
    auth = authenticator(server.url, clock)
    token = RSA_KEY.sign(claims())
    await auth.authenticate(f"Bearer {token}")
    successor = SigningKey("rsa-9")
    server.document = jwks(EC_KEY, successor)  # rsa-1 withdrawn
    clock.now += 61
    await auth.authenticate(f"Bearer {successor.sign(claims())}")  # an unknown kid: the set is read again
    error = await refused(auth, token)
    assert "kid='rsa-1' is not in the issuer's key set" in error.diagnostics
