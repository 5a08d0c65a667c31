"""FHIRPath Patch (https://hl7.org/fhir/R4/fhirpatch.html): a ``Parameters`` resource whose
``operation`` parameters add, insert, delete, replace or move elements named by FHIRPath, applied
in order to a deep copy of the resource; the first failing operation fails the whole patch.

Paths are resolved by walking the JSON, so every match is a known place (object and property,
plus the position in a list) that can be changed. The walker understands the forms patch paths
use: a leading type (``Patient``), members (choice elements by their stem: ``Observation.value``
finds ``valueQuantity``), indexers ``[n]``, ``where(criteria)``, ``extension('url')``,
``ofType(T)``, ``first()``, ``last()``, ``tail()``, ``single()``, ``skip(n)`` and ``take(n)``.
``where`` criteria are any FHIRPath, evaluated by fhirpathpy on each candidate with the R4 model.
The compiled StructureDefinitions (``app.validation``) say which elements repeat, which are choice
elements and what type a complex value built from nested ``part`` entries has.

A malformed Parameters resource (wrong shape, unknown operation type, a missing part, a path
outside that grammar) is 400 ``invalid``; an operation that cannot be applied to this resource
(no match, several matches where one is required, index out of range, an element that already
has a value) is 422 ``processing``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import fhirpathpy
from fhirpathpy.engine.nodes import ResourceNode
from fhirpathpy.models import models

from app.commands.patching.json_patch import check_identity
from app.errors import FhirError, invalid
from app.fhirpath.regex_guard import refusal as regex_refusal
from app.validation.compile import resolve, resource_node, type_suffix
from app.validation.model import BACKBONE, COMPLEX, RESOURCE, Element, Node, TypeRef

OPERATION_TYPES = frozenset({"add", "insert", "delete", "replace", "move"})
_PART_NAMES = frozenset({"type", "path", "name", "value", "index", "source", "destination"})
_REQUIRED = {
    "add": ("name", "value"),
    "insert": ("value", "index"),
    "delete": (),
    "replace": ("value",),
    "move": ("source", "destination"),
}
_ROOTS = frozenset({"Resource", "DomainResource"})
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NAME = re.compile(r"[$%]?[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"[0-9]+")
_NO_ARGS = frozenset({"first", "last", "tail", "single"})
_INT_ARG = frozenset({"skip", "take"})

Step = tuple[str, object]  # (kind, argument): member, type, index, where, extension, ofType, first...


class Unapplicable(Exception):
    """An operation cannot be applied to this resource (422); the operation adds its label."""


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


# ---------------------------------------------------------------------------------------------
# Parsing the Parameters resource


@dataclass(frozen=True)
class Value:
    """A value given in a part: ``value[x]`` (``suffix`` is the type, e.g. ``HumanName``), a
    ``resource``, or nested ``part`` entries (``parts``) that build an object."""

    data: object = None
    suffix: str | None = None
    parts: tuple[tuple[str, Value], ...] | None = None


def _value_of(part: dict, where: str) -> Value:
    typed = [k for k in part if k.startswith("value") and k[5:6].isupper()]
    forms = len(typed) + ("resource" in part) + ("part" in part)
    if forms != 1:
        raise invalid(f"{where} must have exactly one of value[x], resource or part")
    if typed:
        return Value(part[typed[0]], typed[0][5:])
    if "resource" in part:
        if not isinstance(part["resource"], dict):
            raise invalid(f"{where}: 'resource' must be a JSON object")
        return Value(part["resource"])
    subparts = part["part"]
    if not isinstance(subparts, list) or not subparts:
        raise invalid(f"{where}: 'part' must be a non-empty list")
    out = []
    for i, sub in enumerate(subparts):
        if not isinstance(sub, dict) or not isinstance(sub.get("name"), str) or not _IDENT.fullmatch(sub["name"]):
            raise invalid(f"{where}.part[{i}] must be an object with a 'name' that is an element name")
        out.append((sub["name"], _value_of(sub, f"{where}.part[{i}]")))
    return Value(parts=tuple(out))


def parse_operations(parameters: object) -> list[Operation]:
    if not isinstance(parameters, dict) or parameters.get("resourceType") != "Parameters":
        raise invalid("A FHIRPath Patch must be a Parameters resource")
    entries = parameters.get("parameter", [])
    if not isinstance(entries, list):
        raise invalid("Parameters.parameter must be a list")
    return [_operation(number, entry) for number, entry in enumerate(entries)]


def _operation(number: int, entry: object) -> Operation:
    where = f"FHIRPath Patch operation {number}"
    if not isinstance(entry, dict) or entry.get("name") != "operation":
        raise invalid(f"{where}: each parameter must be named 'operation'")
    parts = entry.get("part")
    if not isinstance(parts, list):
        raise invalid(f"{where}: the operation has no 'part' list")
    given: dict[str, dict] = {}
    for part in parts:
        name = part.get("name") if isinstance(part, dict) else None
        if not isinstance(name, str) or name not in _PART_NAMES:
            raise invalid(f"{where}: unknown part {name!r} (expected {', '.join(sorted(_PART_NAMES))})")
        if name in given:
            raise invalid(f"{where}: the part '{name}' is given more than once")
        given[name] = part
    kind = given.get("type", {}).get("valueCode")
    if not isinstance(kind, str) or kind not in OPERATION_TYPES:
        raise invalid(f"{where}: 'type' must be a valueCode, one of add, insert, delete, replace, move")
    path = given.get("path", {}).get("valueString")
    if not isinstance(path, str) or not path.strip():
        raise invalid(f"{where} ({kind}): 'path' must be a non-empty valueString")
    where = f"{where} ({kind} {path})"
    for required in _REQUIRED[kind]:
        if required not in given:
            raise invalid(f"{where}: the part '{required}' is required")
    name = given["name"].get("valueString") if "name" in given else None
    if kind == "add" and (not isinstance(name, str) or not _IDENT.fullmatch(name)):
        raise invalid(f"{where}: 'name' must be a valueString naming an element")
    numbers = {}
    for key in ("index", "source", "destination"):
        if key in _REQUIRED[kind]:
            number_value = given[key].get("valueInteger")
            if isinstance(number_value, bool) or not isinstance(number_value, int):
                raise invalid(f"{where}: '{key}' must be a valueInteger")
            numbers[key] = number_value
    value = _value_of(given["value"], f"{where}: 'value'") if "value" in _REQUIRED[kind] else None
    try:
        steps = parse_path(path)
    except ValueError as exc:
        raise invalid(f"{where}: the path is not supported: {exc}") from None
    operation = Operation(number, kind, path, steps, name, value, **numbers)
    if kind in ("insert", "move"):
        operation.list_step()
    return operation


# ---------------------------------------------------------------------------------------------
# Parsing the path


def parse_path(text: str) -> list[Step]:
    """The steps of a patch path; raises ValueError for anything outside the supported grammar."""
    scanner = _Scanner(text)
    steps: list[Step] = []
    first = scanner.name()
    if first in ("$this", "%resource", "%rootResource"):
        pass
    elif scanner.peek() == "(":
        steps.append(_function(first, scanner.arguments()))
    elif first[:1].isupper():
        steps.append(("type", first))
    else:
        steps.append(("member", first))
    while not scanner.done():
        if scanner.take("."):
            name = scanner.name()
            steps.append(_function(name, scanner.arguments()) if scanner.peek() == "(" else ("member", name))
        elif scanner.take("["):
            number = scanner.until("]").strip()
            if not _NUMBER.fullmatch(number):
                raise ValueError(f"an indexer must be a non-negative integer, not [{number}]")
            steps.append(("index", int(number)))
        else:
            raise ValueError(f"cannot read {scanner.rest()[:20]!r}")
    return steps


def _function(name: str, argument: str) -> Step:
    argument = argument.strip()
    if name in _NO_ARGS:
        if argument:
            raise ValueError(f"{name}() takes no argument")
        return (name, None)
    if name in _INT_ARG:
        if not _NUMBER.fullmatch(argument):
            raise ValueError(f"{name}() takes a non-negative integer")
        return (name, int(argument))
    if name == "where":
        if not argument:
            raise ValueError("where() needs criteria")
        return ("where", _criteria(argument))
    if name == "ofType":
        type_name = argument.removeprefix("FHIR.").strip("`")
        if not _IDENT.fullmatch(type_name):
            raise ValueError("ofType() takes a type name")
        return ("ofType", type_name)
    if name == "extension":
        match = re.fullmatch(r"'((?:[^'\\]|\\.)*)'", argument)
        if not match:
            raise ValueError("extension() takes a string literal url")
        return ("extension", match.group(1).replace("\\'", "'"))
    raise ValueError(f"the function {name}() is not supported in a patch path")


@lru_cache(maxsize=512)
def _criteria(expression: str) -> Callable:
    if why := regex_refusal(expression):
        raise ValueError(f"where({expression[:200]}): {why}")
    try:
        criteria = fhirpathpy.compile(expression, model=models["r4"])
        criteria([], {"resource": {}, "rootResource": {}})  # fhirpathpy finds most errors only when run
        return criteria
    except Exception as exc:  # fhirpathpy raises bare Exception and ANTLR errors
        raise ValueError(f"where({expression}) is not valid FHIRPath ({exc})") from None


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def done(self) -> bool:
        self.skip()
        return self.pos >= len(self.text)

    def peek(self) -> str:
        self.skip()
        return self.text[self.pos : self.pos + 1]

    def rest(self) -> str:
        return self.text[self.pos :]

    def take(self, char: str) -> bool:
        if self.peek() == char:
            self.pos += 1
            return True
        return False

    def name(self) -> str:
        self.skip()
        if self.take("`"):
            return self.until("`")
        match = _NAME.match(self.text, self.pos)
        if not match:
            raise ValueError(f"expected a name at {self.rest()[:20]!r}" if self.rest() else "the path ends early")
        self.pos = match.end()
        return match.group()

    def until(self, char: str) -> str:
        end = self.text.find(char, self.pos)
        if end < 0:
            raise ValueError(f"missing {char!r}")
        out, self.pos = self.text[self.pos : end], end + 1
        return out

    def arguments(self) -> str:
        """The text between balanced parentheses (string literals and quoted names respected)."""
        self.take("(")
        start, depth, quote = self.pos, 1, ""
        while self.pos < len(self.text):
            char = self.text[self.pos]
            self.pos += 1
            if quote:
                if char == "\\":
                    self.pos += 1
                elif char == quote:
                    quote = ""
            elif char in "'`":
                quote = char
            elif char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
                if depth == 0:
                    return self.text[start : self.pos - 1]
        raise ValueError("unbalanced parentheses")


# ---------------------------------------------------------------------------------------------
# Walking the resource


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


def _shape(ref: TypeRef | None, value: object) -> Node | None:
    try:
        if ref is not None and ref.kind in (COMPLEX, BACKBONE):
            return resolve(ref)
        if (ref is None or ref.kind == RESOURCE) and isinstance(value, dict):
            resource_type = value.get("resourceType")
            return resource_node(resource_type) if isinstance(resource_type, str) else None
    except Exception:  # without a definition the walk goes on untyped
        return None
    return None


def _definition(shape: Node | None, key: str) -> tuple[Element | None, TypeRef | None]:
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
            and (loc.shape is None or getattr(_definition(loc.shape, k)[0], "name", None) == name)
        ]
    out = []
    for key in keys:
        element, ref = _definition(loc.shape, key)
        value = data[key]
        items = list(enumerate(value)) if isinstance(value, list) else [(None, value)]
        for index, item in items:
            if item is not None:
                stem = element.name if element is not None else name
                out.append(Loc(item, data, key, index, stem, element, ref, _shape(ref, item)))
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
    root = Loc(document, shape=_shape(None, document))
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


# ---------------------------------------------------------------------------------------------
# Building values


def build(value: Value, ref: TypeRef | None) -> object:
    """The FHIR JSON for a value: ``value[x]`` and ``resource`` as given; nested parts as an object
    whose properties are named, typed and made lists (or not) by the definition of ``ref``."""
    if value.parts is None:
        return copy.deepcopy(value.data)
    shape = _shape(ref, None)
    grouped: dict[str, list] = {}
    for name, sub in value.parts:
        key = name
        if shape is not None and name not in shape.keys and sub.suffix and name + sub.suffix in shape.keys:
            key = name + sub.suffix
        grouped.setdefault(key, []).append(build(sub, _definition(shape, key)[1]))
    out: dict = {}
    for key, values in grouped.items():
        element = _definition(shape, key)[0]
        repeats = element.array if element is not None else len(values) > 1
        if not repeats and len(values) > 1:
            raise Unapplicable(f"the part '{key}' is given {len(values)} times but '{key}' does not repeat")
        out[key] = values if repeats else values[0]
    return out


def _typed_ref(element: Element | None, suffix: str | None) -> TypeRef | None:
    if element is None:
        return None
    if suffix is not None:
        for ref in element.types:
            if type_suffix(ref.code) == suffix:
                return ref
    return element.types[0] if len(element.types) == 1 else None


# ---------------------------------------------------------------------------------------------
# Operations


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
        element, ref = _definition(owner.shape, name)
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
        element, ref = _definition(shape, key)
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
        siblings = [k for k in data if _definition(shape, k)[0] is element] if element and element.choice else [key]
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
            if loc.element is not None and _typed_ref(loc.element, suffix) is None:
                raise self.failed(f"{loc.stem}[x] cannot hold a value of type {suffix}")
            key = loc.stem + suffix
        value = build(self.value, _typed_ref(loc.element, suffix) if loc.element else loc.ref)
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
