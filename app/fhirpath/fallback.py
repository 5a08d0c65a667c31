"""fhirpathpy as the fallback evaluator for expressions the compiler does not handle.

Each expression is compiled once by ``fhirpathpy.compile`` with the R4 model. fhirpathpy has no
``resolve()``; we register one that returns the same stubs as the compiler
(:func:`app.fhirpath.references.resolve_stub`), so ``resolve() is Patient`` behaves alike.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from functools import lru_cache

import fhirpathpy
from fhirpathpy.engine.nodes import FP_Type, ResourceNode
from fhirpathpy.models import models

from app.fhirpath.references import resolve_stub

_RESOURCE_TYPED = ("Resource", "DomainResource")


def _resolve_for(root_holder: list[dict]) -> Callable[[list], list]:
    def resolve(inputs: list) -> list:
        root = root_holder[0] if root_holder else None
        stubs = (resolve_stub(i, root) for i in inputs)
        return [ResourceNode.create_node(s) for s in stubs if s is not None]

    return resolve


def _plain(value: object) -> object:
    """fhirpathpy results back to JSON-like values (its numbers are Decimals; FP types to text)."""
    if isinstance(value, FP_Type):
        return str(value)
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and "." not in str(value) else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class FallbackExpression:
    """A fhirpathpy-compiled expression with the same call shape as the compiled extractors."""

    def __init__(self, expression: str) -> None:
        self.expression = expression
        self._root: list[dict] = []
        options = {"userInvocationTable": {"resolve": {"fn": _resolve_for(self._root), "arity": {0: []}}}}
        self._fn = fhirpathpy.compile(expression, model=models["r4"], options=options)

    def evaluate(self, focus: object, root: dict, context_type: str | None = None) -> list:
        data = focus
        if context_type is not None and context_type not in _RESOURCE_TYPED and focus is not root:
            data = ResourceNode.create_node(focus, context_type)
        self._root[:] = [root]
        try:
            result = self._fn(data, {"resource": root, "rootResource": root})
        except Exception:
            return []
        finally:
            self._root.clear()
        return [_plain(v) for v in result]


@lru_cache(maxsize=2048)
def fallback_expression(expression: str) -> FallbackExpression:
    return FallbackExpression(expression)
