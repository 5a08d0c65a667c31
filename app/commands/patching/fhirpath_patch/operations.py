"""The five FHIRPath Patch operations (add, insert, delete, replace, move) applied in place to a
resource document; an operation that cannot be applied (no match, several matches where one is
required, index out of range, an element that already has a value) is 422 ``processing``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from app.commands.patching.fhirpath_patch.navigation import Loc, Unapplicable, definition_of, walk
from app.commands.patching.fhirpath_patch.operation_values import Value, build, typed_ref
from app.commands.patching.fhirpath_patch.path import Step
from app.errors import FhirError, invalid
from app.validation.model import TypeRef


@dataclass
class Operation:
    number: int
    kind: str
    path: str
    steps: list[Step]
    name: str | None = None
    value: Value | None = None
    index: int = 0
    source: int = 0
    destination: int = 0

    def failed(self, why: str) -> FhirError:
        return FhirError(
            422,
            "processing",
            f"FHIRPath Patch operation {self.number} ({self.kind} {self.path}): {why}",
            (f"Parameters.parameter[{self.number}]",),
        )

    def apply(self, document: dict) -> None:
        try:
            getattr(self, self.kind)(document)
        except Unapplicable as exc:
            raise self.failed(str(exc)) from None

    def one(self, document: dict) -> Loc:
        locs = walk(document, self.steps)
        if len(locs) != 1:
            found = "no element" if not locs else f"{len(locs)} elements"
            raise self.failed(f"the path matches {found}; {self.kind} needs exactly one")
        return locs[0]

    def list_step(self) -> str:
        if not self.steps or self.steps[-1][0] != "member":
            raise invalid(
                f"FHIRPath Patch operation {self.number} ({self.kind} {self.path}): "
                "the path must end with the name of a list element (e.g. Patient.identifier)"
            )
        return str(self.steps[-1][1])

    def target_list(self, document: dict) -> tuple[Loc, str, list, TypeRef | None]:
        name = self.list_step()
        owners = walk(document, self.steps[:-1])
        if len(owners) != 1 or not isinstance(owners[0].value, dict):
            found = "no element" if not owners else f"{len(owners)} elements"
            raise self.failed(f"the list's parent matches {found}; {self.kind} needs exactly one")
        owner = owners[0]
        element, ref = definition_of(owner.shape, name)
        if owner.shape is not None and element is None:
            raise self.failed(f"'{name}' is not an element of {owner.shape.path}")
        items = owner.value.get(name, [])  # type: ignore[union-attr]
        if not isinstance(items, list) or (element is not None and not element.array):
            raise self.failed(f"'{name}' is not a list")
        return owner, name, items, ref

    def add(self, document: dict) -> None:
        target = self.one(document)
        if not isinstance(target.value, dict):
            raise self.failed("the element at the path is a primitive value; add needs an element with children")
        assert self.name is not None and self.value is not None
        data, name, suffix = target.value, self.name, self.value.suffix
        key, shape = name, target.shape
        if shape is not None and name not in shape.keys:
            if suffix is None or name + suffix not in shape.keys:
                stems = {element.name for element, _ in shape.keys.values() if element.choice}
                why = "a value of one of its types" if name in stems else "an element"
                raise self.failed(f"'{name}' with this value is not {why} of {shape.path}")
            key = name + suffix
        element, ref = definition_of(shape, key)
        value = build(self.value, ref)
        existing = data.get(key)
        if element.array if element is not None else isinstance(existing, list):
            if existing is None:
                data[key] = [value]
            elif isinstance(existing, list):
                existing.append(value)
                _shadow(data, key, lambda shadow: shadow.append(None))
            else:
                raise self.failed(f"'{key}' holds a single value, not a list")
            return
        siblings = [k for k in data if definition_of(shape, k)[0] is element] if element and element.choice else [key]
        if any(k in data for k in siblings):
            raise self.failed(f"'{name}' already has a value; use replace to change it")
        data[key] = value

    def insert(self, document: dict) -> None:
        owner, name, items, ref = self.target_list(document)
        if not 0 <= self.index <= len(items):
            raise self.failed(f"index {self.index} is out of range for a list of {len(items)}")
        assert self.value is not None
        items.insert(self.index, build(self.value, ref))
        owner.value[name] = items  # type: ignore[index]
        _shadow(owner.value, name, lambda shadow: shadow.insert(self.index, None))  # type: ignore[arg-type]

    def move(self, document: dict) -> None:
        owner, name, items, _ = self.target_list(document)
        for label, position in (("source", self.source), ("destination", self.destination)):
            if not 0 <= position < len(items):
                raise self.failed(f"{label} index {position} is out of range for a list of {len(items)}")
        items.insert(self.destination, items.pop(self.source))
        _shadow(owner.value, name, lambda shadow: shadow.insert(self.destination, shadow.pop(self.source)))  # type: ignore[arg-type]

    def delete(self, document: dict) -> None:
        locs = walk(document, self.steps)
        if not locs:
            return
        if len(locs) > 1:
            raise self.failed(f"the path matches {len(locs)} elements; delete removes only one")
        loc = locs[0]
        if loc.parent is None or loc.key is None:
            raise self.failed("cannot delete the resource itself")
        if loc.index is None:
            del loc.parent[loc.key]
            loc.parent.pop("_" + loc.key, None)
            return
        items = loc.parent[loc.key]
        del items[loc.index]
        _shadow(loc.parent, loc.key, lambda shadow: shadow.pop(loc.index))
        if not items:
            del loc.parent[loc.key]

    def replace(self, document: dict) -> None:
        loc = self.one(document)
        if loc.parent is None or loc.key is None:
            raise self.failed("cannot replace the resource itself")
        assert self.value is not None
        suffix = self.value.suffix
        key = loc.key
        if loc.stem is not None and loc.stem != loc.key and suffix is not None and loc.stem + suffix != loc.key:
            if loc.element is not None and typed_ref(loc.element, suffix) is None:
                raise self.failed(f"{loc.stem}[x] cannot hold a value of type {suffix}")
            key = loc.stem + suffix
        value = build(self.value, typed_ref(loc.element, suffix) if loc.element else loc.ref)
        if key != loc.key:
            del loc.parent[loc.key]
            loc.parent.pop("_" + loc.key, None)
            loc.parent[key] = value
        elif loc.index is None:
            loc.parent[key] = value
        else:
            loc.parent[key][loc.index] = value


def _shadow(data: dict, key: str, change: Callable[[list], object]) -> None:
    """Keep a primitive list's ``_key`` extensions (https://hl7.org/fhir/R4/json.html#primitive)
    aligned with the list; drop it once it holds nothing."""
    shadow = data.get("_" + key)
    if not isinstance(shadow, list):
        return
    try:
        change(shadow)
    except IndexError:
        pass
    if not any(item is not None for item in shadow):
        del data["_" + key]
