"""The fast path of the most frequent request, ``GET [base]/[type]/[id]``: a raw ASGI middleware
that answers a plain read from the current-state projection in one query (shared with the reads
arriving with it, app/api/read_batch.py), without FastAPI's routing, dependency solving and the
per-request middleware that a read does not need (the custom SearchParameter check, the
disconnect watcher).

It answers only what it can answer exactly as the route in ``app/api/routes/instance.py`` would:
a GET or HEAD without query string or conditional headers, on a type other than Binary and
SearchParameter (their reads carry extra headers), for a caller whose scopes allow reading the
type without restriction, with an ``Accept`` it can serve, of a resource that exists and whose
projection is ready. Anything else (a missing or deleted resource, a 304, a 406, a restricted
token …) goes on to the full application, which answers it and every error.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.errors import outcome_response
from app.api.http import accepted_media, etag
from app.api.read_batch import ReadBatcher
from app.auth import OPEN
from app.errors import FhirError
from app.fhirspec.resource_types import is_resource_type
from app.fhirtime import format_http_date
from app.identity import ID_PATTERN
from app.projections.state import projection_name

SPECIAL_TYPES = frozenset({"Binary", "SearchParameter"})
_CONDITIONAL = (b"if-none-match", b"if-modified-since", b"if-match")


def media_for(accept: bytes | None) -> str | None:
    """The response type for an ``Accept`` header (as ``response_media_type`` picks it), or None
    when the full route must decide (it answers 406 where nothing fits)."""
    return accepted_media(accept.decode("latin-1") if accept else "")


class FastRead:
    """ASGI middleware placed after authentication (``scope["state"]["principal"]`` is set)."""

    def __init__(self, app: ASGIApp, base_path: str) -> None:
        self.app = app
        self.prefix = base_path.rstrip("/") + "/"
        self._batcher: ReadBatcher | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD") and not scope.get("query_string"):
            try:
                answer = await self._answer(scope)
            except FhirError as exc:  # no connection in time, a statement timeout
                await outcome_response(exc.status, exc.all_issues(), exc.headers or None)(scope, receive, send)
                return
            if answer is not None:
                status, headers, body = answer
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
                return
        await self.app(scope, receive, send)

    async def _answer(self, scope: Scope) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
        path: str = scope["path"]
        if not path.startswith(self.prefix):
            return None
        parts = path[len(self.prefix) :].split("/")
        if len(parts) != 2:
            return None
        resource_type, resource_id = parts
        if (
            resource_type in SPECIAL_TYPES
            or not is_resource_type(resource_type)
            or not ID_PATTERN.fullmatch(resource_id)
        ):
            return None
        accept: bytes | None = None
        for key, value in scope["headers"]:
            if key in _CONDITIONAL:
                return None
            if key == b"accept":
                accept = value
        media = media_for(accept)
        app = scope.get("app")
        principal = scope.get("state", {}).get("principal")
        if media is None or app is None or principal is None or not _unrestricted(principal, resource_type):
            return None
        if projection_name("current_state", resource_type) in app.state.stale_projections:
            return None
        batcher = self._batcher
        if batcher is None or batcher.pool is not app.state.pool:  # a new pool: the application restarted
            batcher = self._batcher = ReadBatcher(app.state.pool)
        head = await batcher.read(resource_type, resource_id)  # with the reads arriving with it (app/api/read_batch.py)
        if head is None or head.deleted or head.resource is None:
            return None  # 404 or 410, answered with its OperationOutcome by the route
        # the caller may read every resource of the type: no visibility check to make (app/queries/read.py)
        headers = [
            (b"etag", etag(head.version).encode()),
            (b"last-modified", format_http_date(head.last_updated).encode()),
            (b"content-length", b"%d" % len(head.resource)),
            (b"content-type", media.encode()),
        ]
        return 200, headers, head.resource


def _unrestricted(principal: object, resource_type: str) -> bool:
    if principal is OPEN:
        return True
    try:
        return principal.allows(resource_type, "read").unrestricted  # type: ignore[attr-defined]
    except Exception:
        return False
