"""ASGI middleware run before routing: the request-size limits (414 URI Too Long, 431 Request
Header Fields Too Large, as OperationOutcomes on a connection that stays usable) and the
trailing-slash rule (``/fhir/Patient/`` is ``/fhir/Patient``)."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.errors import outcome_response
from app.api.protocol import URL_LENGTH_KEY
from app.errors import Issue


class RequestLimits:
    def __init__(self, app: ASGIApp, max_url_bytes: int, max_header_bytes: int) -> None:
        self.app = app
        self.max_url_bytes = max_url_bytes
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        issue = self._over_limit(scope)
        if issue is not None:
            status, text = issue
            await outcome_response(status, [Issue("error", "too-costly", text)])(scope, receive, send)
            return
        await self.app(_without_trailing_slash(scope), receive, send)

    def _over_limit(self, scope: Scope) -> tuple[int, str] | None:
        raw_path = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string") or b""
        url_length = scope.get(URL_LENGTH_KEY) or len(raw_path) + (len(query) + 1 if query else 0)
        if url_length > self.max_url_bytes:
            return 414, (
                f"The request URL is {url_length} bytes long, over this server's limit of {self.max_url_bytes} "
                "bytes (setting FHIRLEDGER_MAX_URL_BYTES). Send a long search as POST [base]/[type]/_search "
                "with the parameters in an application/x-www-form-urlencoded body"
            )
        header_bytes = sum(len(name) + len(value) + 4 for name, value in scope["headers"])
        if header_bytes > self.max_header_bytes:
            largest = max(scope["headers"], key=lambda h: len(h[1]))[0].decode("latin-1")
            return 431, (
                f"The request headers take {header_bytes} bytes, over this server's limit of "
                f"{self.max_header_bytes} bytes (setting FHIRLEDGER_MAX_HEADER_BYTES); the largest is '{largest[:60]}'"
            )
        return None


def _without_trailing_slash(scope: Scope) -> Scope:
    path: str = scope["path"]
    if len(path) < 2 or not path.endswith("/"):
        return scope
    trimmed = dict(scope)
    trimmed["path"] = path.rstrip("/") or "/"
    raw_path = scope.get("raw_path")
    if raw_path:
        trimmed["raw_path"] = raw_path.rstrip(b"/") or b"/"
    return trimmed
