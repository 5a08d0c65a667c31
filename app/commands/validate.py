"""Validation of every written resource against the R4 StructureDefinitions (see app/validation).

Strict (the default): any error → 422 with every issue, or 400 (still with every issue) when
the JSON itself cannot be read as the resource (wrong JSON types, array versus single value,
control characters). Lenient (``Prefer: handling=lenient`` or ``FHIRLEDGER_VALIDATION=lenient``):
unknown elements are dropped before the write and reported as warnings; everything else is
still an error. Nothing that is not valid R4 is ever stored."""

from __future__ import annotations

import re

from app.errors import FhirError, Issue
from app.validation import JSON_LEVEL, UNKNOWN_ELEMENT, rejection_status, validate_resource
from app.validation.fast_accept import accepts

_SEGMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:\[(\d+)\])?$")


def check_resource(resource: dict, *, lenient: bool = False) -> list[Issue]:
    """Raise 400/422 when the resource is not valid FHIR R4; in lenient mode drop unknown elements
    (in place) and return a warning for each. A resource the generated checks accept (no error, no
    unknown element: :mod:`app.validation.fast_accept`) is not walked."""
    if accepts(resource):
        return []
    issues = validate_resource(resource, lenient=lenient)
    errors = [i for i in issues if i.severity in ("error", "fatal")]
    unknown = [i for i in issues if i.severity == "warning" and i.code == UNKNOWN_ELEMENT and i.expression]
    if errors:
        status = rejection_status(errors)
        what = "not FHIR R4 JSON" if status == 400 else "not valid FHIR R4"
        raise FhirError(
            status,
            JSON_LEVEL if status == 400 else errors[0].code,
            f"The {resource.get('resourceType', 'resource')} is {what}: {len(errors)} error(s); "
            "see the issues for each location",
            issues=errors + unknown,
        )
    if not lenient:
        return []
    for issue in sorted(unknown, key=lambda i: _path_key(i.expression[0]), reverse=True):
        _drop(resource, issue.expression[0])  # the last first, so earlier indexes stay right
    return [Issue("warning", i.code, f"{i.diagnostics}; dropped (lenient handling)", i.expression) for i in unknown]


def _path_key(expression: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"[\[\].]+", expression) if t]


def _drop(resource: dict, expression: str) -> None:
    """Remove the element at a FHIRPath location such as ``Patient.name[0].foo`` (a primitive's
    extension object ``_birthDate`` is addressed as ``Patient.birthDate.x``), then any object the
    removal left empty."""
    trail: list[tuple[object, object]] = []  # (container, key or index) from the root down
    node: object = resource
    for segment in expression.split(".")[1:]:
        m = _SEGMENT.match(segment)
        if not m or not isinstance(node, dict):
            return
        key, index = m.group(1), m.group(2)
        if f"_{key}" in node and (key not in node or not isinstance(node[key], dict | list)):
            key = f"_{key}"
        if key not in node:
            return
        trail.append((node, key))
        node = node[key]
        if index is not None:
            if not isinstance(node, list) or int(index) >= len(node):
                return
            trail.append((node, int(index)))
            node = node[int(index)]
    while trail:
        container, key = trail.pop()
        if isinstance(container, dict):
            container.pop(key, None)  # type: ignore[call-overload]
        elif isinstance(container, list) and isinstance(key, int):
            container.pop(key)
        if container:  # stop once the container still holds something
            return
