"""The Patient compartment from the R4 CompartmentDefinition, and membership of real resources."""

from __future__ import annotations

import pytest

from app.auth.compartment import compartment_criteria, compartment_params, in_compartment


def test_params_come_from_the_compartment_definition():
    assert compartment_params("Observation") == ("subject", "performer")
    assert compartment_params("Encounter") == ("subject",)
    assert compartment_params("AllergyIntolerance") == ("patient", "recorder", "asserter")
    assert compartment_params("Patient") == ("_id", "link")
    assert compartment_params("Medication") == ()
    assert compartment_params("Organization") == ()


def test_search_criteria():
    assert compartment_criteria("Observation", "1") == (("subject", "Patient/1"), ("performer", "Patient/1"))
    assert compartment_criteria("Patient", "1") == (("_id", "1"), ("link", "Patient/1"))
    assert compartment_criteria("Medication", "1") == ()


OBSERVATION = {
    "resourceType": "Observation",
    "id": "bp",
    "status": "final",
    "category": [
        {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}
    ],
    "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
    "subject": {"reference": "Patient/1"},
    "effectiveDateTime": "2024-05-01T10:00:00Z",
    "performer": [{"reference": "Practitioner/dr-a"}],
    "component": [
        {
            "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
            "valueQuantity": {"value": 120, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"},
        }
    ],
}
ENCOUNTER = {
    "resourceType": "Encounter",
    "id": "e1",
    "status": "finished",
    "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
    "subject": {"reference": "http://fhir.example.org/fhir/Patient/2"},
    "participant": [{"individual": {"reference": "Practitioner/dr-a"}}],
}
PATIENT = {
    "resourceType": "Patient",
    "id": "1",
    "name": [{"family": "Chalmers", "given": ["Peter"]}],
    "link": [{"other": {"reference": "Patient/old-7"}, "type": "replaces"}],
}


@pytest.mark.parametrize(
    ("resource", "patient", "inside"),
    [
        (OBSERVATION, "1", True),
        (OBSERVATION, "2", False),
        ({**OBSERVATION, "subject": {"reference": "Group/1"}}, "1", False),  # a Group with id 1 is no patient
        ({**OBSERVATION, "subject": {"reference": "Group/g"}, "performer": [{"reference": "Patient/2"}]}, "2", True),
        ({**OBSERVATION, "subject": {"reference": "1", "type": "Patient"}}, "1", False),  # no id from the string
        ({**OBSERVATION, "subject": {"reference": "Patient/1/_history/3"}}, "1", True),
        ({k: v for k, v in OBSERVATION.items() if k != "subject"}, "1", False),
        (ENCOUNTER, "2", True),
        (ENCOUNTER, "1", False),
        (PATIENT, "1", True),
        (PATIENT, "old-7", True),  # linked: in the compartment of the patient it links to
        (PATIENT, "2", False),
        ({"resourceType": "Medication", "id": "m"}, "1", False),
        ({"resourceType": "Nonsense", "subject": {"reference": "Patient/1"}}, "1", False),
        ({"subject": {"reference": "Patient/1"}}, "1", False),
    ],
)
def test_in_compartment(resource, patient, inside):
    assert in_compartment(resource, patient) is inside
