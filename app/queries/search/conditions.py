"""One SQL condition per search criterion, one builder per parameter type
(https://hl7.org/fhir/R4/search.html). Each builder returns the condition on the side-table
alias ``s`` for one value; the criterion's values are ORed inside one ``EXISTS``, and ``:not`` /
``:missing`` wrap it. ``r`` is the current-state row."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from app.errors import invalid
from app.fhirspec.search_parameters import SearchParam
from app.projections.current_state import current_table
from app.projections.search_index import search_table
from app.projections.search_values import normalize_string
from app.queries.search.model import Criterion, unescape
from app.queries.search.sql import Args, all_of, any_of, escape_like, like_prefix
from app.queries.search.values import (
    approx_range,
    date_range,
    number,
    precision_range,
    split_composite,
    split_pipe,
    split_prefix,
)

_USES = {"eq": "lh", "ne": "lh", "gt": "h", "lt": "l", "ge": "lh", "le": "lh", "sa": "h", "eb": "l", "ap": "lh"}


def _range_condition(prefix: str, low: str, high: str, vl: str, vh: str) -> str:
    """The spec's prefix semantics between a stored range [low, high) and a search range [vl, vh).

    Each form leads with a predicate on one column alone (implied by the rest, since low < high)
    so that the (param, low) / (param, high) indexes bound the scan."""
    contained = f"({low} >= {vl} AND {high} <= {vh})"
    return {
        "eq": f"({low} >= {vl} AND {low} < {vh} AND {high} <= {vh})",
        "ne": f"NOT {contained}",
        "gt": f"{high} > {vh}",
        "lt": f"{low} < {vl}",
        "ge": f"({high} > {vl} AND ({high} > {vh} OR {low} >= {vl}))",
        "le": f"({low} < {vh} AND ({low} < {vl} OR {high} <= {vh}))",
        "sa": f"{low} >= {vh}",
        "eb": f"{high} <= {vl}",
        "ap": f"({low} < {vh} AND {high} > {vl})",
    }[prefix]


_WINDOW = {  # the window [from, to) the stored range must overlap, implied by each prefix
    "eq": ("l", "h"),
    "gt": ("h", None),
    "ge": ("l", None),
    "lt": (None, "l"),
    "le": (None, "h"),
    "sa": ("h", None),
    "eb": (None, "l"),
    "ap": ("l", "h"),
    "ne": (None, None),
}
RANGE = "tstzrange(s.low, s.high, '[)')"  # the GiST-indexed expression of the date side tables


def date_condition(
    code: str, value: str, args: Args, low: str = "s.low", high: str = "s.high", indexed: bool = False
) -> str:
    prefix, text = split_prefix(code, value)
    vl, vh = date_range(code, text)
    if prefix == "ap":
        try:
            vl, vh = approx_range(vl, vh)
        except OverflowError:
            pass
    uses = _USES[prefix]
    vl_ref = args.add(vl, "timestamptz") if "l" in uses else ""
    vh_ref = args.add(vh, "timestamptz") if "h" in uses else ""
    cond = _range_condition(prefix, low, high, vl_ref, vh_ref)
    if not indexed or prefix == "ne":
        return cond
    refs = {"l": vl_ref, "h": vh_ref, None: "NULL"}
    start, end = _WINDOW[prefix]
    return f"({RANGE} && tstzrange({refs[start]}, {refs[end]}, '[)') AND {cond})"


def _number_condition(code: str, prefix: str, text: str, args: Args, column: str) -> str:
    value = number(code, text)
    if prefix in ("eq", "ne"):
        lo, hi = precision_range(value)
        cond = f"({column} >= {args.add(lo, 'numeric')} AND {column} < {args.add(hi, 'numeric')})"
        return cond if prefix == "eq" else f"NOT {cond}"
    if prefix == "ap":
        spread = abs(value) * Decimal("0.1") or Decimal("0.1")
        return (
            f"({column} >= {args.add(value - spread, 'numeric')} AND {column} <= {args.add(value + spread, 'numeric')})"
        )
    op = {"gt": ">", "lt": "<", "ge": ">=", "le": "<=", "sa": ">", "eb": "<"}[prefix]
    return f"{column} {op} {args.add(value, 'numeric')}"


def number_value(code: str, value: str, args: Args, column: str = "s.value") -> str:
    prefix, text = split_prefix(code, value)
    return _number_condition(code, prefix, text, args, column)


def quantity_value(
    code: str, value: str, args: Args, cols: tuple[str, str, str, str] = ("s.value", "s.system", "s.code", "s.unit")
) -> str:
    num, system, unit_code = (split_pipe(value, 3) + ["", ""])[:3]
    prefix, text = split_prefix(code, num)
    parts = [_number_condition(code, prefix, text, args, cols[0])]
    if system and unit_code:
        parts += [f"{cols[1]} = {args.add(system)}", f"{cols[2]} = {args.add(unit_code)}"]
    elif unit_code:
        ref = args.add(unit_code)
        parts.append(f"({cols[2]} = {ref} OR {cols[3]} = {ref})")
    elif system:
        parts.append(f"{cols[1]} = {args.add(system)}")
    return all_of(parts)


def string_value(code: str, value: str, modifier: str | None, args: Args, norm: str = "s.norm") -> str:
    text = unescape(value)
    if modifier == "exact":
        return f"s.exact = {args.add(text)}"
    folded = normalize_string(text)
    if modifier == "contains":
        return f"{norm} LIKE {args.add('%' + escape_like(folded) + '%')}"
    return f"{norm} LIKE {args.add(like_prefix(folded))}"


def token_value(
    code: str, value: str, modifier: str | None, args: Args, cols: tuple[str, str] = ("s.system", "s.code")
) -> str:
    system_col, code_col = cols
    if modifier == "text":
        return f"s.text LIKE {args.add(like_prefix(normalize_string(unescape(value))))}"
    if modifier == "of-type":
        parts = split_pipe(value, 3)
        if len(parts) != 3 or not parts[1] or not parts[2]:
            raise invalid(f"{code}:of-type='{value[:60]}' must be [type-system]|[type-code]|[value]")
        return f"(s.of_type = {args.add(parts[0] + '|' + parts[1])} AND {code_col} = {args.add(parts[2])})"
    if "|" not in value.replace("\\|", ""):
        return f"{code_col} = {args.add(unescape(value))}"
    system, token = split_pipe(value, 2)
    if system == "":
        return f"({system_col} IS NULL AND {code_col} = {args.add(token)})"
    if token == "":
        return f"{system_col} = {args.add(system)}"
    return f"({system_col} = {args.add(system)} AND {code_col} = {args.add(token)})"


def reference_value(code: str, value: str, modifier: str | None, param: SearchParam, args: Args, base: str) -> str:
    text = unescape(value)
    if modifier == "identifier":
        system, ident = (split_pipe(value, 2) + [""])[:2] if "|" in value else ("", value)
        if "|" not in value:
            return f"s.ident_value = {args.add(ident)}"
        if system == "":
            return f"(s.ident_system IS NULL AND s.ident_value = {args.add(ident)})"
        if ident == "":
            return f"s.ident_system = {args.add(system)}"
        return f"(s.ident_system = {args.add(system)} AND s.ident_value = {args.add(ident)})"
    if modifier is not None:  # :[type]
        if "/" in text:
            raise invalid(f"{code}:{modifier}='{text[:60]}' takes a plain id, e.g. {code}:{modifier}=123")
        return f"(s.target_type = {args.add(modifier)} AND s.target_id = {args.add(text)})"
    if base and text.startswith(base + "/"):
        text = text[len(base) + 1 :]
    if "://" in text or text.startswith("urn:"):
        url, _, version = text.partition("|")
        cond = f"s.reference = {args.add(url)}"
        return f"({cond} OR s.reference = {args.add(text)})" if version else cond
    segments = text.split("/")
    if len(segments) >= 2 and segments[-2][:1].isupper():
        return f"(s.target_type = {args.add(segments[-2])} AND s.target_id = {args.add(segments[-1])})"
    if len(segments) == 1:
        return f"s.target_id = {args.add(text)}"
    raise invalid(f"Search parameter '{code}': '{text[:60]}' is not a reference (Type/id, id or an absolute URL)")


def uri_value(code: str, value: str, modifier: str | None, args: Args) -> str:
    text = unescape(value)
    if modifier == "below":
        return f"s.uri LIKE {args.add(like_prefix(text))}"
    if modifier == "above":
        return f"{args.add(text)} LIKE (replace(replace(s.uri, '%', '\\%'), '_', '\\_') || '%')"
    return f"s.uri = {args.add(text)}"


def composite_value(code: str, value: str, param: SearchParam, args: Args) -> str:
    parts = split_composite(value)
    components = param.components
    if len(parts) != len(components):
        raise invalid(
            f"Search parameter '{code}' is a composite of {len(components)} values joined by '$'; got '{value[:80]}'"
        )
    conds = []
    for i, (part, comp) in enumerate(zip(parts, components, strict=True)):
        kind = comp.param.type if comp.param else "token"
        if i == 0:
            if kind == "reference":
                conds.append(f"s.a_code = {args.add(unescape(part))}")
            else:
                conds.append(token_value(code, part, None, args, ("s.a_system", "s.a_code")))
        elif i == 1:
            if kind == "token":
                conds.append(token_value(code, part, None, args, ("s.b_system", "s.b_code")))
            elif kind == "quantity":
                conds.append(quantity_value(code, part, args, ("s.b_num", "s.b_system", "s.b_code", "s.b_code")))
            elif kind == "number":
                conds.append(number_value(code, part, args, "s.b_num"))
            elif kind == "date":
                conds.append(date_condition(code, part, args, "s.b_low", "s.b_high"))
            elif kind == "string":
                conds.append(f"s.b_str LIKE {args.add(like_prefix(normalize_string(unescape(part))))}")
            else:
                raise invalid(f"Search parameter '{code}': component type {kind} is not supported")
        else:
            conds.append(number_value(code, part, args, "s.c_num"))
    return all_of(conds)


def criterion_sql(resource_type: str, c: Criterion, args: Args, base: str) -> str:
    """The condition of one criterion on current-state row ``r``."""
    if c.code == "_id":
        return _id_condition(c, args)
    if c.code == "_lastUpdated":
        return _last_updated_condition(c, args)
    if c.reverse:
        source, inner = c.chain[0]
        where = criterion_sql(source, inner, args, base)
        sub = f"SELECT r.id FROM {current_table(source)} r WHERE NOT r.deleted AND {where}"
        return (
            f"EXISTS (SELECT 1 FROM {search_table(source, 'reference')} s WHERE s.param = {args.add(c.param.code)}"
            f" AND s.target_type = {args.add(resource_type)} AND s.target_id = r.id AND s.id IN ({sub}))"
        )
    table = search_table(resource_type, c.param.type)
    param_ref = args.add(c.code)
    if c.modifier == "missing":
        exists = f"EXISTS (SELECT 1 FROM {table} s WHERE s.id = r.id AND s.param = {param_ref})"
        return f"NOT {exists}" if c.values[0] == "true" else exists
    negate = c.modifier == "not"
    inner = value_condition(c, args, base)
    exists = f"EXISTS (SELECT 1 FROM {table} s WHERE s.id = r.id AND s.param = {param_ref} AND {inner})"
    return f"NOT {exists}" if negate else exists


def value_condition(c: Criterion, args: Args, base: str) -> str:
    """The ORed value conditions of a criterion on side-table row ``s``."""
    if c.chain:  # the reference points at a current resource of a target type that matches
        ors = []
        for target, inner in c.chain:
            where = criterion_sql(target, inner, args, base)
            sub = f"SELECT r.id FROM {current_table(target)} r WHERE NOT r.deleted AND {where}"
            ors.append(f"(s.target_type = {args.add(target)} AND s.target_id IN ({sub}))")
        return any_of(ors)
    builder = _BUILDERS[c.param.type]
    modifier = None if c.modifier == "not" else c.modifier
    return any_of([builder(c.code, v, modifier, c.param, args, base) for v in c.values])


def is_positive(c: Criterion) -> bool:
    """Whether the criterion matches exactly the resources having some matching side-table row."""
    return c.code not in ("_id", "_lastUpdated") and c.modifier not in ("not", "missing") and not c.reverse


def _id_condition(c: Criterion, args: Args) -> str:
    if c.modifier == "missing":
        return "FALSE" if c.values[0] == "true" else "TRUE"
    cond = f"r.id = ANY({args.add(list(c.values), 'text[]')})"
    return f"NOT {cond}" if c.modifier == "not" else cond


def _last_updated_condition(c: Criterion, args: Args) -> str:
    if c.modifier == "missing":
        return "FALSE" if c.values[0] == "true" else "TRUE"
    high = "(r.last_updated + interval '1 millisecond')"
    return any_of([date_condition(c.code, v, args, "r.last_updated", high) for v in c.values])


Builder = Callable[[str, str, "str | None", SearchParam, Args, str], str]
_BUILDERS: dict[str, Builder] = {
    "string": lambda code, v, m, p, a, b: string_value(code, v, m, a),
    "token": lambda code, v, m, p, a, b: token_value(code, v, m, a),
    "date": lambda code, v, m, p, a, b: date_condition(code, v, a, indexed=True),
    "number": lambda code, v, m, p, a, b: number_value(code, v, a),
    "quantity": lambda code, v, m, p, a, b: quantity_value(code, v, a),
    "reference": lambda code, v, m, p, a, b: reference_value(code, v, m, p, a, b),
    "uri": lambda code, v, m, p, a, b: uri_value(code, v, m, a),
    "composite": lambda code, v, m, p, a, b: composite_value(code, v, p, a),
}
