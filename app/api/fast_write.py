"""The fast path of the two most frequent writes, ``POST [base]/[type]`` (create) and
``PUT [base]/[type]/[id]`` (update): a raw ASGI middleware that calls their route functions
(``create_resource`` in ``app/api/routes/type_level.py``, ``update_resource`` in
``app/api/routes/instance.py``) directly, without FastAPI's routing (a walk over every route of
every router per request), its dependency solving, exception and exit-stack middleware.

It is the innermost middleware: every request it takes has passed the limits, the guards,
authentication, the custom-parameter check and the disconnect watcher like any other. The route
functions are the same ones FastAPI calls, so the request is answered exactly as the route answers
it (validation, conditional create, ``If-Match``, ``Prefer``, ``ETag``/``Location``/
``Last-Modified``, the audit fields); their errors are rendered by the application's own handlers
(a ``FhirError`` or an HTTP error as its OperationOutcome, anything else by the 500 handler
around every middleware). It takes only the paths that no other route answers for these methods:
one segment (``POST``) or two (``PUT``) after the base, the first a resource type.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api import errors
from app.api.routes.instance import update_resource
from app.api.routes.type_level import create_resource
from app.errors import FhirError
from app.fhirspec.resource_types import is_resource_type

Endpoint = Callable[[Request], Awaitable[Response]]


class FastWrite:
    """ASGI middleware placed innermost, just before the FastAPI router."""

    def __init__(self, app: ASGIApp, base_path: str) -> None:
        self.app = app
        self.prefix = base_path.rstrip("/") + "/"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = self._endpoint(scope) if scope["type"] == "http" else None
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive, send)
        try:
            response = await endpoint(request)
        except FhirError as exc:
            response = errors.outcome_response(exc.status, exc.all_issues(), exc.headers or None)
        except HTTPException as exc:
            response = await errors.http_error(request, exc)
        await response(scope, receive, send)

    def _endpoint(self, scope: Scope) -> Endpoint | None:
        """The route function for the request, or None when the router must decide."""
        method = scope["method"]
        if method not in ("POST", "PUT"):
            return None
        path: str = scope["path"]
        if not path.startswith(self.prefix):
            return None
        parts = path[len(self.prefix) :].split("/")
        if not is_resource_type(parts[0]):
            return None
        if method == "POST" and len(parts) == 1:
            return lambda request: create_resource(request, parts[0])
        if method == "PUT" and len(parts) == 2 and parts[1]:
            return lambda request: update_resource(request, parts[0], parts[1])
        return None
