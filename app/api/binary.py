"""Binary in its native content type (https://hl7.org/fhir/R4/http.html#binary and binary.html):
a create or update whose Content-Type is not a FHIR format stores the raw bytes as a Binary
resource; a read whose Accept asks for no FHIR format answers the raw bytes with the Binary's
``contentType``."""

from __future__ import annotations

import base64
import binascii

import orjson
from fastapi import Request
from fastapi.responses import Response

from app.api.http import read_body
from app.errors import FhirError

# Content types that carry the Binary *resource* (JSON), not its content.
RESOURCE_TYPES = frozenset({"application/fhir+json", "application/json+fhir", "application/json", "text/json"})
_FHIR_FORMATS = RESOURCE_TYPES | {"application/fhir+xml", "application/xml+fhir", "application/xml", "text/xml"}
OCTET_STREAM = "application/octet-stream"


def _kind(media_type: str) -> str:
    return media_type.split(";")[0].strip().lower()


async def native_binary_body(request: Request, resource_id: str | None = None) -> dict | None:
    """The Binary resource made from a request body in its native content type, or None when the
    body is a FHIR resource (JSON) to be read as usual."""
    ctype = (request.headers.get("content-type") or "").strip()
    if not ctype or _kind(ctype) in RESOURCE_TYPES:
        return None
    raw = await read_body(request, {_kind(ctype)})
    binary: dict = {"resourceType": "Binary", "contentType": " ".join(ctype.split())}
    if resource_id is not None:
        binary["id"] = resource_id
    context = request.headers.get("x-security-context")
    if context:
        binary["securityContext"] = {"reference": context.strip()}
    if raw:
        binary["data"] = base64.b64encode(raw).decode("ascii")
    return binary


def wants_resource(request: Request) -> bool:
    """True when the client asks for a FHIR format (``_format`` or a FHIR type in Accept)."""
    if request.query_params.get("_format"):
        return True
    kinds = [_kind(k) for k in request.headers.get("accept", "").split(",") if k.strip()]
    return any(k in _FHIR_FORMATS or "fhir" in k for k in kinds)


def _acceptable(accept: str, content_type: str) -> bool:
    if not accept.strip():
        return True
    major = content_type.split("/")[0]
    for kind in (_kind(k) for k in accept.split(",")):
        if kind in ("*/*", content_type, f"{major}/*"):
            return True
    return False


def binary_content_response(request: Request, resource: bytes, headers: dict[str, str]) -> Response | None:
    """The raw content of a stored Binary when the client asks for no FHIR format, else None."""
    if wants_resource(request):
        return None
    binary = orjson.loads(resource)
    content_type = str(binary.get("contentType") or OCTET_STREAM)
    accept = request.headers.get("accept", "")
    if not _acceptable(accept, _kind(content_type)):
        raise FhirError(
            406,
            "not-supported",
            f"Binary/{binary.get('id')} holds {content_type}, which Accept: {accept[:80]} does not admit; ask for "
            f"{content_type}, */*, or application/fhir+json for the Binary resource",
        )
    try:
        content = base64.b64decode(str(binary.get("data", "")), validate=True)
    except binascii.Error:
        raise FhirError(
            500, "exception", f"Binary/{binary.get('id')} has data that is not valid base64; read it as FHIR JSON"
        ) from None
    if binary.get("securityContext", {}).get("reference"):
        headers = {**headers, "X-Security-Context": binary["securityContext"]["reference"]}
    return Response(content=content, status_code=200, media_type=content_type, headers=headers)
