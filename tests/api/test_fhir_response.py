"""``FhirResponse`` (app/api/http.py) is Starlette's ``Response`` of the same body, status, media
type and headers, built with fewer steps: the same headers in the same order."""

from __future__ import annotations

import pytest
from starlette.responses import Response

from app.api.http import FhirResponse

HEADERS = [
    None,
    {},
    {"ETag": 'W/"1"', "Last-Modified": "Tue, 01 Dec 2026 17:00:00 GMT", "Location": "http://h/fhir/Patient/1"},
    {"Content-Location": "http://h/fhir/Patient/1/_history/2", "Warning": '199 fhirledger "x"'},
    {"Content-Type": "application/json"},  # names the type itself: Starlette's way
    {"content-length": "0", "Retry-After": "2"},
]


@pytest.mark.parametrize("headers", HEADERS)
@pytest.mark.parametrize("status", [200, 201, 204, 304, 404])
@pytest.mark.parametrize("media", ["application/fhir+json", "application/json", "text/plain"])
@pytest.mark.parametrize("body", [b"", b'{"resourceType":"Patient"}'])
def test_a_fhir_response_is_starlettes(headers: dict | None, status: int, media: str, body: bytes) -> None:
    for _ in range(2):  # the second time with the header names remembered
        ours = FhirResponse(body, status, media, dict(headers) if headers is not None else None)
        theirs = Response(content=body, status_code=status, media_type=media, headers=headers)
        assert ours.raw_headers == theirs.raw_headers
        assert (ours.body, ours.status_code, ours.media_type, ours.background) == (
            theirs.body,
            theirs.status_code,
            theirs.media_type,
            theirs.background,
        )
