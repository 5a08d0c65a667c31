"""Walks one JSON instance against the compiled nodes and collects every issue.

JSON rules from https://hl7.org/fhir/R4/json.html: arrays for repeating elements, primitive
extensions in ``_name`` siblings (arrays aligned, ``null`` only there), no empty objects, arrays
or strings, ``resourceType`` on every resource.
"""

from __future__ import annotations

from collections.abc import Callable

from app.errors import Issue
from app.fhirspec.resource_types import resource_type_set
from app.validation import invariants
from app.validation.bindings import Expansion
from app.validation.compile import resolve, resource_node
from app.validation.model import RESOURCE, Constraint, Element, Node, TypeRef
from app.validation.primitives import checkers, describe, json_problem

_EXT_SHAPE = "an object with 'id' and/or 'extension'"
# The issue code of JSON-level problems (the JSON cannot be read as this resource: wrong JSON
# type, array versus single value, null, empty object or array, forbidden control character);
# every other issue is about content. Unknown elements have their own code (lenient handling
# drops them).
JSON_LEVEL = "structure"
UNKNOWN_ELEMENT = "processing"


def _good_array(value: object, ok: Callable[[object], bool], codes: frozenset[str] | None) -> bool:
    """A non-empty JSON array of good primitive values (``codes``: the ones a required binding allows)."""
    if type(value) is not list or not value:
        return False
    for item in value:
        if not ok(item) or (codes is not None and item not in codes):
            return False
    return True


def outside_binding(expansion: Expansion, coding: dict) -> bool:
    """A Coding whose system the required value set ``expansion`` lists, with a code it does not."""
    system, code = coding.get("system"), coding.get("code")
    codes = expansion.by_system.get(system) if isinstance(system, str) else None
    return codes is not None and isinstance(code, str) and code not in codes


def codings_of(value: dict, is_coding: bool) -> list:
    """The Codings a required binding applies to: the value itself (a Coding), or a
    CodeableConcept's ``coding`` array (none when it is not an array)."""
    codings = [value] if is_coding else value.get("coding")
    return codings if isinstance(codings, list) else []


