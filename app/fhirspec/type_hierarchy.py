"""The R4 type hierarchy: each resource and data type's base type, read from the StructureDefinitions
of ``profiles-types.json`` and ``profiles-resources.json`` (a profile such as ``SimpleQuantity`` has
the type it constrains as its base)."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from types import MappingProxyType

from app.fhirspec.derived import derived
from app.fhirspec.loader import bundle_resources


@lru_cache(maxsize=1)
def base_types() -> Mapping[str, str]:
    """Type name -> the name of its base type (``Patient`` -> ``DomainResource``, ``Age`` ->
    ``Quantity``); the roots have no entry."""
    return MappingProxyType(_parents())


@derived("base-types")
def _parents() -> dict[str, str]:
    parents: dict[str, str] = {}
    for bundle in ("profiles-types.json", "profiles-resources.json"):
        for sd in bundle_resources(bundle):
            if sd.get("resourceType") != "StructureDefinition":
                continue
            if sd.get("derivation") == "constraint":
                parents[sd["id"]] = sd["type"]
            elif sd.get("baseDefinition"):
                parents[sd["id"]] = sd["baseDefinition"].rsplit("/", 1)[-1]
    return parents


@lru_cache(maxsize=1024)
def ancestors(type_name: str) -> tuple[str, ...]:
    """The base types of ``type_name``, nearest first."""
    parents = base_types()
    out = []
    current = parents.get(type_name)
    while current is not None:
        out.append(current)
        current = parents.get(current)
    return tuple(out)
