"""Whether the walker would find no error in a resource, answered by straight-line code
generated once per object shape (node) from the compiled nodes, instead of the walker's
interpretation of them: the common case, a valid resource, costs about half a walk.

The generated function of a node reads each element it allows with one ``dict.get`` and checks
what the walker checks of a good value: the JSON type, the primitive's form, a required binding,
the count, ``ele-1`` and ``ext-1``, a single primitive's ``_name`` object, contained resources,
and every invariant of severity error (by :func:`app.validation.invariants.broken`, as the walker
does). A warning never stops a write, so the write path
(:func:`app.commands.validate.check_resource`) asks only this first.

Anything it does not handle itself makes it answer False: an element the node does not allow
(unknown, or a repeating primitive's ``_name`` array), an explicit null, a nested resource other
than a contained one, any failed check, an exception. The walker then runs and finds and
describes every issue: this path only ever saves the walk of a resource in which the walker would
find no error and no unknown element, so the issues a request gets are the walker's alone."""

from __future__ import annotations

import threading
from collections.abc import Callable

from app.fhirspec.resource_types import resource_type_set
from app.validation import invariants
from app.validation.bindings import Expansion
from app.validation.compile import resolve, resource_node
from app.validation.model import PRIMITIVE, RESOURCE, Constraint, Element, Node, TypeRef
from app.validation.native import SHORTCUTS
from app.validation.walker import codings_of, outside_binding

NodeCheck = Callable[[dict, dict, dict, dict, int], bool]
"""(object, %resource, %rootResource, the walk's memo, its depth) -> True when the walker would
find no error in the object."""

MAX_DEPTH = 100
"""Objects nested deeper are left to the walker. It spends three frames of Python's stack on a
level where these checks spend one, so the checks would accept nestings it refuses ("nested too
deeply to validate"); at this depth it never does (and orjson, which writes the event, serializes
at most 255 nested arrays and objects)."""

_namespace: dict[str, object] = {}
_names: dict[int, str] = {}  # id(node) -> the name of its generated function in _namespace
_consts: dict[int, str] = {}  # id(value) -> its name in _namespace
_roots: dict[str, NodeCheck] = {}
_lock = threading.Lock()


def accepts(resource: object) -> bool:
    """True only when :class:`app.validation.walker.Walker` would report no error and no unknown
    element for ``resource`` as a top-level resource (in strict or lenient handling; warnings of
    invariants aside); False says nothing (walk it)."""
    check = _check_of(resource)
    if check is None:
        return False
    try:
        return check(resource, resource, resource, {}, 0)
    except Exception:  # too deep (RecursionError), or a value no check foresaw: the walker says what
        return False


def _check_of(resource: object) -> NodeCheck | None:
    """The check of the resource's type; None when it is no resource of a known type."""
    if type(resource) is not dict:
        return None
    rtype = resource.get("resourceType")
    if type(rtype) is not str:
        return None
    check = _roots.get(rtype)
    if check is None and rtype in resource_type_set():
        check = _root_check(rtype)
    return check


def built(resource_type: str) -> bool:
    """Whether the check of ``resource_type`` has been generated in this process."""
    return resource_type in _roots


def prepare(resource_type: str) -> None:
    """Generate the check of ``resource_type`` (a known type) now, if not yet (any thread)."""
    if resource_type not in _roots:
        _root_check(resource_type)


def _root_check(resource_type: str) -> NodeCheck:
    with _lock:
        if resource_type not in _roots:
            node = resource_node(resource_type)
            assert node is not None  # resource_type_set and the snapshots agree
            name = _name(node, pending := [])
            while pending:
                _define(pending.pop(), pending)
            _roots[resource_type] = _namespace[name]  # type: ignore[assignment]
        return _roots[resource_type]


def _name(node: Node, pending: list[Node]) -> str:
    name = _names.get(id(node))
    if name is None:
        name = _names[id(node)] = f"node_{len(_names)}"
        pending.append(node)
    return name


def _const(value: object) -> str:
    name = _consts.get(id(value))
    if name is None:
        name = _consts[id(value)] = f"c_{len(_consts)}"
        _namespace[name] = value
    return name


def _define(node: Node, pending: list[Node]) -> None:
    """Compile the check of ``node`` into the shared namespace (the checks of the nodes it
    contains are named now, defined when ``pending`` is worked off: they may be recursive)."""
    lines = [f"def {_names[id(node)]}(d, r, t, m, h):", f"    if h > {MAX_DEPTH}:", "        return False"]
    plain = frozenset(node.keys) | ({"resourceType"} if node.is_resource else frozenset())
    extended = plain | {"_" + key for key, (element, ref) in node.keys.items() if _extensible(element, ref)}
    if extended != plain:  # p: no ``_name`` object (the common case: none is read)
        lines.append(f"    p = {_const(plain)}.issuperset(d)")
        lines.append(f"    if (not p and not {_const(extended)}.issuperset(d)) or None in d.values():")
    else:
        lines.append(f"    if not {_const(plain)}.issuperset(d) or None in d.values():")
    lines.append("        return False")
    if not node.is_resource:  # an empty object, or one holding only an id (ele-1)
        lines.append("    if not d or (len(d) == 1 and 'id' in d):")
        lines.append("        return False")
    for element in node.elements:
        variants = [(key, ref) for key, (el, ref) in node.keys.items() if el is element]
        lines += _element_lines(element, variants, pending)
    lines += ["    " + line for line in _constraint_lines(node.constraints, "d")]
    lines.append("    return True")
    exec(compile("\n".join(lines), f"<validation of {node.path}>", "exec"), _namespace)  # source we generated


