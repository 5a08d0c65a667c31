"""The compartment registry (app/fhirspec/compartments.py): the five R4 compartments, and a Patient
compartment that agrees with the one patient tokens are confined to (app/auth/compartment.py)."""

from __future__ import annotations

from app.auth import compartment_params
from app.fhirspec.compartments import compartments, definition_url, member_criteria, member_params, member_types
from app.fhirspec.resource_types import resource_types


def test_five_compartments_with_their_canonical_urls() -> None:
    assert compartments() == ("Device", "Encounter", "Patient", "Practitioner", "RelatedPerson")
    assert definition_url("Patient") == "http://hl7.org/fhir/CompartmentDefinition/patient"
    assert definition_url("RelatedPerson") == "http://hl7.org/fhir/CompartmentDefinition/relatedPerson"


def test_patient_compartment_agrees_with_the_authorization_layer() -> None:
    for t in resource_types():
        assert member_params("Patient", t) == compartment_params(t), t
    assert len(member_types("Patient")) == 67 and member_types("Patient")[0] == "Patient"


def test_focal_resource_is_in_its_own_compartment() -> None:
    for c in compartments():
        assert member_types(c)[0] == c and member_params(c, c)[0] == "_id"
    assert member_criteria("Encounter", "e1", "Encounter") == (("_id", "e1"),)
    assert ("performer", "Practitioner/x") in member_criteria("Practitioner", "x", "Observation")
    assert member_params("Patient", "Practitioner") == ()
