"""The compiled form of the StructureDefinitions: what the instance walker checks against.

A ``Node`` is one object shape (a resource, a datatype, or a backbone element); it maps every
allowed JSON property name to its ``Element`` and ``TypeRef`` (choice types ``value[x]`` get one
key per type suffix, ``valueQuantity``...). Built once by ``compile.py``; never mutated after,
except the lazy ``TypeRef.node`` link to another node.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from app.validation.bindings import Expansion

# kinds of TypeRef
PRIMITIVE = "primitive"
COMPLEX = "complex"  # a datatype with its own StructureDefinition (Quantity, Reference...)
BACKBONE = "backbone"  # an inline element with children in the same snapshot, or a contentReference
RESOURCE = "resource"  # a nested resource (contained, Bundle.entry.resource...)


@dataclass(eq=False, slots=True)
class Constraint:
    key: str
    severity: str  # error | warning
    human: str
    expression: str
    fn: Callable | None  # compiled FHIRPath; None when not evaluated (see invariants.py)
    type_path: str  # the FHIRPath model path of the context element, e.g. "Patient.contact"
    triggers: frozenset[str] | None = None  # JSON keys that may change the outcome; None: always run
    passes_when_absent: bool = False
    guards: tuple[frozenset[str], ...] = ()  # if every key of one group is absent, the constraint holds
    sufficient: tuple[frozenset[str], ...] = ()  # if any key of one group is present, it holds
    memo_keys: tuple[tuple[str, bool], ...] | None = None  # (JSON key, presence only) the result depends on
    native: Callable | None = None  # a Python evaluator used instead of fn (see invariants.NATIVE_EVALUATORS)


@dataclass(eq=False, slots=True)
class TypeRef:
    code: str  # FHIR type code: string, Quantity, BackboneElement, Resource...
    kind: str
    sd_id: str = ""  # StructureDefinition holding the target node (complex/backbone)
    node_path: str = ""  # path of the target node inside that StructureDefinition
    resource_type: str = ""  # RESOURCE kind: a required resource type, or "" for any
    system: bool = False  # a FHIRPath System type (Element.id, Extension.url): no _name sibling
    node: Node | None = None  # resolved lazily
    ok: Callable[[object], bool] | None = None  # PRIMITIVE: True when the value has no problem at all
    codes: frozenset[str] | None = None  # a ``code`` of a required binding: the codes allowed


@dataclass(eq=False, slots=True)
class Element:
    name: str  # JSON name; for a choice element the stem ("value" for value[x])
    path: str  # the path in the StructureDefinition, for messages
    min: int
    max: int | None  # None: unbounded
    array: bool  # represented as a JSON array
    choice: bool
    types: tuple[TypeRef, ...]
    binding: Expansion | None = None
    constraints: tuple[Constraint, ...] = ()
    counted: bool = True  # its occurrences are counted (a minimum, or a maximum an instance may pass)
    plain: bool = False  # a single value without invariants of its own: a good primitive needs no more
    plain_array: bool = False  # the same for an array: good primitives need no more

    @property
    def label(self) -> str:
        return f"{self.name}[x]" if self.choice else self.name


@dataclass(eq=False, slots=True)
class Node:
    sd_id: str
    path: str
    is_resource: bool = False
    keys: dict[str, tuple[Element, TypeRef]] = field(default_factory=dict)
    elements: tuple[Element, ...] = ()
    required: tuple[Element, ...] = ()  # elements with min > 0
    constraints: tuple[Constraint, ...] = ()
