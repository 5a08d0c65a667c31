"""FHIR HTTP conventions: content types, body limits, Prefer, ETags, responses
(https://hl7.org/fhir/R4/http.html)."""

from __future__ import annotations

from datetime import datetime

import orjson
from fastapi import Request
from fastapi.responses import Response
from starlette.requests import ClientDisconnect

from app.api.json_body import parse_json_body
from app.api.request_meta import client_address, header, request_id_of
from app.api.write_auth import write_identity
from app.commands.preconditions import parse_etag
from app.errors import FhirError, Issue, invalid, operation_outcome
from app.events.model import RequestContext
from app.fhirtime import format_http_date

FHIR_JSON = "application/fhir+json"
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
_JSON_TYPES = {FHIR_JSON, "application/json", "application/json+fhir", "text/json"}
_FORMAT_ALIASES = {
    "json": FHIR_JSON,
    FHIR_JSON: FHIR_JSON,
    "application/json+fhir": FHIR_JSON,
    "application/json": "application/json",
}


_BASES: dict[tuple, str] = {}
_MAX_BASES = 256  # the Host header is the client's: a bounded memo, cleared when full


def base_url(request: Request) -> str:
    """The absolute FHIR base of this request (scheme, host and base path as the client used them).
    Starlette builds it from the scope's scheme, server, root path and ``Host`` header, the same
    for most requests: remembered per those, it is not parsed and rebuilt for each one."""
    scope = request.scope
    host = next((v for k, v in scope["headers"] if k == b"host"), None)
    key = (scope.get("scheme"), scope.get("server"), scope.get("app_root_path", scope.get("root_path")), host)
    found = _BASES.get(key)
    if found is None:
        if len(_BASES) >= _MAX_BASES:
            _BASES.clear()
        found = _BASES[key] = str(request.base_url).rstrip("/")
    return found + request.app.state.settings.base_path


def request_url(request: Request) -> str:
    """This request's absolute URL without its query."""
    url = request.url
    return f"{url.scheme}://{url.netloc}{url.path}"


def accepted_media(accept: str) -> str | None:
    """The JSON media type an ``Accept`` header allows (``application/fhir+json`` first), or None."""
    if not accept:
        return FHIR_JSON
    kinds = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    if any(k in (FHIR_JSON, "application/json+fhir") for k in kinds):
        return FHIR_JSON
    if "application/json" in kinds:
        return "application/json"
    if any(k.endswith("/*") or k == "*/*" or "json" in k for k in kinds):
        return FHIR_JSON
    return None


def response_media_type(request: Request) -> str:
    fmt = request.query_params.get("_format") if request.scope.get("query_string") else None
    if fmt:
        chosen = _FORMAT_ALIASES.get(fmt.split(";")[0].strip().lower())
        if chosen is None:
            raise FhirError(
                406,
                "not-supported",
                f"_format={fmt[:40]} is not supported: this server serves JSON only (_format=json)",
            )
        return chosen
    accept = header(request, "accept") or ""
    chosen = accepted_media(accept)
    if chosen is not None:
        return chosen
    raise FhirError(
        406,
        "not-supported",
        f"Accept: {accept[:80]} cannot be served: this server serves application/fhir+json or application/json",
    )


