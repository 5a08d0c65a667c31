"""One SQL condition per search criterion (https://hl7.org/fhir/R4/search.html): the parameter's
search type (:mod:`app.search_types`) gives the condition on the side-table alias ``s`` for one
value, the parameter included (mostly by the hash of parameter and value); the criterion's values
are ORed inside one ``EXISTS``, ``:not`` / ``:missing`` wrap it, chains and ``_has`` nest it.
``_id`` and ``_lastUpdated`` test the current-state row; ``row`` names the alias whose ``key`` (the
resource's integer key, :mod:`app.projections.current_state`) the side-table rows correlate with
(``r``, the current-state row, unless a side table drives the search)."""

from __future__ import annotations

from app.projections.current_state import current_table
from app.projections.search_index import search_table
from app.queries.search.model import Criterion
from app.queries.search.sql import Args, any_of
from app.search_types.date import date_condition
from app.search_types.param_aliases import Stored, answering, stored_code
from app.search_types.reference import target_condition, targets_in
from app.search_types.registry import search_type
from app.search_types.string_text import string_text_condition
from app.search_types.text import is_string_text


def criterion_sql(resource_type: str, c: Criterion, args: Args, base: str, row: str = "r") -> str:
    """The condition of one criterion on the row ``row`` (its ``key``; its ``id`` for ``_id`` and
    the references to it)."""
    if c.code == "_id":
        return _id_condition(c, args, row)
    if c.code == "_lastUpdated":
        return _last_updated_condition(c, args)
    if c.reverse:
        source, inner = c.chain[0]
        where = criterion_sql(source, inner, args, base)
        sub = f"SELECT r.key FROM {current_table(source)} r WHERE NOT r.deleted AND {where}"
        code, only = stored_code(source, c.param.code)
        if only not in (None, resource_type):
            return "FALSE"  # the parameter only points at another type
        target = target_condition(code, resource_type, f"{row}.id", args)
        return f"EXISTS (SELECT 1 FROM {search_table(source, 'reference')} s WHERE {target} AND s.key IN ({sub}))"
    table = search_table(resource_type, c.param.type)
    if c.modifier == "missing":
        of_param = param_rows(answering(resource_type, c.param, c.code), args)
        exists = f"EXISTS (SELECT 1 FROM {table} s WHERE s.key = {row}.key AND {of_param})"
        return f"NOT {exists}" if c.values[0] == "true" else exists
    negate = c.modifier == "not"
    inner = value_condition(c, args, base, resource_type)
    exists = f"EXISTS (SELECT 1 FROM {table} s WHERE s.key = {row}.key AND {inner})"
    return f"NOT {exists}" if negate else exists


def value_condition(c: Criterion, args: Args, base: str, resource_type: str | None = None) -> str:
    """The ORed value conditions of a criterion on side-table row ``s`` of ``resource_type`` (needed
    but for dates: a parameter may be answered by others' rows, :mod:`app.search_types.param_aliases`)."""
    stored = answering(resource_type, c.param, c.code) if resource_type is not None else Stored((c.code,))
    code, only = stored.codes[0], stored.target_type
    if c.chain:  # the reference points at a current resource of a target type that matches
        ors = []
        for target, inner in c.chain:
            if only not in (None, target):
                continue  # the parameter only points at another type
            where = criterion_sql(target, inner, args, base)
            sub = f"SELECT r.id FROM {current_table(target)} r WHERE NOT r.deleted AND {where}"
            ors.append(targets_in(code, target, sub, args))
        return any_of(ors)
    kind = search_type(c.param.type)
    modifier = None if c.modifier == "not" else c.modifier

    def one(code: str, value: str, into: Args) -> str:
        if is_string_text(c.param, c.modifier):  # the values of the (stored) parameter together
            assert resource_type is not None
            return string_text_condition(code, value, search_table(resource_type, "string"), into)
        return kind.condition(code, value, modifier, c.param, into, base)

    if stored.codes != (c.code,):  # a malformed value's 400 names the parameter as the client wrote it
        for v in c.values:
            one(c.code, v, Args())
    ors = [one(code, v, args) for code in stored.codes for v in c.values]
    return narrowed(any_of(ors), only, args)


def param_rows(stored: Stored, args: Args) -> str:
    """The rows, on side-table row ``s``, of the parameters ``stored`` (of its target type)."""
    if len(stored.codes) == 1:
        return narrowed(f"s.param = {args.add(stored.codes[0])}", stored.target_type, args)
    return f"s.param = ANY({args.add(list(stored.codes), 'text[]')})"


def narrowed(condition: str, only: str | None, args: Args) -> str:
    """``condition`` on reference rows, limited to those pointing at an ``only`` resource when given."""
    return condition if only is None else f"({condition} AND s.target_type = {args.add(only)})"


def is_positive(c: Criterion) -> bool:
    """Whether the criterion matches exactly the resources having some matching side-table row."""
    return c.code not in ("_id", "_lastUpdated") and c.modifier not in ("not", "missing") and not c.reverse


def _id_condition(c: Criterion, args: Args, row: str) -> str:
    if c.modifier == "missing":
        return "FALSE" if c.values[0] == "true" else "TRUE"
    cond = f"{row}.id = ANY({args.add(list(c.values), 'text[]')})"
    return f"NOT {cond}" if c.modifier == "not" else cond


def _last_updated_condition(c: Criterion, args: Args) -> str:
    if c.modifier == "missing":
        return "FALSE" if c.values[0] == "true" else "TRUE"
    high = "(r.last_updated + interval '1 millisecond')"
    return any_of([date_condition(c.code, v, args, "r.last_updated", high) for v in c.values])
