"""Parameters answered from other parameters' rows, derived from the R4 expressions (for
parameters of the R4 definitions only: a custom SearchParameter keeps rows of its own, its
definition may change without the other's):

- a parameter whose expression, type and shape are another's of the type (Patient ``phonetic``
  and ``name`` are both ``Patient.name``; CapabilityStatement ``version`` and ``fhirversion``,
  DeviceUseStatement ``patient`` and ``subject``…) has exactly its rows, so every search of it,
  of any type, reads them: the code first in code order keeps the rows (:func:`_identical`);
- a reference parameter whose expression is another's restricted to a target type (Observation
  ``patient`` is ``Observation.subject.where(resolve() is Patient)``, ``subject`` is
  ``Observation.subject``) reads the wider parameter's rows with ``target_type`` = the type;
- a parameter of a range type (:data:`UNION_TYPES`) whose expression is the union of others' of
  its type (Observation ``combo-value-quantity`` is ``value-quantity``'s branches and
  ``component-value-quantity``'s; ``combo-code-value-quantity`` likewise) reads their rows.

All would otherwise store the same rows twice (checked equal on every Synthea resource)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from typing import NamedTuple

from app.fhirspec.search_parameters import SearchParam, core_registry, params_for

_NARROWED = re.compile(r"(?P<wide>.+)\.where\(resolve\(\) is (?P<type>[A-Z][A-Za-z]*)\)")
UNION_TYPES = frozenset({"quantity", "composite", "number"})
"""The types whose unions are read from their parts' rows: those searched by ranges, whose index
hands matches over in value order anyway. A token's or uri's equality is one index range in id
order on ``(hash, key)``, which drives a page and stops after it (:mod:`app.queries.search.driver`):
two hashes ORed would read and sort every match (``combo-code`` keeps its rows). Dates keep their
sort-key rows; references their single parameter per chain, include and compartment; a string's
``:text`` matches the values of its one parameter together."""


class Stored(NamedTuple):
    codes: tuple[str, ...]  # the parameters whose rows answer (ORed)
    target_type: str | None = None  # the type the rows must point at (a narrowed reference)


_aliases: dict[str, tuple[Mapping[str, SearchParam], dict[str, Stored]]] = {}


def branches(expression: str) -> tuple[str, ...]:
    """The top-level ``|`` branches of an expression (parentheses and quotes respected)."""
    out, depth, start, quoted = [], 0, 0, False
    for i, ch in enumerate(expression):
        if ch == "'":
            quoted = not quoted
        elif not quoted and ch in "([":
            depth += 1
        elif not quoted and ch in ")]":
            depth -= 1
        elif not quoted and ch == "|" and depth == 0:
            out.append(expression[start:i].strip())
            start = i + 1
    out.append(expression[start:].strip())
    return tuple(out)


def _shape(param: SearchParam) -> tuple:
    """What besides the expression decides a parameter's rows: its type, a composite's components."""
    return (param.type, tuple((c.expression, c.param.type if c.param else None) for c in param.components))


def _identical(params: Mapping[str, SearchParam], expressions: dict[str, str]) -> dict[str, Stored]:
    """The parameters whose expression and shape another's (first in code order) has: its rows."""
    keeper: dict[tuple, str] = {}
    out: dict[str, Stored] = {}
    for code in sorted(expressions):
        kept = keeper.setdefault((expressions[code], _shape(params[code])), code)
        if kept != code:
            out[code] = Stored((kept,))
    return out


def _union(
    code: str, param: SearchParam, own: dict[str, tuple[str, ...]], params: Mapping[str, SearchParam]
) -> Stored | None:
    """The parameters whose branches together are exactly ``code``'s (each branch once), if any."""
    wanted = own[code]
    if len(wanted) < 2 or param.type not in UNION_TYPES:
        return None
    parts = [
        c
        for c, b in sorted(own.items(), key=lambda i: -len(i[1]))
        if c != code and _shape(params[c]) == _shape(param) and set(b) <= set(wanted) and len(b) < len(wanted)
    ]
    covered: list[str] = []
    chosen: list[str] = []
    for c in parts:
        if not set(own[c]) & set(covered):
            chosen.append(c)
            covered += own[c]
    return Stored(tuple(sorted(chosen))) if sorted(covered) == sorted(wanted) else None


