"""Which patients' compartments a resource is in, for Patient- and Group-level bulk export
(https://hl7.org/fhir/uv/bulkdata/export.html): the R4 Patient CompartmentDefinition's parameters
(:func:`app.auth.compartment_params`) evaluated on the resource itself with the search index's own
extraction, so a resource is judged by the version being exported, whatever happened after.
"""

from __future__ import annotations

from app.auth import compartment_params
from app.fhirspec.resource_types import resource_types
from app.fhirspec.search_parameters import params_for
from app.projections.search_values import ReferenceValue, extract_values


def compartment_types() -> list[str]:
    """The resource types that can be in a patient's compartment."""
    return [t for t in resource_types() if compartment_params(t)]


def compartment_patients(resource: dict) -> set[str]:
    """The ids of the patients in whose compartment ``resource`` is (a Patient: itself and the
    patients it links to)."""
    kind = resource.get("resourceType")
    if not isinstance(kind, str):
        return set()
    found: set[str] = set()
    if kind == "Patient" and isinstance(resource.get("id"), str):
        found.add(resource["id"])
    params = params_for(kind)
    for code in compartment_params(kind):
        param = params.get(code)
        if code == "_id" or param is None or param.type != "reference":
            continue
        for value in extract_values(resource, param):
            if isinstance(value, ReferenceValue) and value.type == "Patient" and value.id:
                found.add(value.id)
    return found


def in_compartments(resource: dict, patients: frozenset[str] | None) -> bool:
    """Is ``resource`` in the compartment of one of ``patients`` (None: of any patient)?"""
    found = compartment_patients(resource)
    return bool(found) if patients is None else not found.isdisjoint(patients)
