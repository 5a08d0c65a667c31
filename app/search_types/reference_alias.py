"""Reference parameters answered from another parameter's rows: the R4 definitions give many a
reference parameter whose expression is another's restricted to a target type (Observation
``patient`` is ``Observation.subject.where(resolve() is Patient)``, ``subject`` is
``Observation.subject``), so their rows would be the wider parameter's rows of that target type
stored twice (checked equal on every Synthea resource). Only the wider parameter's rows are
stored; a search, chain, include or compartment on the narrower one reads them with
``target_type`` = the type. Derived from the expressions, for parameters of the R4 definitions only
(a custom SearchParameter keeps rows of its own: its definition may change without the other's)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from app.fhirspec.search_parameters import SearchParam, params_for

_NARROWED = re.compile(r"(?P<wide>.+)\.where\(resolve\(\) is (?P<type>[A-Z][A-Za-z]*)\)")
_aliases: dict[str, tuple[Mapping[str, SearchParam], dict[str, tuple[str, str]]]] = {}


def _derive(resource_type: str, params: Mapping[str, SearchParam]) -> dict[str, tuple[str, str]]:
    wide: dict[str, str] = {}
    for code, param in params.items():
        expression = param.expression_for(resource_type)
        if param.type == "reference" and expression and not param.custom:
            wide.setdefault(expression.strip(), code)
    out = {}
    for code, param in params.items():
        expression = param.expression_for(resource_type)
        if param.type != "reference" or not expression or param.custom:
            continue
        match = _NARROWED.fullmatch(expression.strip())
        if match and wide.get(match["wide"].strip(), code) != code:
            out[code] = (wide[match["wide"].strip()], match["type"])
    return out


def aliases(resource_type: str) -> dict[str, tuple[str, str]]:
    """code -> (the wider parameter's code, the target type) of the type's narrowed parameters."""
    params = params_for(resource_type)
    cached = _aliases.get(resource_type)
    if cached is not None and cached[0] is params:  # the registry swaps mappings on change
        return cached[1]
    derived = _derive(resource_type, params)
    _aliases[resource_type] = (params, derived)
    return derived


def is_alias(resource_type: str, code: str) -> bool:
    """Whether ``code``'s rows are not stored (another parameter's rows answer it)."""
    return code in aliases(resource_type)


def stored_code(resource_type: str, code: str) -> tuple[str, str | None]:
    """The code whose rows answer ``code``, and the target type they must have (None: any)."""
    found = aliases(resource_type).get(code)
    return found if found is not None else (code, None)
