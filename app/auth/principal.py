"""Who is calling and what they may do: :class:`Principal`, made from an ``Authorization`` header by
an :class:`Authenticator` (no web framework involved).

With ``FHIRLEDGER_AUTH_ISSUER`` unset, authorization is off and every request gets the
:data:`OPEN` principal, which is allowed everything. With it set, the header must carry a bearer
JWT the :class:`app.auth.tokens.TokenVerifier` accepts; the principal then holds the token's
subject, client (``client_id``, else ``azp``), SMART scopes (``scope`` string or ``scp`` array) and
patient launch context (``patient`` claim).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.auth import outcomes
from app.auth.jwks import JwksSource
from app.auth.scopes import Access, Decision, Grants, parse_scopes
from app.auth.tokens import InvalidToken, KeysUnavailable, TokenVerifier
from app.settings import Settings, get_settings


@dataclass(frozen=True)
class Principal:
    sub: str | None
    client_id: str | None
    kind: str  # open | patient | user | system (the level of its scopes) | mixed | none
    patient: str | None  # the patient in context (SMART launch context), for patient/ scopes
    grants: Grants
    admin: bool = False  # holds the configured admin scope (always, when authorization is off)
    claims: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def is_open(self) -> bool:
        return self.kind == "open"

    @property
    def actor(self) -> str | None:
        """The verified identity to record on events: ``sub``, else the client; None when open."""
        return self.sub or (f"client:{self.client_id}" if self.client_id else None)

    def allows(self, resource_type: str, interaction: str, level: str | None = None) -> Decision:
        """See :meth:`app.auth.scopes.Grants.allows`; everything is allowed for the open principal
        (its decisions, frozen values, made once per type and interaction: two dataclasses built
        for every request were a measurable part of a create's CPU)."""
        if self.is_open:
            return _open_decision(resource_type, interaction)
        return self.grants.allows(resource_type, interaction, level)

    def require(self, resource_type: str, interaction: str) -> Decision:
        """The decision for an allowed interaction; raises the 403 FhirError otherwise."""
        decision = self.allows(resource_type, interaction)
        if not decision.allowed:
            raise outcomes.forbidden(decision)
        return decision


_OPEN_DECISIONS: dict[tuple[str, str], Decision] = {}


def _open_decision(resource_type: str, interaction: str) -> Decision:
    key = (resource_type, interaction)
    decision = _OPEN_DECISIONS.get(key)
    if decision is None:
        if len(_OPEN_DECISIONS) >= 4096:  # the type comes from the request: a bounded memo
            _OPEN_DECISIONS.clear()
        decision = _OPEN_DECISIONS[key] = Decision(resource_type, interaction, (Access(),), "")
    return decision


OPEN = Principal(sub=None, client_id=None, kind="open", patient=None, grants=Grants(), admin=True)


def _string_claim(claims: Mapping[str, Any], *names: str) -> str | None:
    for name in names:
        value = claims.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def principal_from_claims(claims: Mapping[str, Any], admin_scope: str) -> Principal:
    patient = _string_claim(claims, "patient")
    scopes = claims.get("scope") if claims.get("scope") is not None else claims.get("scp")
    grants = parse_scopes(scopes, patient)
    kind = next(iter(grants.levels)) if len(grants.levels) == 1 else ("mixed" if grants.levels else "none")
    return Principal(
        sub=_string_claim(claims, "sub"),
        client_id=_string_claim(claims, "client_id", "azp"),
        kind=kind,
        patient=patient,
        grants=grants,
        admin=grants.covers(admin_scope),
        claims=claims,
    )


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header; None for none or another scheme."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


class Authenticator:
    """Turns ``Authorization`` headers into principals; ``verifier`` None means authorization is off."""

    def __init__(self, verifier: TokenVerifier | None, admin_scope: str = "system/*.*") -> None:
        self.verifier = verifier
        self.admin_scope = admin_scope

    @classmethod
    def from_settings(cls, settings: Settings) -> Authenticator:
        if not settings.auth_issuer:
            return cls(None, settings.auth_admin_scope)
        assert settings.auth_audience and settings.auth_jwks  # Settings checks this
        keys = JwksSource(
            settings.auth_jwks, settings.auth_jwks_timeout_seconds, settings.auth_jwks_min_refetch_seconds
        )
        return cls(TokenVerifier(settings.auth_issuer, settings.auth_audience, keys), settings.auth_admin_scope)

    @property
    def enabled(self) -> bool:
        return self.verifier is not None

    async def authenticate(self, authorization: str | None) -> Principal:
        """The caller of a request with this ``Authorization`` header value; raises a 401 FhirError
        (no or invalid token) or a 503 one (signing keys unreadable)."""
        if self.verifier is None:
            return OPEN
        token = bearer_token(authorization)
        if token is None:
            if authorization and authorization.strip().lower().startswith("bearer"):
                raise outcomes.invalid_token("the Authorization header has no token after 'Bearer'")
            raise outcomes.missing_token()
        try:
            claims = await self.verifier.verify(token)
        except InvalidToken as exc:
            raise outcomes.invalid_token(str(exc)) from None
        except KeysUnavailable as exc:
            raise outcomes.keys_unavailable(str(exc)) from None
        return principal_from_claims(claims, self.admin_scope)


_authenticators: dict[tuple, Authenticator] = {}


def authenticator_for(settings: Settings | None = None) -> Authenticator:
    """One authenticator (and so one key cache) per distinct auth configuration, for the process."""
    settings = settings or get_settings()
    key = (
        settings.auth_issuer,
        settings.auth_audience,
        settings.auth_jwks,
        settings.auth_admin_scope,
        settings.auth_jwks_timeout_seconds,
        settings.auth_jwks_min_refetch_seconds,
    )
    found = _authenticators.get(key)
    if found is None:
        found = _authenticators[key] = Authenticator.from_settings(settings)
    return found


async def authenticate(authorization: str | None, settings: Settings | None = None) -> Principal:
    """The principal for an ``Authorization`` header value (see :meth:`Authenticator.authenticate`)."""
    return await authenticator_for(settings).authenticate(authorization)
