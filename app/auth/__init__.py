"""Authorization (SMART on FHIR): bearer-token validation, scopes, the patient compartment,
refusals and discovery. What routes call:

- ``principal = await authenticator_for(settings).authenticate(request.headers.get("authorization"))``
- ``decision = principal.require(resource_type, interaction)``: raises the 403, else says how the
  request is restricted (``decision.alternatives``: patient compartment and scope query params);
- ``in_compartment(resource, principal.patient)`` for writes under patient/ scopes;
- ``compartment_criteria(resource_type, patient_id)`` for searches (conditions to OR);
- ``smart_configuration(settings)`` and ``security_block(settings)`` for discovery.
"""

from app.auth.compartment import compartment_criteria, compartment_params, in_compartment
from app.auth.discovery import security_block, smart_configuration
from app.auth.outcomes import admin_required, forbidden, invalid_token, missing_token
from app.auth.principal import OPEN, Authenticator, Principal, authenticate, authenticator_for
from app.auth.scopes import INTERACTION_LETTERS, Access, Decision, Grants, Scope, parse_scope, parse_scopes

__all__ = [
    "INTERACTION_LETTERS",
    "OPEN",
    "Access",
    "Authenticator",
    "Decision",
    "Grants",
    "Principal",
    "Scope",
    "admin_required",
    "authenticate",
    "authenticator_for",
    "compartment_criteria",
    "compartment_params",
    "forbidden",
    "in_compartment",
    "invalid_token",
    "missing_token",
    "parse_scope",
    "parse_scopes",
    "security_block",
    "smart_configuration",
]
