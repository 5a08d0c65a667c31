"""SMART v1 and v2 scopes: parsing, decisions per interaction, query restrictions, patient context."""

from __future__ import annotations

import pytest

from app.auth.outcomes import forbidden
from app.auth.scopes import Access, parse_scope, parse_scopes


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("patient/Observation.read", ("patient", "Observation", "rs", ())),
        ("user/*.write", ("user", "*", "cud", ())),
        ("system/*.*", ("system", "*", "cruds", ())),
        ("patient/Observation.rs", ("patient", "Observation", "rs", ())),
        ("user/*.cruds", ("user", "*", "cruds", ())),
        ("system/Patient.d", ("system", "Patient", "d", ())),
        ("system/*.read", ("system", "*", "rs", ())),
        ("patient/Observation.rs?category=laboratory", ("patient", "Observation", "rs", (("category", "laboratory"),))),
        (
            "user/Observation.s?category=http://terminology.hl7.org/CodeSystem/observation-category%7Cvital-signs&status=final",
            (
                "user",
                "Observation",
                "s",
                (
                    ("category", "http://terminology.hl7.org/CodeSystem/observation-category|vital-signs"),
                    ("status", "final"),
                ),
            ),
        ),
    ],
)
def test_parse_resource_scopes(text, expected):
    scope = parse_scope(text)
    assert scope is not None
    assert (scope.level, scope.resource_type, scope.letters, scope.query) == expected


@pytest.mark.parametrize(
    "text",
    [
        "openid",
        "fhirUser",
        "launch/patient",
        "offline_access",
        "patient/Observation.sr",  # v2 letters out of order
        "patient/Observation.rr",  # repeated
        "patient/Observation.x",
        "patient/Observation.",
        "admin/Observation.rs",
        "patient/Nonsense.rs",  # not an R4 resource type
        "patient/Observation.read?category=laboratory",  # queries are v2 only
        "patient/Observation.rs?",
    ],
)
def test_not_resource_scopes(text):
    assert parse_scope(text) is None
    assert parse_scopes(text).other == (text,)


def test_scp_array_and_levels():
    grants = parse_scopes(["patient/*.rs", "launch/patient", 7], patient="123")
    assert [s.text for s in grants.scopes] == ["patient/*.rs"]
    assert grants.other == ("launch/patient",)
    assert grants.levels == {"patient"}


@pytest.mark.parametrize(
    ("scope", "interaction", "allowed"),
    [
        ("user/Observation.read", "read", True),
        ("user/Observation.read", "vread", True),
        ("user/Observation.read", "history-instance", True),
        ("user/Observation.read", "history-type", True),
        ("user/Observation.read", "search-type", True),
        ("user/Observation.read", "create", False),
        ("user/Observation.write", "create", True),
        ("user/Observation.write", "update", True),
        ("user/Observation.write", "patch", True),
        ("user/Observation.write", "delete", True),
        ("user/Observation.write", "read", False),
        ("user/Observation.write", "conditional-create", False),  # conditional needs s too
        ("user/Observation.cs", "conditional-create", True),
        ("user/Observation.u", "conditional-update", False),
        ("user/Observation.us", "conditional-patch", True),
        ("user/Observation.ds", "conditional-delete", True),
        ("user/Observation.c user/Observation.s", "conditional-create", True),  # letters from two scopes
        ("user/Observation.r", "search-type", False),
        ("user/Observation.s", "read", False),
        ("user/Patient.cruds", "read", False),  # other type
        ("user/*.r", "read", True),
        ("system/*.*", "delete", True),
    ],
)
def test_interactions_need_letters(scope, interaction, allowed):
    assert parse_scopes(scope).allows("Observation", interaction).allowed is allowed


def test_refusal_names_the_scopes_that_would_allow():
    decision = parse_scopes("user/Patient.rs").allows("Observation", "read")
    assert not decision.allowed
    assert decision.needed == "patient/Observation.r or user/Observation.r or system/Observation.r"
    error = forbidden(decision)
    assert (error.status, error.code) == (403, "forbidden")
    assert "needs scope patient/Observation.r or user/Observation.r or system/Observation.r" in error.diagnostics
    assert 'error="insufficient_scope"' in error.headers["WWW-Authenticate"]
    assert parse_scopes("").allows("Observation", "conditional-update", "user").needed == "user/Observation.us"


def test_level_filter():
    grants = parse_scopes("user/Observation.rs system/Observation.d")
    assert grants.allows("Observation", "read", level="user").allowed
    assert not grants.allows("Observation", "read", level="system").allowed
    assert grants.allows("Observation", "delete", level="system").allowed


def test_patient_scopes_confine_to_the_patient_in_context():
    grants = parse_scopes("patient/Observation.rs patient/Medication.rs patient/Medication.c", patient="p1")
    decision = grants.allows("Observation", "search-type")
    assert decision.allowed and not decision.unrestricted
    assert decision.alternatives == (Access(patient="p1"),)
    # Medication is outside the Patient compartment: readable, not writable with patient/ scopes
    assert grants.allows("Medication", "read").unrestricted
    refused = grants.allows("Medication", "create")
    assert not refused.allowed and "outside the Patient compartment" in refused.note


def test_patient_scopes_without_patient_claim_do_not_count():
    decision = parse_scopes("patient/*.rs").allows("Observation", "read")
    assert not decision.allowed
    assert "no patient claim" in decision.note and "no patient claim" in forbidden(decision).diagnostics


def test_user_scope_lifts_patient_restriction():
    grants = parse_scopes("patient/*.rs user/Observation.rs", patient="p1")
    assert grants.allows("Observation", "read").unrestricted
    assert grants.allows("Encounter", "read").alternatives == (Access(patient="p1"),)


def test_query_restricted_scopes():
    grants = parse_scopes(
        "patient/Observation.rs?category=laboratory patient/Observation.rs?category=vital-signs", patient="p1"
    )
    decision = grants.allows("Observation", "search-type")
    assert decision.allowed and not decision.unrestricted
    assert decision.alternatives == (
        Access("p1", (("category", "laboratory"),)),
        Access("p1", (("category", "vital-signs"),)),
    )
    assert not grants.allows("Observation", "create").allowed
    # an unrestricted scope for the same letters wins over the restricted ones
    wider = parse_scopes("user/Observation.rs?category=laboratory user/Observation.rs")
    assert wider.allows("Observation", "read").unrestricted


def test_conditional_combines_restrictions():
    grants = parse_scopes("user/Observation.c?status=final user/Observation.s?category=laboratory")
    decision = grants.allows("Observation", "conditional-create")
    assert decision.alternatives == (Access(None, (("status", "final"), ("category", "laboratory"))),)


def test_whole_system_needs_wildcard_type():
    assert not parse_scopes("user/Observation.s").allows("*", "search-system").allowed
    assert parse_scopes("user/*.s").allows("*", "search-system").unrestricted
    assert parse_scopes("patient/*.rs", patient="p1").allows("*", "history-system").alternatives == (
        Access(patient="p1"),
    )


@pytest.mark.parametrize(
    ("granted", "covered"),
    [
        ("system/*.*", True),
        ("system/*.cruds", True),
        ("system/*.rs system/*.cud", True),
        ("system/*.rs", False),
        ("user/*.cruds", False),
        ("system/Patient.cruds", False),
        ("system/*.cruds?_tag=x", False),
    ],
)
def test_admin_scope_cover(granted, covered):
    assert parse_scopes(granted).covers("system/*.*") is covered
