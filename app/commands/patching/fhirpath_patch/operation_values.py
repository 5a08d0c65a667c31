"""Values given in a FHIRPath Patch operation (``value[x]``, ``resource`` or nested ``part``
entries) and the FHIR JSON built from them, typed by the element they are written to."""

from __future__ import annotations

import copy
from dataclasses import dataclass

from app.commands.patching.fhirpath_patch.navigation import Unapplicable, definition_of, shape_of
from app.validation.compile import type_suffix
from app.validation.model import Element, TypeRef


@dataclass(frozen=True)
class Value:
    """A value given in a part: ``value[x]`` (``suffix`` is the type, e.g. ``HumanName``), a
    ``resource``, or nested ``part`` entries (``parts``) that build an object."""

    data: object = None
    suffix: str | None = None
    parts: tuple[tuple[str, Value], ...] | None = None


def build(value: Value, ref: TypeRef | None) -> object:
    """The FHIR JSON for a value: ``value[x]`` and ``resource`` as given; nested parts as an object
    whose properties are named, typed and made lists (or not) by the definition of ``ref``."""
    if value.parts is None:
        return copy.deepcopy(value.data)
    shape = shape_of(ref, None)
    grouped: dict[str, list] = {}
    for name, sub in value.parts:
        key = name
        if shape is not None and name not in shape.keys and sub.suffix and name + sub.suffix in shape.keys:
            key = name + sub.suffix
        grouped.setdefault(key, []).append(build(sub, definition_of(shape, key)[1]))
    out: dict = {}
    for key, values in grouped.items():
        element = definition_of(shape, key)[0]
        repeats = element.array if element is not None else len(values) > 1
        if not repeats and len(values) > 1:
            raise Unapplicable(f"the part '{key}' is given {len(values)} times but '{key}' does not repeat")
        out[key] = values if repeats else values[0]
    return out


def typed_ref(element: Element | None, suffix: str | None) -> TypeRef | None:
    if element is None:
        return None
    if suffix is not None:
        for ref in element.types:
            if type_suffix(ref.code) == suffix:
                return ref
    return element.types[0] if len(element.types) == 1 else None