class Walker:
    """One validation run: holds the issues and the settings; not shared between threads."""

    __slots__ = ("issues", "lenient", "with_invariants", "_check", "_resource", "_root", "_memo", "_contained")

    def __init__(self, lenient: bool, with_invariants: bool) -> None:
        self.issues: list[Issue] = []
        self.lenient = lenient
        self.with_invariants = with_invariants
        self._check = checkers()
        self._resource: object = None
        self._root: object = None
        self._memo: dict = {}
        self._contained = False

    def add(self, code: str, location: str, message: str, severity: str = "error") -> None:
        self.issues.append(Issue(severity, code, f"{location}: {message}", (location,)))

    # -- resources -------------------------------------------------------------------------
    def resource(self, data: object, location: str | None, required_type: str = "") -> None:
        """A resource at top level (``location`` None) or nested at ``location``."""
        where = location or "$this"
        if not isinstance(data, dict):
            self.add(JSON_LEVEL, where, f"expected a JSON object holding a resource, got {describe(data)}")
            return
        rtype = data.get("resourceType")
        if rtype is None:
            self.add("required", location or "resourceType", "'resourceType' is required on every resource")
            return
        if not isinstance(rtype, str) or rtype not in resource_type_set():
            self.add(
                "invalid",
                f"{location}.resourceType" if location else "resourceType",
                f"{describe(rtype)} is not a known FHIR R4 resource type",
            )
            return
        if required_type and rtype != required_type:
            self.add("processing", where, f"expected a {required_type} resource, got {rtype}")
            return
        node = resource_node(rtype)
        if node is None:  # pragma: no cover - resource_type_set and the snapshots agree
            return
        outer_resource, outer_contained, outer_root = self._resource, self._contained, self._root
        self._resource = data
        self._contained = location is not None and location.endswith("]") and ".contained[" in location
        if self._root is None or not self._contained:
            self._root = data  # %rootResource: a contained resource's container, else the resource itself
        try:
            self.node(node, data, location or rtype, ())
        finally:
            self._resource, self._contained, self._root = outer_resource, outer_contained, outer_root

    # -- objects ---------------------------------------------------------------------------
    def node(self, node: Node, data: dict, location: str, extra: tuple[Constraint, ...]) -> None:
        counts: dict[Element, int] = {}
        choices: dict[Element, list[str]] = {}
        keys = node.keys
        for key, value in data.items():
            entry = keys.get(key)
            if entry is None:
                if key == "resourceType" and node.is_resource:
                    continue
                if isinstance(key, str) and key[:1] == "_":
                    base = keys.get(key[1:])
                    if base is not None and base[1].kind == "primitive" and not base[1].system:
                        if key[1:] not in data:
                            element, ref = base
                            n = self.primitive(element, ref, None, value, f"{location}.{key[1:]}")
                            counts[element] = counts.get(element, 0) + n
                        continue
                self.unknown(node, key, location)
                continue
            element, ref = entry
            ok = ref.ok
            if ok is not None:  # a primitive: a good single value without an extension is done
                codes = ref.codes
                if (
                    element.plain
                    and ok(value)
                    and (codes is None or value in codes)
                    and (ref.system or "_" + key not in data)
                ):
                    n = 1
                elif element.plain_array and _good_array(value, ok, codes) and (ref.system or "_" + key not in data):
                    n = len(value)
                elif value is None:
                    self.add(JSON_LEVEL, f"{location}.{key}", "null is not allowed (omit the element instead)")
                    continue
                else:
                    ext = None if ref.system else data.get("_" + key)
                    n = self.primitive(element, ref, value, ext, f"{location}.{key}")
            elif value is None:
                self.add(JSON_LEVEL, f"{location}.{key}", "null is not allowed (omit the element instead)")
                continue
            else:
                n = self.complex(element, ref, value, f"{location}.{key}")
            if element.counted:
                counts[element] = counts.get(element, 0) + n
            if element.choice:
                choices.setdefault(element, []).append(key)
        if choices:
            self.one_choice(choices, counts, location)
        self.cardinality(node, counts, location)
        if self.with_invariants:
            if extra:
                self.constraints(extra, data, location)
            if node.constraints:
                self.constraints(node.constraints, data, location)

    def cardinality(self, node: Node, counts: dict[Element, int], location: str) -> None:
        """Each element's count of values within its min..max (``counts``: the counted ones)."""
        for element in node.required:
            if counts.get(element, 0) < element.min:
                self.add(
                    "required",
                    f"{location}.{element.name}",
                    f"minimum required = {element.min}, but only found {counts.get(element, 0)} (from {element.path})",
                )
        for element, n in counts.items():
            if element.max is not None and n > element.max:
                self.add(
                    "processing",
                    f"{location}.{element.name}",
                    f"maximum allowed = {element.max}, but found {n} (from {element.path})",
                )

    def one_choice(self, choices: dict[Element, list[str]], counts: dict[Element, int], location: str) -> None:
        """A choice element (``value[x]``) present under several types is one error."""
        for element, variants in choices.items():
            if len(variants) > 1:
                counts[element] = 1
                self.add(
                    "processing",
                    f"{location}.{element.name}",
                    f"only one of {', '.join(variants)} may be present ({element.label} is a choice of a single type)",
                )

    def unknown(self, node: Node, key: str, location: str) -> None:
        severity = "warning" if self.lenient else "error"
        message = f"unknown element '{key}' (not defined in {node.path})"
        self.add(UNKNOWN_ELEMENT, f"{location}.{key}", message, severity)

    def constraints(self, constraints: tuple[Constraint, ...], data: object, location: str) -> None:
        for c in invariants.broken(constraints, data, self._resource, self._root, self._memo, self._contained):
            self.add("invariant", location, f"constraint {c.key} failed: {c.human} ({c.expression})", c.severity)

    # -- complex values --------------------------------------------------------------------
    def complex(self, element: Element, ref: TypeRef, value: object, location: str) -> int:
        if element.array:
            if not isinstance(value, list):
                self.add(JSON_LEVEL, location, f"expected a JSON array ({element.path} repeats), got {describe(value)}")
                return 1
            if not value:
                self.add(JSON_LEVEL, location, "an empty array is not allowed (omit the element instead)")
                return 0
            for i, item in enumerate(value):
                self.complex_item(element, ref, item, f"{location}[{i}]")
            return len(value)
        if isinstance(value, list):
            self.add(JSON_LEVEL, location, f"expected a single value, not an array ({element.path} has max 1)")
            return 1
        self.complex_item(element, ref, value, location)
        return 1

    def complex_item(self, element: Element, ref: TypeRef, value: object, location: str) -> None:
        if ref.kind == RESOURCE:
            self.resource(value, location, ref.resource_type)
            return
        if not isinstance(value, dict):
            self.add(JSON_LEVEL, location, f"expected a JSON object ({ref.code}), got {describe(value)}")
            return
        if not value:
            self.add(JSON_LEVEL, location, f"an empty object is not allowed ({ref.code} needs content)")
        elif len(value) == 1 and "id" in value:
            self.add("invariant", location, "constraint ele-1 failed: all FHIR elements must have a @value or children")
        if ref.code == "Extension":
            has_ext = "extension" in value
            has_value = any(k.startswith("value") for k in value)
            if has_ext == has_value:
                self.add(
                    "invariant",
                    location,
                    "constraint ext-1 failed: an extension must have either extensions or value[x], not both",
                )
        self.node(ref.node or resolve(ref), value, location, element.constraints)
        if element.binding is not None and ref.code in ("Coding", "CodeableConcept"):
            for i, coding in enumerate(codings_of(value, ref.code == "Coding")):
                at = location if ref.code == "Coding" else f"{location}.coding[{i}]"
                self.coding(element, coding, at)

    def coding(self, element: Element, coding: object, location: str) -> None:
        expansion = element.binding
        if expansion is None or not isinstance(coding, dict):
            return
        if outside_binding(expansion, coding):
            self.add(
                "code-invalid",
                f"{location}.code",
                f"'{coding.get('code')}' is not in the required value set {expansion.url} for system "
                f"{coding.get('system')} ({expansion.summary()})",
            )

    # -- primitive values ------------------------------------------------------------------
    def primitive(self, element: Element, ref: TypeRef, value: object, ext: object, location: str) -> int:
        if element.array:
            return self.primitive_array(element, ref, value, ext, location)
        if isinstance(value, list):
            self.add(JSON_LEVEL, location, f"expected a single value, not an array ({element.path} has max 1)")
            return 1
        if ext is not None or value is None:
            self.primitive_extension(ref, ext, value is not None, f"{location}")
        if value is not None:
            self.primitive_value(element, ref, value, location)
        return 1

    def primitive_array(self, element: Element, ref: TypeRef, value: object, ext: object, location: str) -> int:
        values: list = []
        exts: list = []
        if value is not None:
            if not isinstance(value, list):
                self.add(JSON_LEVEL, location, f"expected a JSON array ({element.path} repeats), got {describe(value)}")
                return 1
            values = value
        if ext is not None:
            name = location.rsplit(".", 1)
            ext_at = f"{name[0]}._{name[1]}"
            if not isinstance(ext, list):
                self.add(JSON_LEVEL, ext_at, f"expected a JSON array of primitive extensions, got {describe(ext)}")
            else:
                exts = ext
                if values and len(exts) != len(values):
                    self.add(
                        JSON_LEVEL,
                        ext_at,
                        f"has {len(exts)} entries but {name[1]} has {len(values)}: the arrays must align",
                    )
        size = len(values) if values else len(exts)
        if size == 0:
            self.add(JSON_LEVEL, location, "an empty array is not allowed (omit the element instead)")
            return 0
        for i in range(size):
            item = values[i] if i < len(values) else None
            item_ext = exts[i] if i < len(exts) else None
            at = f"{location}[{i}]"
            if item is None and item_ext is None:
                self.add(JSON_LEVEL, at, "null is only allowed where the matching _ entry has an extension")
                continue
            if item_ext is not None:
                self.primitive_extension(ref, item_ext, item is not None, at)
            if item is not None:
                self.primitive_value(element, ref, item, at)
        return size

    def primitive_extension(self, ref: TypeRef, ext: object, has_value: bool, location: str) -> None:
        if ext is None:
            self.add(JSON_LEVEL, location, "null is not allowed (omit the element instead)")
            return
        if not isinstance(ext, dict):
            self.add(JSON_LEVEL, location, f"the _ extension must be {_EXT_SHAPE}, got {describe(ext)}")
            return
        if not ext or (not has_value and "extension" not in ext):
            self.add("invariant", location, "constraint ele-1 failed: a primitive needs a value or an extension")
            if not ext:
                return
        if ref.sd_id:
            self.node(resolve(ref), ext, location, ())

    def primitive_value(self, element: Element, ref: TypeRef, value: object, location: str) -> None:
        problem = json_problem(ref.code, value)
        if problem is not None:
            self.add(JSON_LEVEL, location, problem)
            return
        problem = self._check[ref.code](value)
        if problem is not None:
            self.add("value", location, problem)
            return
        if element.binding is not None and ref.code == "code" and value not in element.binding.codes:
            self.add(
                "code-invalid",
                location,
                f"'{value}' is not in the required value set {element.binding.url} ({element.binding.summary()})",
            )
        if element.constraints and self.with_invariants:
            self.constraints(element.constraints, value, location)