def _element_lines(element: Element, variants: list[tuple[str, TypeRef]], pending: list[Node]) -> list[str]:
    """Check each present variant of ``element`` and count its values against min and max."""
    counted = element.counted
    lines = ["    n = 0"] if counted else []
    for key, ref in variants:
        lines.append(f"    v = d.get({key!r})")
        if _extensible(element, ref):
            lines += _extension_lines(key, ref, counted, pending)
        lines.append("    if v is not None:")
        lines += ["        " + line for line in _value_lines(element, ref, pending)]
        if counted:
            lines.append(f"        n += {'len(v)' if element.array else '1'}")
    if counted:
        bounds = [f"n < {element.min}"] if element.min else []
        bounds += [f"n > {element.max}"] if element.max is not None else []
        if bounds:
            lines += [f"    if {' or '.join(bounds)}:", "        return False"]
    return lines


def _extensible(element: Element, ref: TypeRef) -> bool:
    """A single primitive whose ``_name`` sibling (its id and extensions) the checks read (a
    repeating one's aligned arrays are left to the walker)."""
    return ref.kind == PRIMITIVE and not ref.system and bool(ref.sd_id) and not element.array


def _extension_lines(key: str, ref: TypeRef, counted: bool, pending: list[Node]) -> list[str]:
    """The ``_name`` object of a single primitive: a good object of the primitive's type (not
    empty, not only an id: ele-1); it counts as the element's one value when there is none."""
    check = _name(resolve(ref), pending)
    lines = [f"    e = None if p else d.get({'_' + key!r})", "    if e is not None:"]
    lines += [f"        if type(e) is not dict or not {check}(e, r, t, m, h + 1):", "            return False"]
    if counted:
        lines += ["        if v is None:", "            n += 1"]
    return lines


def _value_lines(element: Element, ref: TypeRef, pending: list[Node]) -> list[str]:
    """Lines (at the level of ``v``, the present value) that return False unless it is good."""
    if ref.kind == RESOURCE and element.path.endswith(".contained") and not ref.resource_type:
        return [
            "if type(v) is not list or not v:",
            "    return False",
            "for x in v:",
            "    if not contained_within(x, t, m, h):",
            "        return False",
        ]
    if ref.kind == RESOURCE or (ref.kind == PRIMITIVE and ref.ok is None):
        return ["return False"]  # a nested resource other than a container's contained ones: walk it
    if element.array:
        head = ["if type(v) is not list or not v:", "    return False", "for x in v:"]
        return head + ["    " + line for line in _item_lines(element, ref, "x", pending)]
    return _item_lines(element, ref, "v", pending)


def _item_lines(element: Element, ref: TypeRef, x: str, pending: list[Node]) -> list[str]:
    constraints = _constraint_lines(element.constraints, x)
    if ref.kind == PRIMITIVE:
        test = f"not {_const(ref.ok)}({x})" + (f" or {x} not in {_const(ref.codes)}" if ref.codes is not None else "")
        return [f"if {test}:", "    return False", *constraints]
    check = _name(resolve(ref), pending)
    lines = [f"if type({x}) is not dict or not {check}({x}, r, t, m, h + 1):", "    return False"]
    if ref.code == "Extension":  # ext-1: extensions or a value, not both
        lines += [f"if ('extension' in {x}) == any(k.startswith('value') for k in {x}):", "    return False"]
    lines += constraints
    if element.binding is not None and ref.code in ("Coding", "CodeableConcept"):
        lines.append(f"if not codings_within({_const(element.binding)}, {x}, {ref.code == 'Coding'}):")
        lines.append("    return False")
    return lines


def _constraint_lines(constraints: tuple[Constraint, ...], x: str) -> list[str]:
    """Return False when ``x`` violates one of the constraints of severity error: each evaluated
    unless its guards say it holds (the skips of :func:`app.validation.invariants.broken`, inline,
    and the constraint's shortcut, :data:`app.validation.native.SHORTCUTS`, first)."""
    lines = []
    for c in constraints:
        if c.severity != "error" or c.fn is None:
            continue
        tests = [f"not {_const(c.triggers)}.isdisjoint({x})"] if c.passes_when_absent and c.triggers is not None else []
        tests += [f"not {_const(group)}.isdisjoint({x})" for group in c.guards]
        tests += [f"{_const(group)}.isdisjoint({x})" for group in c.sufficient]
        tests += [f"not {_const(SHORTCUTS[c.key])}({x})"] if c.key in SHORTCUTS else []
        tests.append(f"evaluate({_const(c)}, {x}, r, t, m) is False")
        lines += [f"if {' and '.join(tests)}:", "    return False"]
    return lines


def _contained_within(resource: object, container: dict, memo: dict, depth: int) -> bool:
    """A resource contained in ``container``, the resource being checked (%rootResource)."""
    check = _check_of(resource)
    return check is not None and check(resource, resource, container, memo, depth + 1)  # type: ignore[arg-type]


def _codings_within(expansion: Expansion, value: dict, is_coding: bool) -> bool:
    """No Coding of ``value`` (itself, or a CodeableConcept's) falls outside the required binding."""
    return not any(isinstance(c, dict) and outside_binding(expansion, c) for c in codings_of(value, is_coding))


_namespace.update(evaluate=invariants.evaluate, codings_within=_codings_within, contained_within=_contained_within)
