"""JSON Patch (RFC 6902, https://www.rfc-editor.org/rfc/rfc6902) over FHIR JSON, with JSON Pointer
(RFC 6901, https://www.rfc-editor.org/rfc/rfc6901): ``add``, ``remove``, ``replace``, ``move``,
``copy`` and ``test``, applied in order to a deep copy of the resource; the first failing operation
fails the whole patch.

A malformed patch document (not a list, unknown op, missing member, bad pointer) is 400 ``invalid``;
an operation that cannot be applied to this resource (path does not exist, index out of range,
``test`` failed) is 422 ``processing``. See https://hl7.org/fhir/R4/http.html#patch.

The result is bounded: ``copy`` can double the document with each operation, so the size of every
value a patch puts in is estimated (a walk that stops once over the budget) before it is copied,
and a patch whose result would pass ``FHIRLEDGER_MAX_BODY_BYTES`` fails with 422 ``too-costly`` at
the operation that passes it. The estimate never shrinks (removals are not subtracted), so the
work of a whole patch is bounded by the limit, whatever its operations.
"""

from __future__ import annotations

import copy
import re

import orjson

from app.errors import FhirError, invalid
from app.settings import get_settings

OPERATIONS = frozenset({"add", "remove", "replace", "move", "copy", "test"})
_INDEX = re.compile(r"0|[1-9][0-9]*")
_NEEDS_VALUE = frozenset({"add", "replace", "test"})
_NEEDS_FROM = frozenset({"move", "copy"})


def apply_json_patch(resource: dict, patch: object, max_bytes: int | None = None) -> dict:
    """A new resource: ``patch`` (a parsed JSON Patch document) applied to a copy of ``resource``;
    its result may be at most ``max_bytes`` (default: the server's body limit) of JSON."""
    limit = max_bytes if max_bytes is not None else get_settings().max_body_bytes
    try:
        document: object = copy.deepcopy(resource)
        operations = _operations(patch)
        budget = _Budget(limit, len(orjson.dumps(resource)))
        for number, operation in enumerate(operations):
            document = _JsonPatchOperation(number, operation, budget).apply(document)
    except FhirError:
        raise
    except Exception as exc:  # the contract: a bad patch is only ever a FhirError
        raise invalid(f"The JSON Patch could not be applied ({type(exc).__name__})") from None
    return check_identity(resource, document)


def check_identity(before: dict, after: object) -> dict:
    """A patch yields a resource of the same type and id (shared by both patch formats)."""
    if not isinstance(after, dict):
        raise FhirError(422, "processing", "A PATCH must produce a resource (a JSON object)")
    if after.get("resourceType") != before.get("resourceType") or after.get("id") != before.get("id"):
        raise FhirError(422, "processing", "A PATCH cannot change the resource's type or id")
    return after


def _operations(patch: object) -> list[dict]:
    if not isinstance(patch, list):
        raise invalid("A JSON Patch document must be a JSON array of operations")
    for number, operation in enumerate(patch):
        if not isinstance(operation, dict):
            raise invalid(f"JSON Patch operation {number}: an operation must be a JSON object")
    return patch


def parse_pointer(pointer: str) -> list[str]:
    """The reference tokens of a JSON Pointer (RFC 6901 section 3); raises ValueError if malformed."""
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise ValueError("a JSON Pointer must be empty or start with '/'")
    tokens = pointer[1:].split("/")
    for token in tokens:
        if re.search(r"~(?![01])", token):
            raise ValueError("'~' must be followed by '0' or '1' in a JSON Pointer")
    return [t.replace("~1", "/").replace("~0", "~") for t in tokens]


