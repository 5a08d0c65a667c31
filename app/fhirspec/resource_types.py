"""The registry of concrete R4 resource types, read from ``profiles-resources.json``."""

from __future__ import annotations

import re
from functools import lru_cache

from app.fhirspec.derived import derived
from app.fhirspec.loader import bundle_resources


@lru_cache(maxsize=1)
@derived("resource-types")
def resource_types() -> tuple[str, ...]:
    """Names of the concrete (non-abstract) resource types, sorted."""
    names = [
        r["type"]
        for r in bundle_resources("profiles-resources.json")
        if r["resourceType"] == "StructureDefinition"
        and r.get("kind") == "resource"
        and not r.get("abstract")
        and r.get("derivation") == "specialization"
    ]
    return tuple(sorted(names))


@lru_cache(maxsize=1)
def resource_type_set() -> frozenset[str]:
    return frozenset(resource_types())


def is_resource_type(name: str) -> bool:
    return name in resource_type_set()


def table_suffix(resource_type: str) -> str:
    """SQL identifier fragment for a registry type: ``MedicationRequest`` -> ``medication_request``.

    Only ever called with names from the registry, so the result is a safe identifier."""
    if not is_resource_type(resource_type):
        raise ValueError(f"not an R4 resource type: {resource_type!r}")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", resource_type).lower()
