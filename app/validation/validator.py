"""Entry point: ``validate_resource`` checks one JSON value against the R4 definitions.

See https://hl7.org/fhir/R4/validation.html. Structure, cardinality, types, primitive formats,
required bindings and invariants; every issue found is returned, none is raised. Issues with
code ``structure`` (``JSON_LEVEL``) say the JSON cannot be read as the resource (400); the
others are about its content (422).
"""

from __future__ import annotations

from app.errors import Issue
from app.validation import compile as compiled
from app.validation.walker import JSON_LEVEL, UNKNOWN_ELEMENT, Walker

__all__ = ["JSON_LEVEL", "UNKNOWN_ELEMENT", "is_json_level", "rejection_status", "validate_resource", "warm"]


def validate_resource(resource: object, *, lenient: bool = False, invariants: bool = True) -> list[Issue]:
    """All issues for one resource (empty, or only warnings, when valid). Never raises.

    ``lenient`` reports unknown elements as warnings instead of errors. ``invariants=False``
    skips the FHIRPath constraints (used by the benchmark to show their cost)."""
    walker = Walker(lenient=lenient, with_invariants=invariants)
    try:
        walker.resource(resource, None)
    except RecursionError:
        walker.add("structure", "$this", "the resource is nested too deeply to validate")
    except Exception as exc:
        walker.add("invalid", "$this", f"the resource could not be validated ({type(exc).__name__}: {exc})")
    return walker.issues


def warm() -> None:
    """Compile the checkers for every resource type and datatype (call once at start-up)."""
    compiled.warm()


def is_json_level(issue: Issue) -> bool:
    """An error in the JSON itself (wrong JSON type, array versus single value, null, empty
    object or array, control character), rather than in the resource's content."""
    return issue.code == JSON_LEVEL and issue.severity in ("error", "fatal")


def rejection_status(errors: list[Issue]) -> int:
    """400 when any error is JSON-level (the body is not FHIR JSON), else 422 (content)."""
    return 400 if any(is_json_level(i) for i in errors) else 422
