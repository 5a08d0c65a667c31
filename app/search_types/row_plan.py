"""The search rows of a resource by one function per resource type, generated once from the
type's search parameters (and again when the registry of custom parameters changes).

For each parameter the function walks the elements its expression reads with nested loops
(:mod:`app.fhirpath.codegen`), converts each node with the converter of its static FHIR type
(:mod:`app.search_types.value_tuples`), de-duplicates the values in a dict and appends the rows:
the same rows, in the same order, as :func:`app.search_types.extraction.extract_all` followed by
each type's ``add_rows`` and :func:`app.search_types.text_document.text_rows`, which remain the
reference (and the path for what is not generated: expressions left to fhirpathpy).
A parameter whose expression starts from top-level elements costs a test when the resource has
none of them; the top-level elements are read once per resource."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from app.fhirpath import Extractor, compile_expression
from app.fhirpath.codegen import Source, element_path, emit_path, first_root_keys
from app.fhirpath.model import type_model
from app.fhirspec.search_parameters import SearchParam, params_for
from app.search_types.composite import COMPONENT_TYPES
from app.search_types.extraction import _extract, _indexed
from app.search_types.param_aliases import aliases
from app.search_types.registry import SEARCH_TYPES, type_of_value
from app.search_types.row_writers import ROWS, TEXTS, composite_rows, param_text
from app.search_types.token import TokenValue
from app.search_types.value_tuples import converter

RowFunction = Callable[[dict, dict[str, list[tuple]], list[tuple]], None]
"""(resource, kind -> rows, text rows): append the resource's rows (``(param, ...columns)``)."""

SKIPPED = frozenset({"_id", "_lastUpdated"})
"""Answered from the current-state table's columns: no index rows (text rows aside)."""

_functions: dict[tuple[str, frozenset[str] | None], tuple[Mapping[str, SearchParam], RowFunction]] = {}


def row_function(resource_type: str, codes: frozenset[str] | None = None) -> RowFunction:
    """The row function of ``resource_type`` (only the parameters ``codes``, in code order, if
    given: the reindex of a custom parameter), built on first use and whenever the parameter
    registry has swapped the type's mapping (a custom SearchParameter came or went)."""
    params = params_for(resource_type)
    if not params:
        return _no_rows  # not a resource type
    cached = _functions.get((resource_type, codes))
    if cached is not None and cached[0] is params:
        return cached[1]
    chosen = params if codes is None else {c: params[c] for c in sorted(codes) if c in params}
    function = _build(resource_type, chosen)
    _functions[(resource_type, codes)] = (params, function)
    return function


def is_built(resource_type: str) -> bool:
    """Whether the row function of all of ``resource_type``'s parameters is built and current."""
    cached = _functions.get((resource_type, None))
    return cached is not None and cached[0] is params_for(resource_type)


def _no_rows(r: dict, o: dict[str, list[tuple]], texts: list[tuple]) -> None:
    return None


def _build(resource_type: str, params: Mapping[str, SearchParam]) -> RowFunction:
    """Twice: the first pass counts the element paths read, the second memoizes those read more
    than once."""
    counting = Source()
    _emit_all(counting, resource_type, params)
    src = Source(shared={key for key, n in counting.uses.items() if n > 1})
    _emit_all(src, resource_type, params)
    return src.compile("rows", "r, o, texts", f"<search rows of {resource_type}>")


def _emit_all(src: Source, resource_type: str, params: Mapping[str, SearchParam]) -> None:
    answered = aliases(resource_type)  # answered from other parameters' rows: none of their own
    for code, param in params.items():
        expression = param.expression_for(resource_type)
        if not expression or not _indexed(param):
            continue
        if code in answered:
            if param.type == "token":  # its :text rows stay (the texts of all its values together)
                _emit_param(src, code, param, compile_expression(expression, resource_type), rows=False)
            continue
        extractor = compile_expression(expression, resource_type)
        if code in SKIPPED and not _may_have_text(param, extractor):
            continue
        _emit_param(src, code, param, extractor, rows=code not in SKIPPED)


def _may_have_text(param: SearchParam, extractor: Extractor) -> bool:
    """Whether the parameter can give a text row: tokens of some object."""
    if extractor.branches is None:
        return param.type == "token"
    primitives = type_model().primitives
    return param.type == "token" and any(t is None or t not in primitives for _, t in extractor.branches)


def _generic(code: str, param: SearchParam, extractor: Extractor, r: dict, o: dict, texts: list, rows: bool) -> None:
    """A parameter the generated code does not walk itself: the extractor's values, as rows."""
    values = _extract(r, param, extractor)
    if not values:
        return
    if rows:
        type_of_value(values[0]).add_rows(code, values, o)
    if isinstance(values[0], TokenValue):  # a string parameter's :text reads its string rows
        param_text(code, [v.text for v in values], texts)


