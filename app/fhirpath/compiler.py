"""Compiles FHIRPath expressions into Python closures over FHIR JSON (https://hl7.org/fhirpath/N1/).

Compilation is typed against the R4 model (:mod:`app.fhirpath.model`): an expression becomes a
list of *branches*, each a pipeline of steps with a static output type. A choice element expands
into one branch per variant (``Observation.value`` -> ``valueQuantity``, ``valueString``, ...), so
``as``/``ofType``/``is`` are mostly decided at compile time, and every extracted value comes with
its FHIR type. A step maps a collection (a list of JSON values) to a collection; arrays flatten,
and values of the wrong JSON shape are skipped.

Results are not de-duplicated across ``|`` branches and are grouped by branch (FHIRPath's union
removes duplicates and keeps document order); search indexing does not depend on either.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from app.fhirpath.model import TypeModel, type_model
from app.fhirpath.parser import Node, Unsupported, parse
from app.fhirpath.references import resolve_stub

Step = Callable[[list, dict], list]
Branch = tuple[tuple[Step, ...], str | None]  # (pipeline, static FHIR type of its output)

_ANY_RESOURCE = "Resource"


def run(steps: tuple[Step, ...], items: list, root: dict) -> list:
    for step in steps:
        items = step(items, root)
        if not items:
            return items
    return items


def collect(branches: list[Branch], items: list, root: dict) -> list:
    if len(branches) == 1:
        return run(branches[0][0], items, root)
    out: list = []
    for steps, _ in branches:
        out.extend(run(steps, items, root))
    return out


def _getter(key: str) -> Step:
    def step(items: list, root: dict) -> list:
        out: list = []
        for item in items:
            if type(item) is dict:
                value = item.get(key)
                if value is None:
                    continue
                if type(value) is list:
                    out.extend(v for v in value if v is not None)
                else:
                    out.append(value)
        return out

    step.key = key  # type: ignore[attr-defined]  # lets callers skip resources lacking the element
    return step


def _resource_filter(type_name: str) -> Step:
    def step(items: list, root: dict) -> list:
        return [i for i in items if type(i) is dict and i.get("resourceType") == type_name]

    step.passes = True  # type: ignore[attr-defined]  # keeps the focus: look past it for the first key
    step.resource_type = type_name  # type: ignore[attr-defined]  # for app.fhirpath.codegen
    return step


def _literal(value: object) -> Step:
    def step(items: list, root: dict) -> list:
        return [value]

    step.literal = value  # type: ignore[attr-defined]  # for key_equals below
    return step


def _key_equals(lhs: list[Branch], rhs: list[Branch]) -> tuple[str, str] | None:
    """(key, text) when ``lhs = rhs`` compares one element of the focus with a string literal
    (``system = 'email'``): app.fhirpath.codegen tests a string element with ``==`` at once."""
    if len(lhs) != 1 or len(rhs) != 1 or len(lhs[0][0]) != 1 or len(rhs[0][0]) != 1:
        return None
    key, literal = getattr(lhs[0][0][0], "key", None), getattr(rhs[0][0][0], "literal", None)
    return (key, literal) if isinstance(key, str) and isinstance(literal, str) else None


def _identity(items: list, root: dict) -> list:
    return items


_identity.passes = True  # type: ignore[attr-defined]


def first_keys(branches: list[Branch]) -> frozenset[str] | None:
    """The top-level elements an expression can read first, or None when it is not that simple:
    a resource with none of them yields nothing, so it can be skipped without evaluating."""
    keys: set[str] = set()
    for steps, _ in branches:
        for step in steps:
            if getattr(step, "passes", False):
                continue
            key = getattr(step, "key", None)
            if key is None:
                return None
            keys.add(key)
            break
        else:
            return None
    return frozenset(keys)


def _truth(values: list) -> bool | None:
    """FHIRPath singleton evaluation to Boolean: empty -> unknown; a non-Boolean item -> true."""
    if not values:
        return None
    if len(values) == 1 and isinstance(values[0], bool):
        return values[0]
    return True


def _num(value: object) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | Decimal):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    return None


def _equal(a: object, b: object) -> bool:
    if type(a) is str and type(b) is str:  # the common case (a code against a literal)
        return a == b
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    na, nb = _num(a), _num(b)
    if na is not None or nb is not None:
        return na is not None and nb is not None and na == nb
    return a == b


class _Compiler:
    def __init__(self, model: TypeModel, root_type: str) -> None:
        self.model = model
        self.root_type = root_type

    def compile(self, node: Node, ctx: str | None) -> list[Branch]:
        kind = node[0]
        if kind == "ident":
            return self.ident(node[1], ctx)
        if kind == "member":
            return [b for t in self.compile(node[1], ctx) for b in self.member(t, node[2])]
        if kind == "call":
            return self.call(node, ctx)
        if kind == "index":
            return self.index(node, ctx)
        if kind == "lit":
            value = node[1]
            typ = "boolean" if isinstance(value, bool) else "string" if isinstance(value, str) else "decimal"
            return [((_literal(value),), typ)]
        if kind == "var":
            if node[1] in ("this",):
                return [((_identity,), ctx)]
            if node[1] in ("resource", "rootResource", "context"):
                return [((lambda items, root: [root],), self.root_type)]
            raise Unsupported(f"variable %{node[1]}")
        if kind == "op":
            return self.op(node, ctx)
        raise Unsupported(f"node {kind}")

    # -- paths ---------------------------------------------------------------------------------
    def ident(self, name: str, ctx: str | None) -> list[Branch]:
        model = self.model
        if name[:1].isupper() and (model.is_resource(name) or name in model.parents):
            # A type name at the start of a path filters the focus by type (`Patient.name`).
            if ctx is None:
                raise Unsupported(f"type {name} on an untyped focus")
            if model.is_subtype(ctx, name):
                return [((_identity,), ctx)]
            if model.is_resource(name) and model.is_subtype(name, ctx):
                return [((_resource_filter(name),), name)]
            return []
        return self.member(((), ctx), name)

    def member(self, branch: Branch, name: str) -> list[Branch]:
        steps, typ = branch
        if typ is None:
            raise Unsupported(f"'.{name}' on an untyped collection")
        element = self.model.element(typ, name)
        if element is None:
            raise Unsupported(f"{typ} has no element {name!r}")
        return [(steps + (_getter(v.key),), v.type) for v in element.variants]

    def index(self, node: Node, ctx: str | None) -> list[Branch]:
        branches = self.compile(node[1], ctx)
        if node[2][0] != "lit" or not isinstance(node[2][1], int) or isinstance(node[2][1], bool):
            raise Unsupported("indexer with a non-integer literal")
        pos = node[2][1]
        return [((lambda items, root: collect(branches, items, root)[pos : pos + 1],), self._one_type(branches))]

    def _one_type(self, branches: list[Branch]) -> str | None:
        types = {t for _, t in branches}
        if len(types) > 1:
            raise Unsupported("positional function over a mixed-type collection")
        return types.pop() if types else None

    # -- functions -----------------------------------------------------------------------------
    def call(self, node: Node, ctx: str | None) -> list[Branch]:
        _, target, name, args = node
        targets = self.compile(target, ctx) if target is not None else [((), ctx)]
        if name == "where" and len(args) == 1:
            return [self.where(b, args[0]) for b in targets]
        if name in ("as", "ofType") and len(args) == 1:
            return [b for t in targets for b in self.as_type(t, args[0][1])]
        if name == "is" and len(args) == 1:
            return self.is_type(targets, args[0][1])
        if name == "resolve" and not args:
            return [self.resolve(b) for b in targets]
        if name == "extension" and len(args) == 1 and args[0][0] == "lit":
            url = args[0][1]
            return [self.extension(b, url) for b in targets]
        if name in ("exists", "empty") and len(args) <= 1:
            if args:
                targets = [self.where(b, args[0]) for b in targets]
            want = name == "exists"
            return [((lambda items, root: [bool(collect(targets, items, root)) is want],), "boolean")]
        if name == "not" and not args:

            def negate(items: list, root: dict) -> list:
                value = _truth(collect(targets, items, root))
                return [] if value is None else [not value]

            return [((negate,), "boolean")]
        if name in ("first", "last") and not args:
            typ = self._one_type(targets)
            pick = slice(0, 1) if name == "first" else slice(-1, None)
            return [((lambda items, root: collect(targets, items, root)[pick],), typ)]
        raise Unsupported(f"function {name}() with {len(args)} argument(s)")

    def where(self, branch: Branch, predicate: Node) -> Branch:
        steps, typ = branch
        preds = self.compile(predicate, typ)

        def step(items: list, root: dict) -> list:
            return [i for i in items if collect(preds, [i], root) == [True]]

        step.preds = preds  # type: ignore[attr-defined]  # for app.fhirpath.codegen
        if predicate[0] == "op" and predicate[1] == "is" and predicate[2] == ("call", None, "resolve", ()):
            step.resolve_test = self._type_test("Resource", predicate[3][1])  # type: ignore[attr-defined]
        return (steps + (step,), typ)

    def as_type(self, branch: Branch, type_name: str) -> list[Branch]:
        steps, typ = branch
        model = self.model
        wanted = model.canonical_type(type_name)
        if typ is None:
            raise Unsupported(f"as({type_name}) on an untyped collection")
        if model.is_subtype(typ, wanted):
            return [branch]
        if model.is_resource(typ) and model.is_resource(wanted) and model.is_subtype(wanted, typ):
            return [(steps + (_resource_filter(wanted),), wanted)]
        return []

    def is_type(self, targets: list[Branch], type_name: str) -> list[Branch]:
        tests: list[tuple[tuple[Step, ...], Callable[[object], bool]]] = []
        for steps, typ in targets:
            if typ is None:
                raise Unsupported(f"is({type_name}) on an untyped collection")
            tests.append((steps, self._type_test(typ, type_name)))

        def step(items: list, root: dict) -> list:
            results = [test(v) for steps, test in tests for v in run(steps, items, root)]
            return results[:1]

        return [((step,), "boolean")]

    def _type_test(self, typ: str, type_name: str) -> Callable[[object], bool]:
        """Whether a value of static type ``typ`` is a ``type_name`` (``is``)."""
        model = self.model
        wanted = model.canonical_type(type_name)
        if model.is_subtype(typ, wanted):
            return lambda v: True
        if model.is_resource(typ) and model.is_resource(wanted):
            return lambda v: isinstance(v, dict) and model.is_subtype(v.get("resourceType", ""), wanted)
        return lambda v: False

    def resolve(self, branch: Branch) -> Branch:
        steps, typ = branch
        if typ is None or not (self.model.is_subtype(typ, "Reference") or self.model.is_subtype(typ, "uri")):
            raise Unsupported(f"resolve() on {typ}")

        def step(items: list, root: dict) -> list:
            return [s for s in (resolve_stub(i, root) for i in items) if s is not None]

        step.resolves = True  # type: ignore[attr-defined]  # for app.fhirpath.codegen
        return (steps + (step,), _ANY_RESOURCE)

    def extension(self, branch: Branch, url: str) -> Branch:
        steps, _ = branch

        def step(items: list, root: dict) -> list:
            out = []
            for item in items:
                if type(item) is dict and type(item.get("extension")) is list:
                    out.extend(e for e in item["extension"] if type(e) is dict and e.get("url") == url)
            return out

        step.url = url  # type: ignore[attr-defined]  # for app.fhirpath.codegen
        return (steps + (step,), "Extension")

    # -- operators -----------------------------------------------------------------------------
    def op(self, node: Node, ctx: str | None) -> list[Branch]:
        _, op, left, right = node
        if op == "|":
            return self.compile(left, ctx) + self.compile(right, ctx)
        if op == "as":
            return [b for t in self.compile(left, ctx) for b in self.as_type(t, right[1])]
        if op == "is":
            return self.is_type(self.compile(left, ctx), right[1])
        lhs, rhs = self.compile(left, ctx), self.compile(right, ctx)
        if op in ("=", "!="):
            negate = op == "!="

            def compare(items: list, root: dict) -> list:
                a, b = collect(lhs, items, root), collect(rhs, items, root)
                if not a or not b:
                    return []
                if len(a) == 1 and len(b) == 1:
                    same = _equal(a[0], b[0])
                else:
                    same = len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
                return [same is not negate]

            if not negate:
                compare.key_equals = _key_equals(lhs, rhs)  # type: ignore[attr-defined]
            return [((compare,), "boolean")]
        if op in ("and", "or", "xor"):

            def logic(items: list, root: dict) -> list:
                a = _truth(collect(lhs, items, root))
                if (a is False and op == "and") or (a is True and op == "or"):
                    return [a]  # decided by the left operand (the spec lets the right go unevaluated)
                b = _truth(collect(rhs, items, root))
                if op == "and":
                    result = False if a is False or b is False else (None if a is None or b is None else True)
                elif op == "or":
                    result = True if a is True or b is True else (None if a is None or b is None else False)
                else:
                    result = None if a is None or b is None else a != b
                return [] if result is None else [result]

            return [((logic,), "boolean")]
        raise Unsupported(f"operator {op}")


def compile_branches(expression: str, context_type: str | None = None) -> list[Branch]:
    """Typed branches of ``expression`` evaluated with a focus of ``context_type`` (a resource
    type, a data type or a backbone path; None = any resource). Raises :class:`Unsupported`."""
    model = type_model()
    ctx = context_type or _ANY_RESOURCE
    root_type = ctx.split(".", 1)[0]
    if not model.is_resource(root_type):
        root_type = _ANY_RESOURCE  # a data type focus: `%resource` can be any resource
    return _Compiler(model, root_type).compile(parse(expression), ctx)
