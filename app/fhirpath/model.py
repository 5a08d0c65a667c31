"""The R4 type model the FHIRPath compiler types its paths with, read from the StructureDefinition
snapshots of ``profiles-resources.json`` and ``profiles-types.json``.

A *type key* names what a JSON object is: a resource or data type name (``Patient``,
``HumanName``, ``Age``) or, for a backbone element, its element path (``Observation.component``).
For each type key the model knows its elements: the JSON key(s) each is stored under (one per
choice variant: ``value[x]`` -> ``valueQuantity``, ``valueString``, ...) and their types.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from app.fhirspec.derived import derived
from app.fhirspec.loader import bundle_resources
from app.fhirspec.type_hierarchy import base_types

_SYSTEM_PREFIX = "http://hl7.org/fhirpath/System."
_FHIR_TYPE_EXT = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"

# FHIRPath System types (as written in `as(DateTime)`) mapped to the FHIR primitive they stand for.
SYSTEM_TYPES = {
    "String": "string",
    "Boolean": "boolean",
    "Integer": "integer",
    "Decimal": "decimal",
    "Date": "date",
    "DateTime": "dateTime",
    "Time": "time",
}


@dataclass(frozen=True)
class Variant:
    """One way an element is stored: under ``key`` as a value of type ``type``."""

    key: str
    type: str


@dataclass(frozen=True)
class Element:
    name: str
    variants: tuple[Variant, ...]
    many: bool

    @property
    def is_choice(self) -> bool:
        return len(self.variants) > 1


@dataclass(frozen=True)
class TypeModel:
    elements: dict[str, dict[str, Element]]  # type key -> element name -> Element
    parents: dict[str, str]  # type name -> base type name
    primitives: frozenset[str]
    resources: frozenset[str]  # all resource type names, abstract ones included

    def element(self, type_key: str, name: str) -> Element | None:
        current: str | None = type_key
        while current is not None:
            table = self.elements.get(current)
            if table is not None:
                return table.get(name)
            current = self.parents.get(current)  # a profile (SimpleQuantity) uses its base's elements
        return None

    def is_subtype(self, type_name: str, ancestor: str) -> bool:
        """True if ``type_name`` is ``ancestor`` or derives from it (Age -> Quantity -> Element)."""
        current: str | None = type_name
        while current is not None:
            if current == ancestor:
                return True
            current = self.parents.get(current)
        return False

    def is_resource(self, name: str) -> bool:
        return name in self.resources

    def canonical_type(self, name: str) -> str:
        """``FHIR.Quantity`` -> ``Quantity``; ``System.DateTime`` / ``DateTime`` -> ``dateTime``."""
        if name.startswith("FHIR."):
            return name[5:]
        if name.startswith("System."):
            name = name[7:]
            return SYSTEM_TYPES.get(name, name)
        if name in self.parents or name in self.elements or name in self.primitives:
            return name
        return SYSTEM_TYPES.get(name, name)


def _type_code(type_entry: dict) -> str:
    code = type_entry.get("code", "")
    if code.startswith(_SYSTEM_PREFIX):
        for ext in type_entry.get("extension", []):
            if ext.get("url") == _FHIR_TYPE_EXT and isinstance(ext.get("valueUrl"), str):
                return ext["valueUrl"]
        return SYSTEM_TYPES.get(code[len(_SYSTEM_PREFIX) :], "string")
    return code


def _load_structure(sd: dict, elements: dict[str, dict[str, Element]]) -> None:
    root = sd["type"]
    for el in sd.get("snapshot", {}).get("element", []):
        path: str = el["path"]
        if ":" in el.get("id", "") or "." not in path:
            continue
        owner, _, name = path.rpartition(".")
        if owner == root:
            owner_key = root
        else:
            owner_key = owner  # a backbone element: keyed by its path
        many = el.get("max") not in ("0", "1")
        if el.get("contentReference"):
            variants: tuple[Variant, ...] = (Variant(name, el["contentReference"].lstrip("#")),)
        else:
            codes = [_type_code(t) for t in el.get("type", [])]
            if name.endswith("[x]"):
                name = name[:-3]
                variants = tuple(Variant(name + c[0].upper() + c[1:], c) for c in codes)
            elif codes in (["BackboneElement"], ["Element"]):
                variants = (Variant(name, path),)  # a nested element: typed by its own path
            else:
                variants = (Variant(name, codes[0] if codes else path),)
        elements.setdefault(owner_key, {})[name] = Element(name, variants, many)


@lru_cache(maxsize=1)
@derived("type-model")
def type_model() -> TypeModel:
    elements: dict[str, dict[str, Element]] = {}
    parents = dict(base_types())
    primitives: set[str] = set()
    resources: set[str] = set()
    for bundle in ("profiles-types.json", "profiles-resources.json"):
        for sd in bundle_resources(bundle):
            if sd.get("resourceType") != "StructureDefinition":
                continue
            if sd.get("kind") == "primitive-type":
                primitives.add(sd["id"])
            if sd.get("derivation") == "constraint":
                continue  # SimpleQuantity, MoneyQuantity: profiles of Quantity, with its elements
            if sd.get("kind") == "resource":
                resources.add(sd["id"])
            if sd.get("kind") != "primitive-type":
                _load_structure(sd, elements)
    return TypeModel(elements, parents, frozenset(primitives), frozenset(resources))
