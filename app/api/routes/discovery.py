"""``GET [base]/.well-known/smart-configuration``: how clients find the authorization server
(https://hl7.org/fhir/smart-app-launch/conformance.html). Public.

With authorization off the answer is 404 with an OperationOutcome saying so, as servers without
SMART answer (HAPI): a SMART client probing this URL then knows there is no authorization server to
go to, where an empty document would read as a broken one."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.auth import smart_configuration
from app.errors import not_found

router = APIRouter()


@router.api_route("/.well-known/smart-configuration", methods=["GET", "HEAD"])
async def smart_config(request: Request) -> Response:
    document = smart_configuration(request.app.state.settings)
    if document is None:
        raise not_found(
            "Authorization is off on this server (FHIRLEDGER_AUTH_ISSUER is not set): there is no SMART "
            "authorization server, and requests need no token"
        )
    return Response(orjson.dumps(document), media_type="application/json", headers={"Cache-Control": "max-age=3600"})
