"""Walking a resource along parsed patch path steps: every match is a ``Loc`` (the value, its parent
object and key, its position in a list, and its definition from the compiled StructureDefinitions)
so an operation can change it in place. Choice elements are found by their stem
(``Observation.value`` finds ``valueQuantity``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fhirpathpy.engine.nodes import ResourceNode

from app.commands.patching.fhirpath_patch.path import Step
from app.validation.compile import resolve, resource_node, type_suffix
from app.validation.model import BACKBONE, COMPLEX, RESOURCE, Element, Node, TypeRef

_ROOTS = frozenset({"Resource", "DomainResource"})


class Unapplicable(Exception):
    """An operation cannot be applied to this resource (422); the operation adds its label."""


@dataclass
class Loc:
    """One element of the resource and where it lives: ``parent[key]`` or ``parent[key][index]``."""

    value: object
    parent: dict | None = None
    key: str | None = None
    index: int | None = None
    stem: str | None = None  # the name navigated by: "value" for valueQuantity
    element: Element | None = None
    ref: TypeRef | None = None
    shape: Node | None = None  # the object's definition, when known

    @property
    def type_path(self) -> str | None:
        """The FHIRPath model type fhirpathpy needs for choice elements inside ``where``."""
        if self.ref is None or self.ref.kind == RESOURCE:
            return None
        return self.ref.node_path if self.ref.kind == BACKBONE else self.ref.code


def shape_of(ref: TypeRef | None, value: object) -> Node | None:
    try:
        if ref is not None and ref.kind in (COMPLEX, BACKBONE):
            return resolve(ref)
        if (ref is None or ref.kind == RESOURCE) and isinstance(value, dict):
            resource_type = value.get("resourceType")
            return resource_node(resource_type) if isinstance(resource_type, str) else None
    except Exception:  # without a definition the walk goes on untyped
        return None
    return None


def definition_of(shape: Node | None, key: str) -> tuple[Element | None, TypeRef | None]:
    return shape.keys.get(key, (None, None)) if shape is not None else (None, None)


def _children(loc: Loc, name: str) -> list[Loc]:
    data = loc.value
    if not isinstance(data, dict):
        return []
    if name in data:
        keys = [name]
    else:
        keys = [
            k
            for k in data
            if k.startswith(name)
            and k[len(name) : len(name) + 1].isupper()
            and (loc.shape is None or getattr(definition_of(loc.shape, k)[0], "name", None) == name)
        ]
    out = []
    for key in keys:
        element, ref = definition_of(loc.shape, key)
        value = data[key]
        items = list(enumerate(value)) if isinstance(value, list) else [(None, value)]
        for index, item in items:
            if item is not None:
                stem = element.name if element is not None else name
                out.append(Loc(item, data, key, index, stem, element, ref, shape_of(ref, item)))
    return out


def _where(locs: list[Loc], criteria: Callable, root: dict) -> list[Loc]:
    out = []
    for loc in locs:
        try:
            node = ResourceNode.create_node(loc.value, loc.type_path)
            result = criteria(node, {"resource": root, "rootResource": root})
        except Exception as exc:  # fhirpathpy raises bare Exception
            raise Unapplicable(f"the where() criteria could not be evaluated ({exc})") from None
        if len(result) > 1:
            raise Unapplicable("the where() criteria returned more than one value")
        if result and (result[0] is True or not isinstance(result[0], bool)):
            out.append(loc)
    return out


def _of_type(loc: Loc, type_name: str) -> bool:
    if loc.stem is not None and loc.key == loc.stem + type_suffix(type_name):
        return True
    if isinstance(loc.value, dict) and loc.value.get("resourceType") == type_name:
        return True
    return loc.ref is not None and loc.ref.code == type_name


def walk(document: dict, steps: list[Step]) -> list[Loc]:
    """Every element the path matches, in document order."""
    root = Loc(document, shape=shape_of(None, document))
    locs = [root]
    for kind, argument in steps:
        if kind == "type":
            matches = argument in _ROOTS or argument == document.get("resourceType")
            locs = locs if matches else []
        elif kind == "member":
            locs = [child for loc in locs for child in _children(loc, str(argument))]
        elif kind == "extension":
            extensions = [child for loc in locs for child in _children(loc, "extension")]
            locs = [e for e in extensions if isinstance(e.value, dict) and e.value.get("url") == argument]
        elif kind == "where":
            locs = _where(locs, argument, document)  # type: ignore[arg-type]
        elif kind == "ofType":
            locs = [loc for loc in locs if _of_type(loc, str(argument))]
        elif kind == "index":
            locs = locs[argument : argument + 1]  # type: ignore[misc]
        elif kind == "first":
            locs = locs[:1]
        elif kind == "last":
            locs = locs[-1:]
        elif kind == "tail":
            locs = locs[1:]
        elif kind == "skip":
            locs = locs[argument:]  # type: ignore[misc]
        elif kind == "take":
            locs = locs[:argument]  # type: ignore[misc]
        elif kind == "single" and len(locs) > 1:
            raise Unapplicable("single() found more than one element")
    return locs
