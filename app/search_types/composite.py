"""The ``composite`` search type: ``[first]$[second]($[third])``, each part searched as its
component's type (https://hl7.org/fhir/R4/search.html#composite).

For each node of the composite's expression, every combination of its components' values (each
component expression evaluated on that node) is one value. Stored in ``sp_<type>_composite``:
the first component as ``a_system``/``a_code`` (token, or a reference as ``Type/id``), the second
as ``b_*`` by its type (system, code, num, low, high, str), the third's number as ``c_num``; the
generated ``hash`` of (param, a_code) indexed on ``(hash, b_code)`` and ``(hash, b_num)``."""

from __future__ import annotations

import itertools
from typing import Any, NamedTuple

from app.errors import invalid
from app.fhirpath import compile_expression
from app.fhirspec.search_parameters import SearchParam
from app.search_types.date import DATE, date_condition
from app.search_types.nodes import normalize_string
from app.search_types.number import NUMBER, number_condition
from app.search_types.protocol import NO_COMPONENT, Nodes, Rows, SearchType, SideTable, hash_condition
from app.search_types.quantity import QUANTITY, quantity_condition
from app.search_types.reference import REFERENCE
from app.search_types.sql import Args, all_of, like_prefix
from app.search_types.string import STRING
from app.search_types.syntax import split_composite, unescape
from app.search_types.token import TOKEN, token_condition
from app.search_types.uri import URI

COMPONENT_TYPES: dict[str, SearchType] = {t.name: t for t in (STRING, TOKEN, DATE, NUMBER, QUANTITY, REFERENCE, URI)}
_BY_VALUE = {t.value_class: t for t in COMPONENT_TYPES.values()}


class CompositeValue(NamedTuple):
    components: tuple[Any, ...]


def _component(value: object) -> tuple:
    kind = _BY_VALUE.get(type(value))
    return kind.component(value) if kind is not None else NO_COMPONENT


def _second(code: str, kind: str, part: str, args: Args) -> str:
    """The condition of the second component, by its type, on the ``b_*`` columns."""
    if kind == "token":
        return token_condition(code, part, None, args, ("s.b_system", "s.b_code"), hashed=None)
    if kind == "quantity":
        return quantity_condition(code, part, args, ("s.b_num", "s.b_system", "s.b_code", "s.b_code"), hashed=False)
    if kind == "number":
        return number_condition(code, part, args, "s.b_num")
    if kind == "date":
        return date_condition(code, part, args, "s.b_low", "s.b_high")
    if kind == "string":
        return f"s.b_str LIKE {args.add(like_prefix(normalize_string(unescape(part))))}"
    raise invalid(f"Search parameter '{code}': component type {kind} is not supported")


class CompositeType(SearchType):
    name = "composite"
    value_class = CompositeValue
    tables = (
        SideTable(
            "composite",
            (
                ("a_system", "text"),
                ("a_code", "text"),
                ("b_system", "text"),
                ("b_code", "text"),
                ("b_num", "numeric"),
                ("b_low", "timestamptz"),
                ("b_high", "timestamptz"),
                ("b_str", "text"),
                ("c_num", "numeric"),
            ),
            (("b_code", "(hash, b_code) INCLUDE (key)"), ("b_num", "(hash, b_num) INCLUDE (key)")),
            hash="a_code",
        ),
    )

    def extract(self, param: SearchParam, nodes: Nodes, root: dict) -> list[CompositeValue]:
        if any(c.param is None or c.param.type not in COMPONENT_TYPES for c in param.components):
            return []
        out: list[CompositeValue] = []
        for typ, node in nodes:
            parts: list[list[Any]] = []
            # the last components (the values) are the ones most often absent: test them first
            for comp in reversed(param.components):
                assert comp.param is not None
                sub = compile_expression(comp.expression, typ)
                values = COMPONENT_TYPES[comp.param.type].extract(comp.param, sub.typed(node, root), root)
                if comp.param.type == "token":  # a CodeableConcept's text-only value is for :text only
                    values = [v for v in values if v.code is not None]
                parts.append(list(dict.fromkeys(values)))
                if not parts[-1]:
                    break
            else:
                parts.reverse()
                out.extend(CompositeValue(combo) for combo in itertools.product(*parts))
        return out

    def add_rows(self, code: str, values: list[CompositeValue], out: Rows) -> None:
        rows = out["composite"]
        for v in values:
            a = _component(v.components[0])
            b = _component(v.components[1]) if len(v.components) > 1 else NO_COMPONENT
            c = _component(v.components[2]) if len(v.components) > 2 else NO_COMPONENT
            rows.append((code, a[0], a[1], b[0], b[1], b[2], b[3], b[4], b[5], c[2]))

    def condition(self, code: str, value: str, modifier: str | None, param: SearchParam, args: Args, base: str) -> str:
        parts = split_composite(value)
        components = param.components
        if len(parts) != len(components):
            raise invalid(
                f"Search parameter '{code}' is a composite of {len(components)} values joined by '$'; "
                f"got '{value[:80]}'"
            )
        conds = []
        for i, (part, comp) in enumerate(zip(parts, components, strict=True)):
            kind = comp.param.type if comp.param else "token"
            if i == 0 and kind == "reference":
                conds.append(hash_condition(code, unescape(part), args))
            elif i == 0:
                conds.append(token_condition(code, part, None, args, ("s.a_system", "s.a_code")))
            elif i == 1:
                conds.append(_second(code, kind, part, args))
            else:
                conds.append(number_condition(code, part, args, "s.c_num"))
        return all_of(conds)


COMPOSITE = CompositeType()