async def read_body(request: Request, allowed: set[str] | None = None) -> bytes:
    """The raw body, after the content type and size checks (415, 413)."""
    ctype = header(request, "content-type")
    if ctype:
        kind = ctype.split(";")[0].strip().lower()
        if kind not in (allowed or _JSON_TYPES):
            raise FhirError(
                415,
                "not-supported",
                f"Content-Type '{ctype[:80]}' is not supported: send application/fhir+json or application/json",
            )
    limit: int = request.app.state.settings.max_body_bytes
    declared = header(request, "content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    receive = request.receive  # read here, not by ``request.stream()``: its async generator's steps
    while True:  # and hooks were a tenth of a create's HTTP handling; the body is read only once
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        if message["type"] != "http.request":
            continue
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _too_large(limit: int) -> FhirError:
    return FhirError(413, "too-costly", f"The request body is larger than this server's limit of {limit} bytes")


def parse_json(raw: bytes) -> object:
    """The parsed body; 400 when it is not JSON, or not FHIR JSON (repeated keys, control
    characters: every problem with its location, see ``json_body``)."""
    return parse_json_body(raw)


def prefer(request: Request, key: str) -> str | None:
    raw = header(request, "prefer")
    if not raw:  # most requests: nothing to split
        return None
    for part in raw.split(","):
        for token in part.split(";"):
            name, _, value = token.strip().partition("=")
            if name.strip().lower() == key:
                return value.strip().strip('"')
    return None


def lenient(request: Request) -> bool:
    handling = prefer(request, "handling")
    if handling is not None:
        return handling.lower() == "lenient"
    return request.app.state.settings.validation == "lenient"


def if_match(request: Request) -> int | None:
    raw = header(request, "if-match")
    if raw is None:
        return None
    version = parse_etag(raw)
    if version is None:
        raise invalid(f"If-Match '{raw[:40]}' is not a version ETag such as W/\"3\"")
    return version


def if_none_match(request: Request) -> set[str]:
    raw = header(request, "if-none-match")
    if not raw:
        return set()
    out = set()
    for part in raw.split(","):
        part = part.strip()
        if part == "*":
            out.add("*")
            continue
        version = parse_etag(part)
        if version is not None:
            out.add(str(version))
    return out


# Content-Type -> patch kind (http.html#patch); application/json carries FHIRPath Patch Parameters.
PATCH_KINDS = {
    JSON_PATCH: "json-patch",
    MERGE_PATCH: "merge-patch",
    FHIR_JSON: "fhirpath",
    "application/json": "fhirpath",
}


def patch_kind(request: Request, what: str) -> str:
    """The patch format the Content-Type names (415 for any other); ``what`` names the request."""
    ctype = request.headers.get("content-type", "")
    kind = PATCH_KINDS.get(ctype.split(";")[0].strip().lower()) if ctype else "fhirpath"
    if kind is None:
        raise FhirError(
            415,
            "not-supported",
            f"PATCH {what}: Content-Type '{ctype[:80]}' is not a patch format; send "
            f"{JSON_PATCH} (JSON Patch), {MERGE_PATCH} (JSON Merge Patch) or {FHIR_JSON} "
            "(a Parameters resource: FHIRPath Patch)",
        )
    return kind


def write_context(request: Request, method: str, url: str) -> RequestContext:
    """What a write records about its request (see app/api/request_meta.py for the id and address)."""
    return RequestContext(
        method=method,
        url=url,
        client_addr=client_address(request),
        request_id=request_id_of(request),
        **write_identity(request),
    )


def fhir_response(
    request: Request, body: bytes | None, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    media = response_media_type(request)
    return FhirResponse(body or b"", status, media, headers)


class FhirResponse(Response):
    """Starlette's ``Response`` of a bytes body, its headers built as
    ``Response.init_headers`` builds them (given ones first, names in lower case, then
    ``content-length`` unless the status has no body, then ``content-type``) without its general
    cases: a header name's bytes are remembered, the list is made once. Headers that name the
    length or type themselves take Starlette's way."""

    def __init__(self, body: bytes, status: int, media: str, headers: dict[str, str] | None = None) -> None:
        self.status_code = status
        self.media_type = media
        self.background = None
        self.body = body
        if media.startswith("text/"):  # (a charset added)
            self.init_headers(headers)
            return
        raw: list[tuple[bytes, bytes]] = []
        if headers:
            names = _HEADER_NAMES
            for key, value in headers.items():
                name = names.get(key)
                if name is None:
                    name = key.lower().encode("latin-1")
                    if name in (b"content-length", b"content-type"):
                        self.init_headers(headers)
                        return
                    if len(names) < 256:  # header names are this server's own: a handful
                        names[key] = name
                raw.append((name, value.encode("latin-1")))
        if not (status < 200 or status in (204, 304)):
            raw.append((b"content-length", str(len(body)).encode("latin-1")))
        raw.append((b"content-type", media.encode("latin-1")))
        self.raw_headers = raw


_HEADER_NAMES: dict[str, bytes] = {}


def etag(version: int) -> str:
    """The weak ETag of a resource version (``W/"3"``), as every response gives it."""
    return f'W/"{version}"'


def version_headers(version: int, last_updated: datetime) -> dict[str, str]:
    return {"ETag": etag(version), "Last-Modified": format_http_date(last_updated)}


def outcome_bytes(issues: list[Issue]) -> bytes:
    return orjson.dumps(operation_outcome(issues))
