"""Invariants: the ``constraint`` FHIRPath expressions of the StructureDefinitions.

See https://hl7.org/fhir/R4/conformance-rules.html#constraints. Each expression is compiled once
with ``fhirpathpy``. ``ele-1`` and ``ext-1`` are checked natively by the walker (they apply to
nearly every element); ``ref-1`` and ``dom-3`` by ``native.py``. Expressions that cannot be
evaluated here are reported by ``not_evaluated()``; the test suite pins that list so the gap
stays visible.

fhirpathpy costs 20-250 µs per evaluation, so ``build`` also records, from ``expressions.py``,
when an evaluation can be skipped (the names it reads are absent, an ``or`` branch is already
true) and which properties its outcome depends on: outcomes are remembered per projection of
those properties (bounded, process-wide), so identical items are evaluated once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache

import fhirpathpy
import orjson
from fhirpathpy.engine.invocations import invocation_registry
from fhirpathpy.engine.nodes import ResourceNode
from fhirpathpy.models import models

from app.validation.expressions import (
    CONTEXT_SENSITIVE,
    KEYWORDS,
    STRING_LITERAL,
    TOKEN,
    absence_guards,
    presence_guards,
    presence_only,
    root_identifiers,
)
from app.validation.model import Constraint
from app.validation.native import NATIVE_EVALUATORS, SHORTCUTS
from app.validation.temporal import operators as temporal_operators

NATIVE = frozenset({"ele-1", "ext-1"})

# Functions fhirpathpy lacks, and comparisons it gets wrong for dates, that we provide ourselves.
_USER_FUNCTIONS = {
    **temporal_operators(),
    "hasValue": {
        "fn": lambda inputs: [len(inputs) == 1 and inputs[0] is not None and not isinstance(inputs[0], (dict, list))],
        "arity": {0: []},
    },
}
_OPTIONS = {"userInvocationTable": _USER_FUNCTIONS, "traceFn": lambda *_: None}

_FUNCTION_CALL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(")
# Expressions we choose not to evaluate although fhirpathpy could: key -> reason.
SKIPPED: dict[str, str] = {}


def unsupported_reason(key: str, expression: str | None) -> str | None:
    """Why a constraint cannot be evaluated here, or ``None`` when it can."""
    if key in NATIVE:
        return None
    if not expression:
        return "no FHIRPath expression"
    if key in SKIPPED:
        return SKIPPED[key]
    known = invocation_registry.keys() | _USER_FUNCTIONS.keys()
    called = set(_FUNCTION_CALL.findall(STRING_LITERAL.sub("''", expression))) - KEYWORDS
    missing = sorted(name for name in called if name not in known)
    if "resolve" in missing:
        return "uses resolve(): needs the referenced resources (a server-side check)"
    if missing:
        return "uses " + ", ".join(f"{name}()" for name in missing) + ", which fhirpathpy does not implement"
    return None


@cache
def _compiled(expression: str) -> object | None:
    try:
        return fhirpathpy.compile(expression, models["r4"], _OPTIONS)
    except Exception:
        return None


def triggers_for(name: str, keys_for: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    return tuple(k for json_key in keys_for.get(name, (name,)) for k in (json_key, "_" + json_key))


def _key_groups(names: frozenset[str], keys_for: dict[str, tuple[str, ...]]) -> tuple[frozenset[str], ...]:
    return tuple(
        frozenset(k for json_key in keys_for.get(name, (name,)) for k in (json_key, "_" + json_key))
        for name in sorted(names)
    )


_RESULTS: dict[tuple, bool | None] = {}
_RESULTS_MAX = 20000
_MISSING = object()


def forget_outcomes() -> None:
    """Drop the remembered outcomes (tests and the benchmark's first-seen measurements)."""
    _RESULTS.clear()


def build(raw: dict, type_path: str, keys_for: dict[str, tuple[str, ...]] | None = None) -> Constraint:
    """A compiled constraint. ``keys_for`` maps an element name to its JSON keys (choice types)."""
    key = raw.get("key", "?")
    expression = raw.get("expression") or ""
    fn = None
    if unsupported_reason(key, expression) is None and key not in NATIVE:
        fn = _compiled(expression)
    constraint = Constraint(
        key=key,
        severity="warning" if raw.get("severity") == "warning" else "error",
        human=raw.get("human", ""),
        expression=expression,
        fn=fn,
        type_path=type_path,
    )
    names = root_identifiers(expression) if fn is not None and keys_for is not None else None
    if names is not None and keys_for is not None:
        triggers: set[str] = set()
        for name in names:
            for json_key in keys_for.get(name, (name,)):
                triggers.update((json_key, "_" + json_key))
        constraint.triggers = frozenset(triggers)
        constraint.passes_when_absent = evaluate(constraint, {}, {}, {}) is True
        if (
            not CONTEXT_SENSITIVE.intersection(TOKEN.findall(expression))
            and "now(" not in expression
            and "today(" not in expression
        ):
            presence = presence_only(expression, names)
            constraint.memo_keys = tuple(
                sorted((k, name in presence) for name in names for k in triggers_for(name, keys_for))
            )
    if fn is not None and keys_for is not None:
        constraint.guards = _key_groups(absence_guards(expression), keys_for)
        constraint.sufficient = _key_groups(presence_guards(expression), keys_for)
    constraint.native = NATIVE_EVALUATORS.get(key)
    return constraint


def broken(
    constraints: tuple[Constraint, ...], data: object, resource: object, root: object, memo: dict, contained: bool
) -> Iterator[Constraint]:
    """The constraints of ``constraints`` that ``data`` violates (each skipped when its guards say it
    holds without evaluation; ``dom-6``, the narrative, is not expected of a contained resource)."""
    for c in constraints:
        if c.fn is None:
            continue
        if c.passes_when_absent and c.triggers is not None and c.triggers.isdisjoint(data):  # type: ignore[arg-type]
            continue
        if c.guards and any(group.isdisjoint(data) for group in c.guards):  # type: ignore[arg-type]
            continue
        if c.sufficient and not all(group.isdisjoint(data) for group in c.sufficient):  # type: ignore[arg-type]
            continue
        if c.key == "dom-6" and contained:
            continue
        if evaluate(c, data, resource, root, memo) is False:
            yield c


def evaluate(
    constraint: Constraint, data: object, resource: object, root: object, memo: dict | None = None
) -> bool | None:
    """True (holds), False (violated) or None (could not be evaluated: never an exception)."""
    if constraint.fn is None:
        return None
    if constraint.native is not None:
        try:
            return constraint.native(data, resource, root, {} if memo is None else memo)
        except Exception:
            return None
    shortcut = SHORTCUTS.get(constraint.key)
    if shortcut is not None and shortcut(data):
        return True
    memo_key = _memo_key(constraint, data)
    if memo_key is not None:
        known = _RESULTS.get(memo_key, _MISSING)
        if known is not _MISSING:
            return known  # type: ignore[return-value]
    outcome = _run(constraint, data, resource, root)
    if memo_key is not None:
        if len(_RESULTS) >= _RESULTS_MAX:
            _RESULTS.clear()
        _RESULTS[memo_key] = outcome
    return outcome


def _memo_key(constraint: Constraint, data: object) -> tuple | None:
    """The outcome depends only on these properties: identical projections share a result."""
    if constraint.memo_keys is None or not isinstance(data, dict):
        return None
    try:
        parts = tuple(
            (key in data) if presence else orjson.dumps(data[key], option=orjson.OPT_SORT_KEYS)
            for key, presence in constraint.memo_keys
            if presence or key in data
        )
    except (TypeError, orjson.JSONEncodeError):
        return None
    return (id(constraint), parts)


def _run(constraint: Constraint, data: object, resource: object, root: object) -> bool | None:
    try:
        node = ResourceNode.create_node(data, constraint.type_path)
        result = constraint.fn(node, {"resource": resource, "rootResource": root})
    except Exception:
        return None
    if result == [False]:
        return False
    return True


def not_evaluated(raw_constraints: list[dict]) -> dict[str, str]:
    """key -> reason for the given constraint definitions that will not be evaluated."""
    out: dict[str, str] = {}
    for raw in raw_constraints:
        key, expression = raw.get("key", "?"), raw.get("expression")
        reason = unsupported_reason(key, expression)
        if reason is None and key not in NATIVE and _compiled(expression or "") is None:
            reason = "fhirpathpy cannot parse the expression"
        if reason is not None:
            out[key] = reason
    return out
