"""Which regular-expression functions a FHIRPath expression calls.

``matches()`` and ``replaceMatches()`` (https://hl7.org/fhirpath/N1/#matchesregex-string-boolean)
run a client-written pattern with Python's backtracking ``re``: ``matches('(a+)+$')`` takes seconds
per value and would run on every later write of the type. Expressions a client stores or sends to
be evaluated on the server (custom SearchParameters, FHIRPath Patch ``where`` criteria) are refused
when they call one; fhirpathpy has no linear-time regex engine to run them with instead.
"""

from __future__ import annotations

import re

REGEX_FUNCTIONS = ("matches", "replaceMatches", "matchesFull")
_LITERALS = re.compile(r"'(?:[^'\\]|\\.)*'|`(?:[^`\\]|\\.)*`")
_CALL = re.compile(r"(?<![A-Za-z0-9_])(" + "|".join(REGEX_FUNCTIONS) + r")\s*\(")


def regex_functions(expression: str) -> list[str]:
    """The regex functions ``expression`` calls (outside string literals and quoted identifiers)."""
    code = _LITERALS.sub("''", expression)
    return sorted(set(_CALL.findall(code)))


def refusal(expression: str) -> str | None:
    """Why ``expression`` may not be evaluated here, or None."""
    found = regex_functions(expression)
    if not found:
        return None
    names = " and ".join(f"{name}()" for name in found)
    return (
        f"{names} cannot be used here: a regular expression could take unbounded time on this server "
        "(use startsWith(), endsWith(), contains() or =)"
    )
