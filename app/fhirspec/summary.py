"""Which top-level elements ``_summary`` keeps, from the StructureDefinitions' ``isSummary`` and
``min`` (https://hl7.org/fhir/R4/search.html#summary)."""

from __future__ import annotations

from functools import lru_cache

from app.fhirspec.loader import bundle_resources


@lru_cache(maxsize=1)
def _elements() -> dict[str, list[tuple[str, bool, int]]]:
    """type -> [(top-level element name, isSummary, min)]"""
    out: dict[str, list[tuple[str, bool, int]]] = {}
    for sd in bundle_resources("profiles-resources.json"):
        if sd.get("resourceType") != "StructureDefinition" or sd.get("kind") != "resource":
            continue
        rows = []
        for el in sd.get("snapshot", {}).get("element", []):
            path = el["path"].split(".")
            if len(path) == 2:
                rows.append((path[1], bool(el.get("isSummary")), int(el.get("min", 0))))
        out[sd["type"]] = rows
    return out


def _matches(key: str, name: str) -> bool:
    if name.endswith("[x]"):
        stem = name[:-3]
        return key.startswith(stem) and key[len(stem) : len(stem) + 1].isupper()
    return key == name


@lru_cache(maxsize=4096)
def keeps(resource_type: str, key: str, mode: str) -> bool:
    """Whether ``_summary=mode`` (true | text | data) keeps top-level ``key``."""
    if key in ("resourceType", "id", "meta"):
        return True
    if key.startswith("_"):
        return keeps(resource_type, key[1:], mode)
    rows = _elements().get(resource_type, [])
    if mode == "data":
        return key != "text"
    if mode == "text":
        return key == "text" or any(_matches(key, n) and m > 0 for n, _, m in rows)
    return any(_matches(key, n) and s for n, s, _ in rows)
