"""Parsing ``_include`` and ``_revinclude`` parameters (https://hl7.org/fhir/R4/search.html#include):
``[type]:[param][:target]``, ``*`` wildcards and ``:iterate``."""

from __future__ import annotations

from app.errors import invalid
from app.fhirspec.resource_types import is_resource_type
from app.fhirspec.search_parameters import params_for
from app.queries.search.model import Include, Unusable


def parse_include(name: str, value: str) -> Include:
    """``_include[:iterate]=[type]:[param]:[target]`` with ``*`` for the type (``_include=*``) or
    the parameter; :class:`Unusable` for an unknown type or parameter, 400 when malformed."""
    kind, _, modifier = name.partition(":")
    if modifier not in ("", "iterate", "recurse"):
        raise Unusable(f"unknown modifier ':{modifier}' (only :iterate is supported)")
    iterate = modifier != ""
    if value == "*":
        return Include("*", "*", None, iterate, f"{name}={value}")
    parts = value.split(":")
    if len(parts) not in (2, 3) or not all(parts):
        raise invalid(f"{kind}='{value[:80]}' must be [type]:[search parameter] or [type]:[parameter]:[target type]")
    if not is_resource_type(parts[0]):
        raise Unusable(f"'{parts[0]}' is not a resource type")
    if parts[1] != "*":
        param = params_for(parts[0]).get(parts[1])
        if param is None or param.type != "reference":
            raise Unusable(f"'{parts[1]}' is not a reference search parameter of {parts[0]}")
    target = parts[2] if len(parts) == 3 else None
    if target is not None and not is_resource_type(target):
        raise Unusable(f"'{target}' is not a resource type")
    return Include(parts[0], parts[1], target, iterate, f"{name}={value}")
