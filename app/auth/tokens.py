"""Bearer token validation: JWTs (RFC 7519) signed RS256 or ES256 by a key of the configured JWKS.

Library: **PyJWT** (``pyjwt[crypto]``). It is the most used and longest maintained JOSE library in
Python, small, typed, built on ``cryptography``, and its ``decode`` takes an explicit algorithm
allow-list and checks ``exp``/``nbf``/``iss``/``aud`` with a leeway, which is all a resource server
needs; joserfc is equally sound but adds JWE/JWS-JSON machinery we do not use. PyJWT's own
``PyJWKClient`` fetches synchronously, so the key set is read by :mod:`app.auth.jwks` with httpx.

Checks, in order, each failure a :class:`InvalidToken` whose text tells the client what was wrong:

1. the token is three base64url parts with a JSON header;
2. the header's ``alg`` is RS256 or ES256: ``none`` and every HS* are refused before any key is
   looked at (so an HS256 token "signed" with the public key as its secret never reaches a
   verifier), as are all other algorithms;
3. the key is chosen by ``kid`` (without ``kid``: the set's only key for that algorithm); its type
   must match ``alg`` (an RSA key verifies only RS256, a P-256 key only ES256);
4. the signature, then ``exp`` (required), ``nbf`` (when present), ``iss`` and ``aud`` (both
   required), with ``leeway_seconds`` (60) of clock skew allowed.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from collections import OrderedDict
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import jwt
import orjson

from app.auth.jwks import JwksError, JwksSource

ALGORITHMS = ("RS256", "ES256")
LEEWAY_SECONDS = 60


class InvalidToken(Exception):
    """The bearer token is not acceptable; the text is safe to show to the client."""


class KeysUnavailable(Exception):
    """The signing keys could not be read, so the token could not be checked (not the client's fault)."""


_SEGMENT = re.compile(r"^[A-Za-z0-9_-]+$")


def _header(token: str) -> dict[str, Any]:
    """The JOSE header, read from the first segment only (PyJWT checks all three when it decodes)."""
    segment = token.split(".", 1)[0]
    if token.count(".") != 2 or not _SEGMENT.match(segment):
        raise InvalidToken("the bearer token is not a JWT (three base64url parts separated by dots)")
    try:
        header = orjson.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (binascii.Error, ValueError):
        raise InvalidToken("the bearer token's header is not base64url-encoded JSON") from None
    if not isinstance(header, dict):
        raise InvalidToken("the bearer token's header is not a JSON object")
    return header


def _failure_text(exc: jwt.PyJWTError, issuer: str, audience: str) -> str:
    if isinstance(exc, jwt.ExpiredSignatureError):
        return "the token has expired (exp is in the past)"
    if isinstance(exc, jwt.ImmatureSignatureError):
        return "the token is not valid yet (its nbf or iat is in the future)"
    if isinstance(exc, jwt.InvalidIssuerError):
        return f"the token's issuer (iss) is not {issuer}"
    if isinstance(exc, jwt.InvalidAudienceError):
        return f"the token's audience (aud) does not include {audience}"
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"the token has no {exc.claim} claim"
    if isinstance(exc, jwt.InvalidSignatureError):
        return "the token's signature does not verify"
    return f"the token is not valid: {exc}"


class _Verified:
    """A token verified before: its claims, the key that verified it and its validity window."""

    __slots__ = ("claims", "key", "kid", "not_before", "expires")

    def __init__(self, claims: Mapping[str, Any], key: jwt.PyJWK, kid: str, leeway: float) -> None:
        self.claims, self.key, self.kid = claims, key, kid
        nbf, exp = claims.get("nbf"), claims["exp"]
        self.not_before = nbf - leeway if isinstance(nbf, int | float) else float("-inf")
        self.expires = exp + leeway


class TokenVerifier:
    """Verifies bearer JWTs against one issuer, one audience and one key set.

    Clients send one token with many requests, so verified tokens are remembered (``cache_size``,
    keyed by the whole token, signature included): a repeat costs a dictionary lookup, a clock
    check against the token's ``exp``/``nbf`` and a check that its key is still in the key set (a
    key dropped from the set revokes the tokens it signed)."""

    def __init__(
        self,
        issuer: str,
        audience: str,
        keys: JwksSource,
        leeway_seconds: float = LEEWAY_SECONDS,
        cache_size: int = 4096,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.keys = keys
        self.leeway_seconds = leeway_seconds
        self.cache_size = cache_size
        self._verified: OrderedDict[str, _Verified] = OrderedDict()

    def _remembered(self, token: str) -> Mapping[str, Any] | None:
        entry = self._verified.get(token)
        if entry is None:
            return None
        now = time.time()
        if not (entry.not_before <= now < entry.expires) or self.keys.keys.get(entry.kid) is not entry.key:
            del self._verified[token]  # expired, or its key is gone: verify again to say why
            return None
        self._verified.move_to_end(token)
        return entry.claims

    def _remember(self, token: str, claims: Mapping[str, Any], key: jwt.PyJWK, kid: str) -> None:
        self._verified[token] = _Verified(claims, key, kid, self.leeway_seconds)
        if len(self._verified) > self.cache_size:
            self._verified.popitem(last=False)

    async def _key(self, header: dict[str, Any], algorithm: str) -> jwt.PyJWK:
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise InvalidToken("the token's kid is not a string")
        try:
            key = await (self.keys.key(kid) if kid is not None else self.keys.only_key(algorithm))
        except JwksError as exc:
            raise KeysUnavailable(str(exc)) from exc
        if key is None:
            why = (
                f" (the last attempt to read the key set failed: {self.keys.last_error})"
                if self.keys.last_error
                else ""
            )
            if kid is None:
                raise InvalidToken(f"the token has no kid and the key set has no single {algorithm} key{why}")
            raise InvalidToken(f"the token's signing key kid={kid!r} is not in the issuer's key set{why}")
        if key.algorithm_name != algorithm:
            raise InvalidToken(f"the token says alg {algorithm} but key {kid!r} is a {key.algorithm_name} key")
        return key

    async def verify(self, token: str) -> Mapping[str, Any]:
        """The claims (read-only) of a valid token; raises :class:`InvalidToken` or :class:`KeysUnavailable`."""
        remembered = self._remembered(token)
        if remembered is not None:
            return remembered
        header = _header(token)
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS:
            raise InvalidToken(f"the token's algorithm {algorithm!r} is not accepted (only {', '.join(ALGORITHMS)})")
        key = await self._key(header, algorithm)
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=[algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_seconds,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(_failure_text(exc, self.issuer, self.audience)) from None
        frozen = MappingProxyType(claims)
        self._remember(token, frozen, key, self._kid_of(key))
        return frozen

    def _kid_of(self, key: jwt.PyJWK) -> str:
        return next((kid for kid, k in self.keys.keys.items() if k is key), "")
