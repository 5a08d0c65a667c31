"""Who is writing: the actor recorded on every event (ARCHITECTURE.md invariant 1; audit).

In order of precedence:

1. the configured header (``FHIRLEDGER_ACTOR_HEADER``, e.g. ``X-User``), when set and present: the
   operator has said that the proxy in front names the user there, so it wins over anything the
   client sends itself;
2. ``Authorization: Bearer <JWT>``: the ``sub`` claim of the token's payload. The JWT is **decoded
   without verifying its signature**: verifying tokens belongs to the authenticating proxy in front
   of this server, which must reject requests with invalid tokens. A bearer token that is not a JWT
   with a string ``sub`` is recorded as ``bearer:<first 8 hex digits of its sha256>``, so its
   writes can be told apart without storing the secret;
3. else ``anonymous``.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping

import orjson

from app.errors import invalid

ANONYMOUS = "anonymous"
MAX_ACTOR_LENGTH = 256
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def require_clean_header(name: str, value: str, max_length: int) -> str:
    """``value`` of header ``name``, or 400 if it holds a control character or is too long (it is
    recorded on the events as sent)."""
    if _CONTROL.search(value):
        raise invalid(f"The {name} header holds a control character ({value[:60]!r}); send printable characters only")
    if len(value) > max_length:
        raise invalid(f"The {name} header is {len(value)} characters long; at most {max_length} are accepted")
    return value


def _clean(value: str) -> str | None:
    value = "".join(ch for ch in value if ch.isprintable()).strip()
    return value[:MAX_ACTOR_LENGTH] or None


def jwt_subject(token: str) -> str | None:
    """The ``sub`` claim of a JWT, read without verification; None if ``token`` is no JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1]
    try:
        claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        return None
    sub = claims.get("sub") if isinstance(claims, dict) else None
    return _clean(sub) if isinstance(sub, str) else None


def bearer_actor(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return jwt_subject(token) or f"bearer:{hashlib.sha256(token.encode()).hexdigest()[:8]}"


def actor_of(headers: Mapping[str, str], actor_header: str | None = None) -> str:
    """The actor of a request, from its headers (a case-insensitive mapping such as Starlette's)."""
    if actor_header:
        named = headers.get(actor_header)
        if named and (value := _clean(require_clean_header(actor_header, named, MAX_ACTOR_LENGTH))):
            return value
    return bearer_actor(headers.get("authorization")) or ANONYMOUS
