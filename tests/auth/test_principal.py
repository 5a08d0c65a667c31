"""The principal a verified token gives: identity, scopes kind, patient context, admin scope."""

from __future__ import annotations

import pytest

from app.auth.principal import principal_from_claims
from app.errors import FhirError
from app.settings import Settings


def test_patient_launch():
    principal = principal_from_claims(
        {"sub": "pat-user", "azp": "portal", "scope": "launch/patient openid patient/*.rs", "patient": "p1"},
        "system/*.*",
    )
    assert (principal.sub, principal.client_id, principal.kind, principal.patient) == (
        "pat-user",
        "portal",
        "patient",
        "p1",
    )
    assert principal.actor == "pat-user" and not principal.admin
    decision = principal.require("Observation", "search-type")
    assert decision.alternatives[0].patient == "p1"
    with pytest.raises(FhirError) as caught:
        principal.require("Observation", "create")
    assert caught.value.status == 403
    assert "needs scope patient/Observation.c or user/Observation.c or system/Observation.c" in caught.value.diagnostics


def test_backend_service():
    principal = principal_from_claims({"client_id": "etl", "scp": ["system/*.cruds"]}, "system/*.*")
    assert principal.kind == "system" and principal.admin
    assert principal.actor == "client:etl"
    assert principal.require("Patient", "delete").unrestricted


def test_kinds():
    assert principal_from_claims({"scope": "user/*.rs system/*.rs"}, "system/*.*").kind == "mixed"
    assert principal_from_claims({"scope": "openid"}, "system/*.*").kind == "none"
    assert principal_from_claims({}, "system/*.*").kind == "none"


def test_settings_require_audience_and_jwks_with_issuer():
    with pytest.raises(ValueError, match="FHIRLEDGER_AUTH_AUDIENCE and FHIRLEDGER_AUTH_JWKS must be set"):
        Settings(auth_issuer="https://auth.example.org")
