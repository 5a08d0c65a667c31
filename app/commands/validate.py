"""Validation of every written resource against the R4 StructureDefinitions (see app/validation)."""

from __future__ import annotations

from app.errors import FhirError, Issue


def _validator():
    try:
        from app.validation import validate_resource
    except ImportError:  # pragma: no cover - while the validator is being built
        return None
    return validate_resource


def check_resource(resource: dict, *, lenient: bool = False) -> list[Issue]:
    """Raise 422 with every error issue when the resource is not valid FHIR; return the warnings."""
    validate = _validator()
    if validate is None:
        return []
    issues = validate(resource, lenient=lenient)
    errors = [i for i in issues if i.severity in ("error", "fatal")]
    if errors:
        raise FhirError(
            422,
            errors[0].code,
            f"The {resource.get('resourceType', 'resource')} is not valid FHIR R4: {len(errors)} error(s)",
            issues=issues,
        )
    return issues
