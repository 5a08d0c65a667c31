"""Compiles StructureDefinition snapshots (``profiles-resources.json``, ``profiles-types.json``)
into ``Node`` trees, once per StructureDefinition, cached for the process.

See https://hl7.org/fhir/R4/elementdefinition.html and https://hl7.org/fhir/R4/json.html.
"""

from __future__ import annotations

from functools import cache, lru_cache

from app.fhirspec.loader import load_json
from app.fhirspec.resource_types import resource_type_set
from app.validation import invariants
from app.validation.bindings import expand
from app.validation.model import BACKBONE, COMPLEX, PRIMITIVE, RESOURCE, Element, Node, TypeRef
from app.validation.primitives import PRIMITIVE_TYPES, fast_checks

FHIR_TYPE_URL = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
SYSTEM_PREFIX = "http://hl7.org/fhirpath/System."
CODED_TYPES = frozenset({"code", "Coding", "CodeableConcept"})


@lru_cache(maxsize=1)
def definitions() -> dict[str, dict]:
    """StructureDefinitions by id: every resource (abstract ones included) and datatype."""
    out: dict[str, dict] = {}
    for name in ("profiles-types.json", "profiles-resources.json"):
        for entry in load_json(name)["entry"]:
            res = entry["resource"]
            if res["resourceType"] == "StructureDefinition" and "snapshot" in res:
                out[res["id"]] = res
    return out


def type_suffix(code: str) -> str:
    return code[:1].upper() + code[1:]


def _root_constraint_keys(sd_id: str) -> frozenset[str]:
    sd = definitions().get(sd_id)
    if sd is None:
        return frozenset()
    return frozenset(c["key"] for c in sd["snapshot"]["element"][0].get("constraint", []))


def _type_ref(type_: dict, path: str, is_resource_id: bool) -> TypeRef:
    code = type_["code"]
    if code.startswith(SYSTEM_PREFIX):
        if is_resource_id:
            return TypeRef("id", PRIMITIVE, sd_id="id", node_path="id")
        fhir_type = next(
            (e.get("valueUrl") for e in type_.get("extension", []) if e.get("url") == FHIR_TYPE_URL),
            "string",
        )
        return TypeRef(fhir_type or "string", PRIMITIVE, system=True)
    if code in PRIMITIVE_TYPES:
        return TypeRef(code, PRIMITIVE, sd_id=code, node_path=code)
    if code == "Resource":
        return TypeRef(code, RESOURCE)
    if code in resource_type_set():
        return TypeRef(code, RESOURCE, resource_type=code)
    profiles = type_.get("profile") or []
    sd_id = profiles[0].rsplit("/", 1)[-1] if profiles else code
    if sd_id not in definitions():
        sd_id = code
    return TypeRef(code, COMPLEX, sd_id=sd_id, node_path=definitions()[sd_id]["type"])


def _element(sd_id: str, el: dict, has_children: bool, is_resource_id: bool) -> Element:
    path = el["path"]
    name = path.rsplit(".", 1)[-1]
    choice = name.endswith("[x]")
    base_max = el.get("base", {}).get("max", el["max"])
    if "contentReference" in el:
        types: tuple[TypeRef, ...] = (
            TypeRef("BackboneElement", BACKBONE, sd_id=sd_id, node_path=el["contentReference"][1:]),
        )
    elif has_children:
        types = (TypeRef(el["type"][0]["code"], BACKBONE, sd_id=sd_id, node_path=path),)
    else:
        types = tuple(_type_ref(t, path, is_resource_id) for t in el.get("type", []))
    binding = None
    raw_binding = el.get("binding") or {}
    if raw_binding.get("strength") == "required" and raw_binding.get("valueSet"):
        if any(t.code in CODED_TYPES for t in types):
            binding = expand(raw_binding["valueSet"])
    constraints = ()
    if not has_children and "contentReference" not in el:
        inherited: set[str] = set(invariants.NATIVE)
        for t in types:
            inherited |= _root_constraint_keys(t.sd_id or t.code)
        constraints = tuple(invariants.build(c, path) for c in el.get("constraint", []) if c["key"] not in inherited)
    element = Element(
        name=name[:-3] if choice else name,
        path=path,
        min=int(el.get("min", 0)),
        max=None if el["max"] == "*" else int(el["max"]),
        array=base_max != "1",
        choice=choice,
        types=types,
        binding=binding,
        constraints=constraints,
    )
    _plan(element)
    return element


def _plan(element: Element) -> None:
    """What the walker may skip for this element: counting its occurrences when no count can
    break a rule (a single value occurs once, an unbounded array has no maximum), and the slow
    checks of a good primitive value when nothing else applies to it."""
    can_exceed = element.max is not None and (element.array or element.max < 1)
    element.counted = element.min > 0 or element.choice or can_exceed
    element.plain = not element.array and not element.constraints
    element.plain_array = element.array and not element.constraints
    for ref in element.types:
        if ref.kind == PRIMITIVE:
            ref.ok = fast_checks()[ref.code]
            if element.binding is not None and ref.code == "code":
                ref.codes = element.binding.codes


@cache
def sd_nodes(sd_id: str) -> dict[str, Node]:
    """Every node (root and backbone elements) of one StructureDefinition, by path."""
    sd = definitions()[sd_id]
    elements = sd["snapshot"]["element"]
    root_path = elements[0]["path"]
    is_primitive = sd.get("kind") == "primitive-type"
    is_resource = sd.get("kind") == "resource"
    children: dict[str, list[dict]] = {}
    for el in elements[1:]:
        children.setdefault(el["path"].rsplit(".", 1)[0], []).append(el)
    defs = {el["path"]: el for el in elements}
    nodes: dict[str, Node] = {}
    for path in [root_path, *(p for p in children if p != root_path)]:
        if path not in defs:
            continue
        node = Node(sd_id=sd_id, path=path, is_resource=is_resource and path == root_path)
        members = []
        for el in children[path]:
            name = el["path"].rsplit(".", 1)[-1]
            if is_primitive and name == "value":
                continue  # the value is the JSON property itself
            is_resource_id = node.is_resource and name == "id"
            element = _element(sd_id, el, el["path"] in children, is_resource_id)
            members.append(element)
            for ref in element.types:
                key = element.name + type_suffix(ref.code) if element.choice else element.name
                node.keys[key] = (element, ref)
        node.elements = tuple(members)
        node.required = tuple(e for e in members if e.min > 0)
        keys_for: dict[str, tuple[str, ...]] = {}
        for key, (element, _) in node.keys.items():
            keys_for[element.name] = (*keys_for.get(element.name, ()), key)
        model_path = sd["type"] if path == root_path else path
        node.constraints = tuple(
            invariants.build(c, model_path, keys_for)
            for c in defs[path].get("constraint", [])
            if c["key"] not in invariants.NATIVE
        )
        nodes[path] = node
    return nodes


def resolve(ref: TypeRef) -> Node:
    """The node a complex, backbone or primitive type points to (cached on the TypeRef)."""
    if ref.node is None:
        ref.node = sd_nodes(ref.sd_id)[ref.node_path]
    return ref.node


def resource_node(resource_type: str) -> Node | None:
    if resource_type not in resource_type_set():
        return None
    return sd_nodes(resource_type)[resource_type]


def warm() -> None:
    """Compile every resource and datatype up front and link their nodes (call at start-up)."""
    for sd_id, sd in definitions().items():
        if sd.get("abstract") and sd.get("kind") != "primitive-type":
            continue
        for node in sd_nodes(sd_id).values():
            for _element, ref in node.keys.values():
                if ref.kind != RESOURCE and ref.sd_id:
                    resolve(ref)
