"""Authorization over HTTP: who is calling (:class:`Authentication`, an ASGI middleware) and what
each route lets them do (:func:`authorize`, one call per route).

The middleware authenticates every request except the public ones (:func:`is_public`: the
CapabilityStatement, the SMART configuration, the server's home page and ``GET [base]`` without
parameters, and the health probes) and puts the caller on ``request.state.principal``; a refusal
is answered there (401 with a ``WWW-Authenticate`` challenge, OperationOutcome code ``login``).
With authorization off it only stores :data:`app.auth.OPEN`.

Routes then call ``authorize(request, resource_type, interaction)``, which raises the 403 naming
the scope that would allow it and otherwise returns the :class:`app.auth.Decision` (how the
request is confined: the read side applies it to results). Administrative surfaces need the
configured admin scope (:func:`require_admin`): ``$reindex`` and its status, the change feed,
history filtered by ``actor`` or ``client`` (audit queries) and writes of SearchParameter resources
(they change how every resource is indexed).
"""

from __future__ import annotations

from fastapi import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.errors import outcome_response
from app.api.write_auth import principal_of
from app.auth import INTERACTION_LETTERS, OPEN, Decision, Grants, Principal, admin_required, authenticator_for
from app.commands.bundle_entries import BundleEntry
from app.errors import FhirError
from app.fhirspec.resource_types import resource_types
from app.settings import Settings

PUBLIC_METHODS = frozenset({"GET", "HEAD"})
AUDIT_PARAMS = ("actor", "client")
ADMIN_TYPES = frozenset({"SearchParameter"})  # writes of these change how the server works
NOBODY = Principal(sub=None, client_id=None, kind="none", patient=None, grants=Grants())  # public requests


class Authentication:
    """ASGI middleware: ``scope["state"]["principal"]`` for every HTTP request, or a 401/503 answer."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.authenticator = authenticator_for(settings)
        base = settings.base_path
        self.public_paths = frozenset({"/", "/healthz", "/readyz", f"{base}/metadata"})
        self.discovery_path = f"{base}/.well-known/smart-configuration"
        self.base = base or "/"

    def is_public(self, scope: Scope) -> bool:
        if scope["method"] not in PUBLIC_METHODS:
            return False
        path = scope["path"]
        if path in self.public_paths or path == self.discovery_path:
            return True
        return path == self.base and not scope.get("query_string")  # where to start, not a search

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        if not self.authenticator.enabled:
            state["principal"] = OPEN
            await self.app(scope, receive, send)
            return
        if self.is_public(scope):
            state["principal"] = NOBODY
            await self.app(scope, receive, send)
            return
        header = _header(scope, b"authorization")
        try:
            state["principal"] = await self.authenticator.authenticate(header)
        except FhirError as exc:
            await outcome_response(exc.status, exc.all_issues(), exc.headers or None)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def _admin_scope(request: Request) -> str:
    return request.app.state.settings.auth_admin_scope


def require_admin(request: Request, what: str) -> None:
    """403 unless the caller holds the configured admin scope (always true with authorization off)."""
    if not principal_of(request).admin:
        raise admin_required(_admin_scope(request), what)


def authorize(request: Request, resource_type: str, interaction: str) -> Decision:
    """Allow ``interaction`` (a key of :data:`app.auth.INTERACTION_LETTERS`) on ``resource_type``
    (``"*"``: every type) or raise the 403; the decision says how the request is confined."""
    principal = principal_of(request)
    decision = principal.require(resource_type, interaction)
    if resource_type in ADMIN_TYPES and set(INTERACTION_LETTERS[interaction]) & set("cud"):
        require_admin(request, f"Writing {resource_type} resources")
    if interaction.startswith("history") and any(p in request.query_params for p in AUDIT_PARAMS):
        require_admin(request, "History filtered by actor or client (an audit query)")
    request.scope.setdefault("state", {})["decision"] = decision  # ``request.state.decision``, unwrapped
    return decision


def authorize_system_search(request: Request, params: list[tuple[str, str]]) -> list[Decision]:
    """A whole-system search: ``s`` on each type of ``_type``. Without ``_type`` the search covers
    the types the token may search (the query layer restricts it, and answers 403 if there are none),
    so a ``patient/Observation.rs`` token can search ``[base]?…`` too."""
    types = [t.strip() for key, value in params if key == "_type" for t in value.split(",") if t.strip()]
    if types:
        return [authorize(request, t, "search-system") for t in dict.fromkeys(types)]
    principal = principal_of(request)
    if not any(principal.allows(t, "search-system").allowed for t in resource_types()):
        return [authorize(request, "*", "search-system")]  # the 403 naming the scope that would do
    return []


def authorize_system_history(request: Request) -> None:
    """Whole-system history: allowed when the token may read some type (the query layer leaves out
    entries of the others and outside its restrictions); a token that may read nothing gets the
    403 for ``*``."""
    principal = principal_of(request)
    if any(p in request.query_params for p in AUDIT_PARAMS):
        require_admin(request, "History filtered by actor or client (an audit query)")
    if not any(principal.allows(t, "history-system").allowed for t in resource_types()):
        authorize(request, "*", "history-system")


def entry_interaction(entry: BundleEntry) -> str:
    """The interaction a Bundle entry asks for (its conditional form when it has criteria)."""
    if entry.method in ("GET", "HEAD"):
        if entry.resource_id is None:
            return "search-type"
        return "vread" if entry.version_id is not None else "read"
    if entry.method == "POST":
        return "conditional-create" if entry.if_none_exist else "create"
    plain = {"PUT": "update", "PATCH": "patch", "DELETE": "delete"}[entry.method]
    return plain if entry.resource_id is not None else f"conditional-{plain}"


def authorize_entry(request: Request, entry: BundleEntry) -> Decision:
    """:func:`authorize` for one Bundle entry; a refusal names the entry."""
    try:
        return authorize(request, entry.resource_type, entry_interaction(entry))
    except FhirError as exc:
        text = f"{entry.where} ({entry.method} {entry.url[:80]}): {exc.diagnostics}"
        raise FhirError(exc.status, exc.code, text, (entry.where,), headers=exc.headers) from None
