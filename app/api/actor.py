"""Who is writing: the actor recorded on every event (ARCHITECTURE.md invariant 1; audit).

- With authorization on (``FHIRLEDGER_AUTH_ISSUER``), the verified bearer token's ``sub`` (else
  ``client:<client_id>``); the token's client and scope level are recorded beside it (see
  :func:`app.api.write_auth.write_identity`). Nothing the client sends unverified counts.
- With authorization off, the configured header (``FHIRLEDGER_ACTOR_HEADER``, e.g. ``X-User``),
  only when it is set: the operator has said that an authenticating proxy in front names the
  user there. A bearer token is never decoded without verifying it.
- Else ``anonymous``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from app.auth import Principal
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


def actor_of(headers: Mapping[str, str], actor_header: str | None = None, principal: Principal | None = None) -> str:
    """The actor of a request: the verified principal's when authorization is on, else the
    configured proxy header's value (a case-insensitive mapping such as Starlette's headers)."""
    if principal is not None and not principal.is_open:
        return _clean(principal.actor or "") or ANONYMOUS
    if actor_header:
        named = headers.get(actor_header)
        if named and (value := _clean(require_clean_header(actor_header, named, MAX_ACTOR_LENGTH))):
            return value
    return ANONYMOUS
