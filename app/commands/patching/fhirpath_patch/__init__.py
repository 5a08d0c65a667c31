"""FHIRPath Patch (https://hl7.org/fhir/R4/fhirpatch.html): a ``Parameters`` resource whose
``operation`` parameters add, insert, delete, replace or move elements named by FHIRPath, applied
in order to a deep copy of the resource; the first failing operation fails the whole patch.

``parameters`` reads the Parameters resource (400 ``invalid`` when malformed), ``path`` parses an
operation's path, ``navigation`` finds the elements it names, ``operation_values`` builds the values to
write, and ``operations`` applies each operation (422 ``processing`` when it cannot be applied).
"""

from __future__ import annotations

import copy

from app.commands.patching.fhirpath_patch.parameters import parse_operations
from app.commands.patching.fhirpath_patch.path import parse_path
from app.commands.patching.json_patch import check_identity
from app.errors import FhirError, invalid

__all__ = ["apply_fhirpath_patch", "parse_operations", "parse_path"]


def apply_fhirpath_patch(resource: dict, parameters: object) -> dict:
    """A new resource: the FHIRPath Patch ``parameters`` (a parsed Parameters resource) applied to
    a copy of ``resource``."""
    try:
        operations = parse_operations(parameters)
        document = copy.deepcopy(resource)
        for operation in operations:
            operation.apply(document)
    except FhirError:
        raise
    except Exception as exc:  # the contract: a bad patch is only ever a FhirError
        raise invalid(f"The FHIRPath Patch could not be applied ({type(exc).__name__})") from None
    return check_identity(resource, document)
