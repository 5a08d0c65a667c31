"""Compartment search (https://hl7.org/fhir/R4/search.html#compartments): ``GET [base]/Patient/1/
Observation?…`` is a search of Observation confined to Patient/1's compartment, i.e. ANDed with
the OR of the compartment's parameters for the type (``subject=Patient/1`` or
``performer=Patient/1``), as the R4 CompartmentDefinitions give them
(:mod:`app.fhirspec.compartments`). The confinement is a :class:`Restriction` built by the search
criteria code, so it is bound arguments and the same SQL as the token restrictions.

A token confined to one patient's compartment asking for another patient's compartment is a 403
(its results would always be empty)."""

from __future__ import annotations

from app.auth.scopes import Decision
from app.errors import FhirError
from app.fhirspec.compartments import compartments, definition_url, is_compartment, member_criteria, member_params
from app.identity import require_id, require_type
from app.queries.search.criteria import resolve
from app.queries.search.model import AccessGroup, Restriction


def require_compartment(compartment: str, focal_id: str) -> None:
    """404 for an unknown type, 400 for a type that names no compartment or a malformed id."""
    require_type(compartment)
    if not is_compartment(compartment):
        raise FhirError(
            400,
            "not-supported",
            f"{compartment} is not a compartment: compartment searches ([base]/[compartment]/[id]/[type]) "
            f"take one of {', '.join(compartments())}",
        )
    require_id(focal_id)


def require_member(compartment: str, resource_type: str) -> None:
    """404 for an unknown type, 400 for a type outside the compartment."""
    require_type(resource_type)
    if not member_params(compartment, resource_type):
        raise FhirError(
            400,
            "not-supported",
            f"{resource_type} resources are never in a {compartment} compartment (R4 CompartmentDefinition "
            f"{definition_url(compartment)}); search them with [base]/{resource_type}?…",
        )


def compartment_restriction(compartment: str, focal_id: str, resource_type: str) -> Restriction:
    """The condition that a ``resource_type`` resource is in ``compartment/focal_id``'s compartment."""
    criteria = tuple(resolve(resource_type, p, v) for p, v in member_criteria(compartment, focal_id, resource_type))
    why = f"in the compartment of {compartment}/{focal_id}"
    return Restriction(resource_type, (AccessGroup(None, criteria, (), why),))


def require_reach(decision: Decision, compartment: str, focal_id: str) -> None:
    """403 when the token is confined to patients' compartments none of which is ``Patient/focal_id``."""
    if compartment != "Patient" or not decision.allowed:
        return
    patients = {a.patient for a in decision.alternatives}
    if None not in patients and focal_id not in patients:
        raise FhirError(
            403,
            "forbidden",
            f"The token's scopes reach only the compartment of Patient/{sorted(patients)[0][:64]}, not that of "
            f"Patient/{focal_id}",
        )
