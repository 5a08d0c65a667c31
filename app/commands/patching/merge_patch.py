"""JSON Merge Patch (RFC 7386, https://www.rfc-editor.org/rfc/rfc7386) applied to a FHIR resource:
a member set to ``null`` is removed, objects merge member by member, anything else (arrays
included) replaces the target's value."""

from __future__ import annotations

from app.errors import invalid


def _merge(target: object, patch: object) -> object:
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            out.pop(name, None)
        else:
            out[name] = _merge(out.get(name), value)
    return out


def apply_merge_patch(resource: dict, patch: object) -> dict:
    """A new resource; the patch of a resource must itself be a JSON object."""
    if not isinstance(patch, dict):
        raise invalid(
            "A JSON Merge Patch of a resource must be a JSON object (members to set, or null to remove); "
            f"got a JSON {type(patch).__name__}"
        )
    result = _merge(resource, patch)
    assert isinstance(result, dict)
    return result
