"""The five R4 compartments (https://hl7.org/fhir/R4/compartmentdefinition.html): Patient,
Encounter, RelatedPerson, Practitioner and Device, read from the CompartmentDefinitions in
``profiles-resources.json``; the Patient compartment from ``compartmentdefinition-patient.json``, the
copy the authorization layer confines patient tokens with (:mod:`app.auth.compartment`), so that a
compartment search and a patient token agree (the two copies differ on Encounter and Task).

For each compartment, the definition lists per resource type the search parameters whose
references put a resource in the compartment of one focal resource (Observation in a patient's:
``subject``, ``performer``); types listed without parameters are in no such compartment. The
focal resource is in its own compartment (``{def}`` in the definitions, ``_id`` here).
"""

from __future__ import annotations

from functools import cache

from app.fhirspec.loader import bundle_resources, load_json

DEF = "{def}"  # the definitions' name for "the focal resource itself"
PATIENT_FILE = "compartmentdefinition-patient.json"


def _members(definition: dict) -> dict[str, tuple[str, ...]]:
    return {e["code"]: tuple(e.get("param", ())) for e in definition.get("resource", []) if e.get("param")}


@cache
def _loaded() -> dict[str, dict]:
    out = {
        r["code"]: r
        for r in bundle_resources("profiles-resources.json")
        if r["resourceType"] == "CompartmentDefinition" and r.get("search")
    }
    out["Patient"] = load_json(PATIENT_FILE)
    return out


@cache
def _definitions() -> dict[str, dict[str, tuple[str, ...]]]:
    return {code: _members(r) for code, r in _loaded().items()}


def definition_url(compartment: str) -> str:
    """The canonical URL of a compartment's definition, e.g. http://hl7.org/fhir/CompartmentDefinition/patient."""
    return _loaded()[compartment]["url"]


def compartments() -> tuple[str, ...]:
    """The compartment types, sorted: Device, Encounter, Patient, Practitioner, RelatedPerson."""
    return tuple(sorted(_definitions()))


def is_compartment(name: str) -> bool:
    return name in _definitions()


def member_params(compartment: str, resource_type: str) -> tuple[str, ...]:
    """The search parameters linking ``resource_type`` to a ``compartment`` resource, ``_id`` for
    the focal type itself (first); ``()`` when the type is outside the compartment."""
    params = tuple(p for p in _definitions()[compartment].get(resource_type, ()) if p != DEF)
    return ("_id", *params) if resource_type == compartment else params


def member_types(compartment: str) -> tuple[str, ...]:
    """The resource types that can be in a ``compartment`` resource's compartment: the focal type
    first, then the others sorted."""
    others = sorted(t for t in _definitions()[compartment] if t != compartment)
    return (compartment, *others)


def member_criteria(compartment: str, focal_id: str, resource_type: str) -> tuple[tuple[str, str], ...]:
    """``(param, value)`` search conditions, any one of which puts a ``resource_type`` resource in
    the compartment of ``compartment/focal_id`` (``("subject", "Patient/1")``, ``("_id", "1")``)."""
    return tuple(
        (p, focal_id if p == "_id" else f"{compartment}/{focal_id}") for p in member_params(compartment, resource_type)
    )
