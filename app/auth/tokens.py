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

from typing import Any

import jwt

from app.auth.jwks import JwksError, JwksSource

ALGORITHMS = ("RS256", "ES256")
LEEWAY_SECONDS = 60


class InvalidToken(Exception):
    """The bearer token is not acceptable; the text is safe to show to the client."""


class KeysUnavailable(Exception):
    """The signing keys could not be read, so the token could not be checked (not the client's fault)."""


def _header(token: str) -> dict[str, Any]:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.DecodeError as exc:
        raise InvalidToken(f"the bearer token is not a well-formed JWT ({exc})") from None
    return header


def _failure_text(exc: jwt.PyJWTError, issuer: str, audience: str) -> str:
    if isinstance(exc, jwt.ExpiredSignatureError):
        return "the token has expired (exp is in the past)"
    if isinstance(exc, jwt.ImmatureSignatureError):
        return "the token is not valid yet (nbf is in the future)"
    if isinstance(exc, jwt.InvalidIssuerError):
        return f"the token's issuer (iss) is not {issuer}"
    if isinstance(exc, jwt.InvalidAudienceError):
        return f"the token's audience (aud) does not include {audience}"
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"the token has no {exc.claim} claim"
    if isinstance(exc, jwt.InvalidSignatureError):
        return "the token's signature does not verify"
    return f"the token is not valid: {exc}"


class TokenVerifier:
    """Verifies bearer JWTs against one issuer, one audience and one key set."""

    def __init__(self, issuer: str, audience: str, keys: JwksSource, leeway_seconds: float = LEEWAY_SECONDS) -> None:
        self.issuer = issuer
        self.audience = audience
        self.keys = keys
        self.leeway_seconds = leeway_seconds

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

    async def verify(self, token: str) -> dict[str, Any]:
        """The claims of a valid token; raises :class:`InvalidToken` or :class:`KeysUnavailable`."""
        header = _header(token)
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS:
            raise InvalidToken(f"the token's algorithm {algorithm!r} is not accepted (only {', '.join(ALGORITHMS)})")
        key = await self._key(header, algorithm)
        try:
            return jwt.decode(
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
