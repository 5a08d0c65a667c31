"""The Patient compartment (https://hl7.org/fhir/R4/compartmentdefinition-patient.html), read from
the R4 CompartmentDefinition in ``spec/fhir/r4/compartmentdefinition-patient.json``.

For each resource type the definition lists the search parameters whose references put a resource
in a patient's compartment (Observation: ``subject``, ``performer``); types it lists without
parameters are outside every patient's compartment. A Patient is in its own compartment (by id)
and in that of the patients it ``link``s to.

:func:`in_compartment` checks a resource (for writes) with the search index's own extraction
(:func:`app.projections.search_values.extract_values`), so it agrees with a search restricted by
:func:`compartment_criteria` (the conditions, OR-ed, that a search adds).
"""

from __future__ import annotations

from functools import cache

from app.fhirspec.loader import load_json
from app.fhirspec.search_parameters import params_for
from app.projections.search_values import ReferenceValue, extract_values

DEFINITION_FILE = "compartmentdefinition-patient.json"


@cache
def _definition() -> dict[str, tuple[str, ...]]:
    definition = load_json(DEFINITION_FILE)
    if definition.get("resourceType") != "CompartmentDefinition" or definition.get("code") != "Patient":
        raise ValueError(f"{DEFINITION_FILE} is not the Patient CompartmentDefinition")
    return {entry["code"]: tuple(entry.get("param", ())) for entry in definition.get("resource", [])}


def compartment_params(resource_type: str) -> tuple[str, ...]:
    """The search parameters linking ``resource_type`` to a patient; ``()`` if the type is outside
    the Patient compartment. For ``Patient`` also the patient itself, by ``_id``."""
    params = _definition().get(resource_type, ())
    return ("_id", *params) if resource_type == "Patient" else params


def compartment_criteria(resource_type: str, patient_id: str) -> tuple[tuple[str, str], ...]:
    """``(param, value)`` search conditions, any one of which puts a ``resource_type`` resource in
    ``patient_id``'s compartment (``("subject", "Patient/1")``, ``("_id", "1")`` for Patient)."""
    return tuple(
        (param, patient_id if param == "_id" else f"Patient/{patient_id}")
        for param in compartment_params(resource_type)
    )


def _names_patient(value: object, patient_id: str) -> bool:
    return isinstance(value, ReferenceValue) and value.type == "Patient" and value.id == patient_id


def in_compartment(resource: dict, patient_id: str) -> bool:
    """Is ``resource`` in the compartment of Patient ``patient_id``? False for types outside the
    Patient compartment."""
    kind = resource.get("resourceType")
    if not isinstance(kind, str):
        return False
    if kind == "Patient" and resource.get("id") == patient_id:
        return True
    params = params_for(kind)
    for code in compartment_params(kind):
        param = params.get(code)
        if code == "_id" or param is None or param.type != "reference":
            continue
        if any(_names_patient(v, patient_id) for v in extract_values(resource, param)):
            return True
    return False
