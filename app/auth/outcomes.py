"""The refusals authorization gives, as :class:`app.errors.FhirError` values the API renders as
OperationOutcome (RFC 6750 section 3 for the ``WWW-Authenticate`` challenges):

- 401 ``login``: no bearer token (challenge without an error code, as RFC 6750 asks when the client
  sent no credentials or another scheme), or an invalid one (``error="invalid_token"`` with the
  reason in ``error_description``);
- 403 ``forbidden``: a valid token whose scopes do not allow the interaction; the text names the
  scopes that would (``error="insufficient_scope"``, ``scope="..."``);
- 503 ``transient``: the issuer's signing keys could not be read, so no token can be checked.
"""

from __future__ import annotations

from app.auth.scopes import Decision
from app.errors import FhirError

REALM = "fhirledger"


def _quoted(text: str) -> str:
    """A quoted-string value RFC 6750 allows: printable ASCII without ``"`` and ``\\``."""
    cleaned = "".join(c if 0x20 <= ord(c) < 0x7F and c not in '"\\' else "'" if c == '"' else "" for c in text)
    return f'"{cleaned}"'


def challenge(error: str | None = None, description: str | None = None, scope: str | None = None) -> str:
    parts = [f"realm={_quoted(REALM)}"]
    if error:
        parts.append(f"error={_quoted(error)}")
    if description:
        parts.append(f"error_description={_quoted(description)}")
    if scope:
        parts.append(f"scope={_quoted(scope)}")
    return "Bearer " + ", ".join(parts)


def missing_token(detail: str = "this server requires an Authorization: Bearer token") -> FhirError:
    """401 for a request without a bearer token."""
    return FhirError(401, "login", f"Authentication required: {detail}", headers={"WWW-Authenticate": challenge()})


def invalid_token(description: str) -> FhirError:
    """401 for a bearer token that is not valid; ``description`` says why (from the verifier)."""
    return FhirError(
        401,
        "login",
        f"Invalid bearer token: {description}",
        headers={"WWW-Authenticate": challenge("invalid_token", description)},
    )


def forbidden(decision: Decision) -> FhirError:
    """403 for an interaction the token's scopes do not allow, naming the scopes that would."""
    what = (
        f"{decision.interaction} on {'all resource types' if decision.resource_type == '*' else decision.resource_type}"
    )
    text = f"The token's scopes do not allow {what}: needs scope {decision.needed}"
    if decision.note:
        text += f" ({decision.note})"
    scopes = " ".join(decision.needed.split(" or "))
    header = challenge("insufficient_scope", f"needs scope {decision.needed}", scopes)
    return FhirError(403, "forbidden", text, headers={"WWW-Authenticate": header})


def admin_required(admin_scope: str, what: str) -> FhirError:
    """403 for an administrative operation (``what``) without the configured admin scope."""
    text = f"{what} is an administrative operation: needs scope {admin_scope}"
    header = challenge("insufficient_scope", f"needs scope {admin_scope}", admin_scope)
    return FhirError(403, "forbidden", text, headers={"WWW-Authenticate": header})


def keys_unavailable(detail: str) -> FhirError:
    """503 when the signing keys cannot be read: the token could not be checked."""
    return FhirError(503, "transient", f"Cannot check the bearer token now: {detail}", headers={"Retry-After": "60"})
