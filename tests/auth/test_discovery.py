"""Discovery: .well-known/smart-configuration and the CapabilityStatement security block."""

from __future__ import annotations

from app.auth.discovery import security_block, smart_configuration
from app.settings import Settings

CONFIGURED = Settings(
    auth_issuer="https://auth.example.org",
    auth_audience="https://fhir.example.org/fhir",
    auth_jwks="https://auth.example.org/jwks.json",
    auth_authorization_endpoint="https://auth.example.org/authorize",
    auth_token_endpoint="https://auth.example.org/token",
)


def test_smart_configuration():
    doc = smart_configuration(CONFIGURED)
    assert doc is not None
    assert doc["issuer"] == "https://auth.example.org"
    assert doc["jwks_uri"] == "https://auth.example.org/jwks.json"
    assert doc["authorization_endpoint"] == "https://auth.example.org/authorize"
    assert doc["token_endpoint"] == "https://auth.example.org/token"
    assert doc["grant_types_supported"] == ["authorization_code", "client_credentials"]
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["response_types_supported"] == ["code"]
    for capability in (
        "client-confidential-asymmetric",
        "context-standalone-patient",
        "permission-v1",
        "permission-v2",
        "permission-patient",
        "permission-user",
        "launch-standalone",
    ):
        assert capability in doc["capabilities"]
    assert {"patient/*.rs", "user/*.cruds", "system/*.read", "launch/patient"} <= set(doc["scopes_supported"])


def test_backend_services_only_and_local_jwks():
    settings = CONFIGURED.model_copy(update={"auth_authorization_endpoint": None, "auth_jwks": "/etc/jwks.json"})
    doc = smart_configuration(settings)
    assert doc is not None
    assert "jwks_uri" not in doc and "authorization_endpoint" not in doc  # a file path is no URI for clients
    assert doc["grant_types_supported"] == ["client_credentials"]
    assert "launch-standalone" not in doc["capabilities"]


def test_security_block():
    block = security_block(CONFIGURED)
    assert block is not None
    assert block["service"][0]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
        "code": "SMART-on-FHIR",
        "display": "SMART-on-FHIR",
    }
    (ext,) = block["extension"]
    assert ext["url"] == "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
    assert ext["extension"] == [
        {"url": "token", "valueUri": "https://auth.example.org/token"},
        {"url": "authorize", "valueUri": "https://auth.example.org/authorize"},
    ]


def test_nothing_when_auth_is_off():
    assert smart_configuration(Settings()) is None
    assert security_block(Settings()) is None
