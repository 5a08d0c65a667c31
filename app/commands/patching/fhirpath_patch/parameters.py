"""Reading a FHIRPath Patch ``Parameters`` resource into operations; a malformed one (wrong shape,
unknown operation type, a missing part, an unsupported path) is 400 ``invalid``."""

from __future__ import annotations

from app.commands.patching.fhirpath_patch.operation_values import Value
from app.commands.patching.fhirpath_patch.operations import Operation
from app.commands.patching.fhirpath_patch.path import IDENT, parse_path
from app.errors import invalid

OPERATION_TYPES = frozenset({"add", "insert", "delete", "replace", "move"})
_PART_NAMES = frozenset({"type", "path", "name", "value", "index", "source", "destination"})
_REQUIRED = {
    "add": ("name", "value"),
    "insert": ("value", "index"),
    "delete": (),
    "replace": ("value",),
    "move": ("source", "destination"),
}


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
        if not isinstance(sub, dict) or not isinstance(sub.get("name"), str) or not IDENT.fullmatch(sub["name"]):
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
    if kind == "add" and (not isinstance(name, str) or not IDENT.fullmatch(name)):
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