def _derive(resource_type: str, params: Mapping[str, SearchParam]) -> dict[str, Stored]:
    expressions = {
        code: p.expression_for(resource_type).strip()  # type: ignore[union-attr]
        for code, p in params.items()
        if p.expression_for(resource_type) and not p.custom
    }
    out = _identical(params, expressions)
    wide = {e: c for c, e in reversed(expressions.items()) if params[c].type == "reference" and c not in out}
    for code, expression in expressions.items():
        match = _NARROWED.fullmatch(expression)
        if code in out:
            continue
        if params[code].type == "reference" and match and wide.get(match["wide"].strip(), code) != code:
            out[code] = Stored((wide[match["wide"].strip()],), match["type"])
    own = {c: branches(e) for c, e in expressions.items() if c not in out}
    for code in list(own):
        union = _union(code, params[code], own, params)
        if union is not None:
            out[code] = union
    for code, stored in list(out.items()):  # rows must really be stored: no alias of an alias
        if any(c in out for c in stored.codes):
            del out[code]
    return out


def aliases(resource_type: str) -> dict[str, Stored]:
    """code -> the rows answering it, for the type's parameters that keep no rows of their own."""
    params = params_for(resource_type)
    cached = _aliases.get(resource_type)
    if cached is not None and cached[0] is params:  # the registry swaps mappings on change
        return cached[1]
    derived = _derive(resource_type, params)
    _aliases[resource_type] = (params, derived)
    return derived


def stored_as(resource_type: str, code: str) -> Stored:
    """The rows answering ``code`` (its own, unless an alias)."""
    return aliases(resource_type).get(code) or Stored((code,))


def answering(resource_type: str, param: SearchParam, code: str) -> Stored:
    """The rows answering a criterion on ``code`` whose (rewritten) parameter is ``param``: a
    token's ``:text``, rewritten to the ``text`` type, has rows of its own."""
    if param.type == "text":
        return Stored((code,))
    return stored_as(resource_type, code)


def stored_code(resource_type: str, code: str) -> tuple[str, str | None]:
    """For a reference parameter: the one code whose rows answer it, and the target type they
    must have (None: any)."""
    stored = stored_as(resource_type, code)
    assert len(stored.codes) == 1, (resource_type, code)
    return stored.codes[0], stored.target_type


@cache
def core_aliases(resource_type: str) -> dict[str, Stored]:
    """The aliases the R4 definitions alone give (they never change)."""
    return _derive(resource_type, core_registry().params_for(resource_type))


def rebuilding(resource_type: str, code: str, building: frozenset[str]) -> bool:
    """Whether the rows answering ``code`` are being built: the R4 definitions answer it from
    others' rows, one of which a custom definition (its URL in ``building``) now replaces, so the
    reindex job is building ``code``'s own (:func:`dependents`)."""
    if not building:
        return False
    params = params_for(resource_type)
    core = core_aliases(resource_type).get(code)
    return core is not None and any(c in params and params[c].url in building for c in core.codes)


def dependents(code: str, types: list[str]) -> dict[str, list[str]]:
    """The R4 parameters (code -> types) that the R4 definitions answer from ``code``'s rows: a
    custom definition of ``code`` ends that (they need rows of their own), its retirement brings
    it back (their rows go), so a reindex of ``code`` reindexes them too."""
    out: dict[str, list[str]] = {}
    for resource_type in types:
        for alias, stored in core_aliases(resource_type).items():
            if code in stored.codes:
                out.setdefault(alias, []).append(resource_type)
    return out
