"""Cost of authorization per request: ``python bench/auth.py``.

``authenticate()`` with the signing key already cached, for RS256 (2048-bit RSA) and ES256 (P-256):
a token seen for the first time (signature, claims and scopes checked) and the same token again
(remembered: clock and key checks only); then a scope decision (``Principal.allows``).
µs per call, median of 5 runs."""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.auth.jwks import JwksSource
from app.auth.principal import Authenticator
from app.auth.tokens import TokenVerifier
from tests.auth.keys import AUDIENCE, ISSUER, SigningKey, claims, jwks

SCOPES = "launch/patient openid fhirUser patient/*.rs patient/Observation.cruds?category=laboratory"


async def per_call_us(auth: Authenticator, headers: list[str], repeat: int = 1) -> float:
    """Median µs per call over ``headers``, each authenticated ``repeat`` times in a row."""
    await auth.authenticate(headers[0])  # read and cache the key
    runs = []
    for run in range(5):
        batch = headers[run::5]
        start = time.perf_counter()
        for header in batch:
            for _ in range(repeat):
                await auth.authenticate(header)
        runs.append((time.perf_counter() - start) / (len(batch) * repeat) * 1e6)
    return statistics.median(runs)


def signed(key: SigningKey, n: int) -> list[str]:
    return [f"Bearer {key.sign(claims(scope=SCOPES, patient='p1', jti=str(i)))}" for i in range(n)]


def decision_us(principal, n: int = 20000) -> float:
    start = time.perf_counter()
    for _ in range(n):
        principal.allows("Observation", "search-type")
    return (time.perf_counter() - start) / n * 1e6


async def main() -> None:
    keys = [SigningKey("rsa"), SigningKey("ec", "EC")]
    with tempfile.NamedTemporaryFile(suffix=".json") as file:
        file.write(orjson.dumps(jwks(*keys)))
        file.flush()
        auth = Authenticator(TokenVerifier(ISSUER, AUDIENCE, JwksSource(file.name)))
        for key in keys:
            headers = signed(key, 1000)
            first = await per_call_us(auth, headers)
            again = await per_call_us(auth, headers[:50], repeat=100)
            print(
                f"authenticate() {key.algorithm}, cached key: new token {first:7.1f} µs/call, same token {again:5.1f}"
            )
        principal = await auth.authenticate(headers[0])
        print(f"Principal.allows(Observation, search-type): {decision_us(principal):8.2f} µs/call")


if __name__ == "__main__":
    asyncio.run(main())
