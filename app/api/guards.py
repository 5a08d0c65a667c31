"""ASGI middleware run before routing that refuses requests a browser could be tricked into sending,
or that name a host this server does not serve:

- ``Host`` must be one of ``FHIRLEDGER_ALLOWED_HOSTS`` when that is set (links in every answer are
  built from it, so a forged ``Host`` would make the server hand out links to elsewhere): 400;
- a state-changing request (POST, PUT, PATCH, DELETE) whose body is of one of the three types a
  cross-site HTML form can send without a CORS preflight (``application/x-www-form-urlencoded``,
  ``multipart/form-data``, ``text/plain``) is refused with 415, except ``POST [base]/_search`` and
  ``POST [base]/[type]/_search``, which take form bodies by the spec (http.html#search). This refuses
  native ``text/plain`` Binary uploads too (send the Binary as JSON with ``contentType``), since a
  cross-site form could create them in the name of a browser that may reach the server.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.errors import outcome_response
from app.errors import Issue

FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"})
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def host_list(setting: str) -> frozenset[str]:
    """``FHIRLEDGER_ALLOWED_HOSTS`` as a set of lower-case ``host`` or ``host:port`` entries."""
    return frozenset(h.strip().lower() for h in setting.split(",") if h.strip())


def host_allowed(host: str, allowed: frozenset[str]) -> bool:
    """Whether ``host`` (a ``Host`` header value) is allowed: listed as is, or its name without the port."""
    host = host.strip().lower()
    if host in allowed:
        return True
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return name in allowed


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


class RequestGuards:
    """The ``Host`` allow-list and the cross-site form refusal (see the module docstring)."""

    def __init__(self, app: ASGIApp, allowed_hosts: str, base_path: str) -> None:
        self.app = app
        self.allowed = host_list(allowed_hosts)
        self.base_path = base_path.rstrip("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._host_refusal(scope) or self._form_refusal(scope)
        if refusal is not None:
            status, code, text = refusal
            await outcome_response(status, [Issue("error", code, text)])(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _host_refusal(self, scope: Scope) -> tuple[int, str, str] | None:
        if not self.allowed:
            return None
        host = _header(scope, b"host")
        if host is not None and host_allowed(host, self.allowed):
            return None
        shown = "no Host header" if host is None else f"Host '{host[:100]}'"
        return (
            400,
            "invalid",
            (
                f"This server does not answer requests for {shown}: the hosts it serves are "
                f"{', '.join(sorted(self.allowed))} (setting FHIRLEDGER_ALLOWED_HOSTS)"
            ),
        )

    def _form_refusal(self, scope: Scope) -> tuple[int, str, str] | None:
        if scope["method"] not in STATE_CHANGING:
            return None
        ctype = _header(scope, b"content-type")
        kind = ctype.split(";")[0].strip().lower() if ctype else ""
        if kind not in FORM_TYPES:
            return None
        path: str = scope["path"].rstrip("/")
        if scope["method"] == "POST" and path.startswith(self.base_path) and path.endswith("/_search"):
            return None
        return (
            415,
            "not-supported",
            (
                f"Content-Type '{kind}' is not supported for {scope['method']} (a cross-site HTML form can send it): "
                "send application/fhir+json (a Binary as JSON with its contentType); only POST .../_search takes "
                "a form body"
            ),
        )