def _emit_param(src: Source, code: str, param: SearchParam, extractor: Extractor, rows: bool) -> None:
    branches = extractor.branches
    composite = param.type == "composite"
    components = _components(param, branches) if composite and branches is not None else None
    if branches is None or (composite and components is None):
        args = f"{code!r}, {src.const(param, 'PARAM')}, {src.const(extractor, 'EX')}, r, o, texts, {rows}"
        src.add(f"{src.const(_generic, 'GENERIC')}({args})")
        return
    if not branches or (composite and not components):
        return  # nothing can come out
    start = src.depth
    keys = first_root_keys(branches)
    if keys:
        src.open("if " + " or ".join(f"{src.root_element(k)} is not None" for k in keys) + ":")
    src.add("d = {}")
    for steps, typ in branches:
        if components is not None:
            emit_path(src, steps, "r", True, _composite_leaf(src, components[typ], param))
        else:
            emit_values(src, steps, "r", param.type, typ, "d")
    if composite:
        writer = src.const(composite_rows(tuple(c.param.type for c in param.components)), "COMP")  # type: ignore[union-attr]
    else:
        writer = src.const((ROWS if rows else TEXTS)[param.type], "W")
    src.add(f"if d: {writer}({code!r}, d, o, texts)")
    src.depth = start


def _components(param: SearchParam, branches: list) -> dict[str | None, list[Extractor]] | None:
    """Per static type of the composite's nodes, the compiled component expressions; None when
    one is left to fhirpathpy (or a node type is unknown); empty when no value can come out."""
    if any(c.param is None or c.param.type not in COMPONENT_TYPES for c in param.components):
        return {}
    out: dict[str | None, list[Extractor]] = {}
    for _, typ in branches:
        if typ is None:
            return None
        subs = [compile_expression(c.expression, typ) for c in param.components]
        if any(s.is_fallback for s in subs):
            return None
        out[typ] = subs
    return out


def emit_values(src: Source, steps: tuple, focus: str, param_type: str, typ: str | None, into: str) -> None:
    """The code adding to ``into`` the values of the nodes ``steps`` yield from ``focus``; the
    values of a path of elements from the resource are computed once per call (``code`` is read
    by half a dozen parameters of an Observation)."""
    path = element_path(steps) if focus == "r" else None
    key = (path, param_type, typ)
    if path is not None:
        src.uses[key] += 1
    if path is None or key not in src.shared:
        emit_path(src, steps, focus, focus == "r", _convert_leaf(src, param_type, typ, into))
        return
    memo = src.memo(key)
    start = src.depth
    src.open(f"if {src.root_element(path[0])} is not None:")
    src.open(f"if {memo} is None:")  # at each use: the first may sit in a branch not taken
    src.add(f"{memo} = {{}}")
    emit_path(src, steps, focus, True, _convert_leaf(src, param_type, typ, memo))
    src.depth -= 1
    src.add(f"{into}.update({memo})")
    src.depth = start


def _convert_leaf(src: Source, param_type: str, typ: str | None, into: str) -> Callable[[str], None]:
    """The code converting a node (named by the argument) of static type ``typ`` into ``into``;
    malformed nodes (an object where a primitive belongs, or the reverse) are skipped."""
    kind = SEARCH_TYPES[param_type]
    if typ is None:

        def untyped(var: str) -> None:
            src.add(f"{src.const(_slow(kind, None), 'SLOW')}({var}, {into}, r)")

        return untyped
    primitive = typ in type_model().primitives
    found = converter(param_type, typ, primitive)
    conv = src.const(found if found is not None else _slow(kind, typ), "CONV")

    def leaf(var: str) -> None:
        if primitive and param_type == "token":
            src.open(f"if type({var}) is str:")
            src.add(f"if {var}: {into}[(None, {var}, None, ())] = None")
            src.depth -= 1
            src.open(f"elif not isinstance({var}, dict):")
        else:
            src.open(f"if {'not ' if primitive else ''}isinstance({var}, dict):")
        src.add(f"{conv}({var}, {into}, r)")

    return leaf


_slow_cache: dict[tuple[str, str | None], Callable[[Any, dict, dict], None]] = {}


def _slow(kind: Any, typ: str | None) -> Callable[[Any, dict, dict], None]:
    """A converter through the type's own ``convert``."""
    key = (kind.name, typ)
    if key not in _slow_cache:

        def convert(v: Any, d: dict, r: dict) -> None:
            for value in kind.convert(typ, v, r):
                d[value] = None

        _slow_cache[key] = convert
    return _slow_cache[key]


def _composite_leaf(src: Source, subs: list[Extractor], param: SearchParam) -> Callable[[str], None]:
    """For each composite node, every combination of its components' values (the last
    components, most often absent, evaluated first)."""
    comp_types = [c.param.type for c in param.components]  # type: ignore[union-attr]

    def leaf(node: str) -> None:
        names = [src.name("c") for _ in subs]
        for i in reversed(range(len(subs))):
            src.add(f"{names[i]} = {{}}")
            for steps, typ in subs[i].branches or ():
                emit_values(src, steps, node, comp_types[i], typ, names[i])
            if comp_types[i] == "token":  # a CodeableConcept's text-only value is for :text only
                src.add(f"if {names[i]}: {names[i]} = {{v: None for v in {names[i]} if v[1] is not None}}")
            src.open(f"if {names[i]}:")
        items = [src.name("a") for _ in subs]
        for item, name in zip(items, names, strict=True):
            src.open(f"for {item} in {name}:")
        src.add(f"d[({', '.join(items)},)] = None")

    return leaf


__all__ = ["SKIPPED", "RowFunction", "row_function"]