def json_equal(a: object, b: object) -> bool:
    """Equality per RFC 6902 section 4.6: numbers by value, objects unordered, arrays ordered, and
    (unlike Python) ``true`` never equals ``1``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def bounded_size(value: object, budget: int) -> int:
    """About how many bytes ``value`` takes as JSON; the walk stops once past ``budget``."""
    size = 0
    stack = [value]
    while stack and size <= budget:
        item = stack.pop()
        if isinstance(item, str):
            size += len(item) + 3
        elif isinstance(item, dict):
            size += 2 + 4 * len(item) + sum(map(len, item))
            if size <= budget:
                stack.extend(item.values())
        elif isinstance(item, list):
            size += 2 + 2 * len(item)
            if size <= budget:
                stack.extend(item)
        else:
            size += 8
    return size


class _Budget:
    """The estimated size of the patched document, against the limit."""

    def __init__(self, limit: int, initial: int) -> None:
        self.limit = limit
        self.used = initial

    def take(self, operation: _JsonPatchOperation, value: object) -> None:
        self.used += bounded_size(value, self.limit - self.used)
        if self.used > self.limit:
            raise FhirError(
                422,
                "too-costly",
                f"JSON Patch operation {operation.number} ({operation.label}): the patched resource would be "
                f"larger than this server's limit of {self.limit} bytes (setting FHIRLEDGER_MAX_BODY_BYTES)",
            )


class _JsonPatchOperation:
    """One operation of the document, validated on construction and applied to a document."""

    def __init__(self, number: int, operation: dict, budget: _Budget) -> None:
        self.number = number
        self.budget = budget
        op = operation.get("op")
        self.op = op if isinstance(op, str) else "?"
        path = operation.get("path")
        self.label = f"{self.op} {path}" if isinstance(path, str) else self.op
        if not isinstance(op, str) or op not in OPERATIONS:
            raise self.bad("'op' must be one of add, remove, replace, move, copy, test")
        if not isinstance(path, str):
            raise self.bad("'path' is missing or not a string")
        self.path = self.pointer(path, "path")
        if op in _NEEDS_VALUE and "value" not in operation:
            raise self.bad("'value' is missing")
        self.value = operation.get("value")
        self.source: list[str] = []
        if op in _NEEDS_FROM:
            source = operation.get("from")
            if not isinstance(source, str):
                raise self.bad("'from' is missing or not a string")
            self.source = self.pointer(source, "from")
            if op == "move" and len(self.source) < len(self.path) and self.path[: len(self.source)] == self.source:
                raise self.bad("cannot move a value into one of its own children")

    def bad(self, why: str) -> FhirError:
        return invalid(f"JSON Patch operation {self.number} ({self.label}): {why}")

    def failed(self, why: str) -> FhirError:
        return FhirError(422, "processing", f"JSON Patch operation {self.number} ({self.label}): {why}")

    def pointer(self, text: str, member: str) -> list[str]:
        try:
            return parse_pointer(text)
        except ValueError as exc:
            raise self.bad(f"'{member}' is not a valid JSON Pointer: {exc}") from None

    def apply(self, document: object) -> object:
        if self.op in ("add", "replace", "copy"):
            source = self.get(document, self.source, "the 'from' path does not exist") if self.op == "copy" else None
            self.budget.take(self, self.value if self.op != "copy" else source)
        if self.op == "add":
            return self.add(document, self.path, copy.deepcopy(self.value))
        if self.op == "remove":
            return self.remove(document, self.path)
        if self.op == "replace":
            return self.replace(document, self.path, copy.deepcopy(self.value))
        if self.op == "test":
            if not json_equal(self.get(document, self.path), self.value):
                raise self.failed("the test failed: the value at the path is not the given value")
            return document
        value = self.get(document, self.source, "the 'from' path does not exist")
        if self.op == "move":
            if self.source == self.path:
                return document
            return self.add(self.remove(document, self.source), self.path, value)  # moved, not copied
        return self.add(document, self.path, copy.deepcopy(value))

    def get(self, document: object, tokens: list[str], missing: str = "the path does not exist") -> object:
        node = document
        for token in tokens:
            if isinstance(node, dict) and token in node:
                node = node[token]
            elif isinstance(node, list):
                node = node[self.index(token, len(node) - 1, missing)]
            else:
                raise self.failed(missing)
        return node

    def index(self, token: str, highest: int, missing: str = "the path does not exist") -> int:
        if not _INDEX.fullmatch(token):
            raise self.failed(f"{missing} ('{token}' is not an array index)")
        position = int(token)
        if position > highest:
            raise self.failed(f"{missing} (array index {position} is out of range)")
        return position

    def add(self, document: object, tokens: list[str], value: object) -> object:
        if not tokens:
            return value
        parent = self.get(document, tokens[:-1])
        last = tokens[-1]
        if isinstance(parent, dict):
            parent[last] = value
        elif isinstance(parent, list):
            parent.insert(len(parent) if last == "-" else self.index(last, len(parent)), value)
        else:
            raise self.failed("the path does not exist (its parent is not an object or array)")
        return document

    def replace(self, document: object, tokens: list[str], value: object) -> object:
        self.get(document, tokens)
        if not tokens:
            return value
        parent = self.get(document, tokens[:-1])
        if isinstance(parent, list):
            parent[self.index(tokens[-1], len(parent) - 1)] = value
        else:
            parent[tokens[-1]] = value  # type: ignore[index] - get() proved it is an object holding the key
        return document

    def remove(self, document: object, tokens: list[str]) -> object:
        if not tokens:
            raise self.failed("cannot remove the whole resource")
        parent = self.get(document, tokens[:-1])
        last = tokens[-1]
        if isinstance(parent, dict) and last in parent:
            del parent[last]
        elif isinstance(parent, list):
            del parent[self.index(last, len(parent) - 1)]
        else:
            raise self.failed("the path does not exist")
        return document
