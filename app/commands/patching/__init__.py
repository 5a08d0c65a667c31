"""Applying a PATCH body to a resource, as pure functions over FHIR JSON: JSON Patch (RFC 6902,
https://www.rfc-editor.org/rfc/rfc6902), JSON Merge Patch (RFC 7386) and FHIRPath Patch (https://hl7.org/fhir/R4/fhirpatch.html).
Both return a new resource and raise only ``FhirError`` (400 for a malformed patch, 422 for one that
cannot be applied to this resource or that would change its type or id)."""

from app.commands.patching.fhirpath_patch import apply_fhirpath_patch
from app.commands.patching.json_patch import apply_json_patch
from app.commands.patching.merge_patch import apply_merge_patch

__all__ = ["apply_fhirpath_patch", "apply_json_patch", "apply_merge_patch"]
