"""The token-signing keys: a JSON Web Key Set (RFC 7517 section 5) read from an ``https://`` or
``http://`` URL, or from a local file, and cached.

Keys are looked up by ``kid``. A ``kid`` not in the cached set makes the set be read again (a key
rotation at the authorization server), at most once per ``min_refetch_seconds`` (60 by default), so
a stream of tokens with made-up key ids cannot turn into a stream of fetches. Concurrent lookups of
one unknown ``kid`` share a single fetch. URLs are fetched with ``httpx.AsyncClient`` under a
timeout, so the event loop never waits on the network; files are read in a worker thread.

Only signature keys the verifier accepts are kept: RSA (for RS256) and EC on P-256 (for ES256);
keys marked ``"use": "enc"`` and other key types are left out (:attr:`JwksSource.skipped` says which).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import jwt
import orjson

ACCEPTED_KEYS = {"RSA": "RS256", "EC": "ES256"}  # key type -> the one algorithm it may verify


class JwksError(Exception):
    """The key set could not be read (network, HTTP status, file, or not a JWKS)."""


def parse_jwks(data: bytes) -> tuple[dict[str, jwt.PyJWK], list[str]]:
    """``kid`` -> key for the usable signature keys of a JWKS document, and what was skipped (why)."""
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise JwksError(f"the key set is not JSON: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise JwksError('the key set is not a JWKS: no "keys" array')
    keys: dict[str, jwt.PyJWK] = {}
    skipped: list[str] = []
    for index, entry in enumerate(document["keys"]):
        label = f"key {index} (kid {entry.get('kid')!r})" if isinstance(entry, dict) else f"key {index}"
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            skipped.append(f"{label}: not a signature key")
            continue
        algorithm = ACCEPTED_KEYS.get(entry.get("kty", ""))
        if algorithm is None or entry.get("alg", algorithm) != algorithm:
            skipped.append(f"{label}: kty {entry.get('kty')!r} / alg {entry.get('alg')!r} not accepted")
            continue
        if algorithm == "ES256" and entry.get("crv") != "P-256":
            skipped.append(f"{label}: EC curve {entry.get('crv')!r} is not P-256")
            continue
        try:
            key = jwt.PyJWK(entry, algorithm=algorithm)
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError) as exc:
            skipped.append(f"{label}: unreadable ({exc})")
            continue
        keys[str(entry.get("kid", ""))] = key
    return keys, skipped


class JwksSource:
    """A cached key set from ``location`` (a URL or a file path)."""

    def __init__(
        self,
        location: str,
        timeout_seconds: float = 5.0,
        min_refetch_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.location = location
        self.is_url = location.startswith(("https://", "http://"))
        self.timeout_seconds = timeout_seconds
        self.min_refetch_seconds = min_refetch_seconds
        self.clock = clock
        self.keys: dict[str, jwt.PyJWK] = {}
        self.skipped: list[str] = []
        self.fetches = 0  # how many times the set was read (for tests and diagnostics)
        self.last_error: str | None = None  # why the last read failed, if it did
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    async def _read(self) -> bytes:
        if not self.is_url:
            try:
                return await asyncio.to_thread(Path(self.location).read_bytes)
            except OSError as exc:
                raise JwksError(f"cannot read the key set file {self.location}: {exc}") from exc
        try:
            async with httpx.AsyncClient(timeout=self.timeout_seconds, follow_redirects=False) as client:
                response = await client.get(self.location, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise JwksError(f"cannot fetch the key set from {self.location}: {exc!r}") from exc
        if response.status_code != 200:
            raise JwksError(f"the key set at {self.location} answered HTTP {response.status_code}")
        return response.content

    async def refresh(self) -> None:
        """Read the set now (the caller holds the rate limit)."""
        self._fetched_at = self.clock()
        self.fetches += 1
        try:
            self.keys, self.skipped = parse_jwks(await self._read())
        except JwksError as exc:
            self.last_error = str(exc)  # the keys read before stay in use
            raise
        self.last_error = None

    def _may_refetch(self) -> bool:
        return self._fetched_at is None or self.clock() - self._fetched_at >= self.min_refetch_seconds

    async def key(self, kid: str) -> jwt.PyJWK | None:
        """The key with this ``kid``; reads the set again (rate-limited) if it is not known yet."""
        found = self.keys.get(kid)
        if found is not None:
            return found
        async with self._lock:
            found = self.keys.get(kid)  # another task may have fetched it while we waited
            if found is None and self._may_refetch():
                await self.refresh()
                found = self.keys.get(kid)
        return found

    async def only_key(self, algorithm: str) -> jwt.PyJWK | None:
        """For a token without ``kid``: the set's single key for ``algorithm``, if there is exactly one."""
        if self._fetched_at is None:
            async with self._lock:
                if self._fetched_at is None:
                    await self.refresh()
        candidates = [k for k in self.keys.values() if k.algorithm_name == algorithm]
        return candidates[0] if len(candidates) == 1 else None
