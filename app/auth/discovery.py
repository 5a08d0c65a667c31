"""How clients find the authorization server: ``GET [base]/.well-known/smart-configuration``
(https://hl7.org/fhir/smart-app-launch/conformance.html) and the ``rest.security`` block of the
CapabilityStatement (https://hl7.org/fhir/R4/capabilitystatement-definitions.html#CapabilityStatement.rest.security).

Both describe the configured external authorization server; both are None when authorization is off.
Launch capabilities (standalone patient launch, the authorization-code grant) are advertised only
when an authorization endpoint is configured; backend services (client credentials) need only the
token endpoint.
"""

from __future__ import annotations

from app.settings import Settings

SECURITY_SERVICE_SYSTEM = "http://terminology.hl7.org/CodeSystem/restful-security-service"
OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
PERMISSION_CAPABILITIES = (
    "client-confidential-asymmetric",
    "permission-v1",
    "permission-v2",
    "permission-patient",
    "permission-user",
)
LAUNCH_CAPABILITIES = ("launch-standalone", "context-standalone-patient")
SCOPES_SUPPORTED = (
    "launch/patient",
    "patient/*.rs",
    "patient/*.cruds",
    "user/*.rs",
    "user/*.cruds",
    "system/*.rs",
    "system/*.cruds",
    "patient/*.read",
    "patient/*.*",
    "user/*.read",
    "user/*.*",
    "system/*.read",
    "system/*.*",
)


def _jwks_uri(settings: Settings) -> str | None:
    jwks = settings.auth_jwks or ""
    return jwks if jwks.startswith(("https://", "http://")) else None


def smart_configuration(settings: Settings) -> dict | None:
    """The ``.well-known/smart-configuration`` document; None when authorization is off."""
    if not settings.auth_issuer:
        return None
    launch = bool(settings.auth_authorization_endpoint)
    out: dict = {"issuer": settings.auth_issuer}
    if (jwks_uri := _jwks_uri(settings)) is not None:
        out["jwks_uri"] = jwks_uri
    if launch:
        out["authorization_endpoint"] = settings.auth_authorization_endpoint
    if settings.auth_token_endpoint:
        out["token_endpoint"] = settings.auth_token_endpoint
    out["token_endpoint_auth_methods_supported"] = ["private_key_jwt"]
    out["grant_types_supported"] = (["authorization_code"] if launch else []) + ["client_credentials"]
    out["scopes_supported"] = list(SCOPES_SUPPORTED)
    out["response_types_supported"] = ["code"] if launch else []
    out["capabilities"] = list(PERMISSION_CAPABILITIES) + (list(LAUNCH_CAPABILITIES) if launch else [])
    out["code_challenge_methods_supported"] = ["S256"]
    return out


def security_block(settings: Settings) -> dict | None:
    """``CapabilityStatement.rest[0].security``; None when authorization is off."""
    if not settings.auth_issuer:
        return None
    uris = [("token", settings.auth_token_endpoint), ("authorize", settings.auth_authorization_endpoint)]
    block: dict = {
        "service": [
            {
                "coding": [{"system": SECURITY_SERVICE_SYSTEM, "code": "SMART-on-FHIR", "display": "SMART-on-FHIR"}],
                "text": "OAuth2 bearer tokens (SMART App Launch); see .well-known/smart-configuration",
            }
        ],
        "description": f"Requests need a bearer JWT issued by {settings.auth_issuer} for audience "
        f"{settings.auth_audience}, with SMART v1 or v2 scopes.",
    }
    extension = [{"url": name, "valueUri": uri} for name, uri in uris if uri]
    if extension:
        block["extension"] = [{"url": OAUTH_URIS, "extension": extension}]
    return block
