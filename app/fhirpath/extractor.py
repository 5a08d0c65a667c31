"""``compile_expression``: a FHIRPath expression as a fast Python extractor, falling back to
fhirpathpy for what :mod:`app.fhirpath.compiler` does not handle."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from app.fhirpath.compiler import Branch, compile_branches, run
from app.fhirpath.fallback import FallbackExpression, fallback_expression
from app.fhirpath.parser import Unsupported

_fallbacks: dict[tuple[str, str | None], str] = {}  # (expression, context type) -> why


class Extractor:
    """Evaluates one expression. Call it with a resource for the values; :meth:`typed` also gives
    each value's FHIR type (None when evaluated by the fhirpathpy fallback)."""

    __slots__ = ("branches", "context_type", "expression", "fallback")

    def __init__(
        self,
        expression: str,
        context_type: str | None,
        branches: list[Branch] | None,
        fallback: FallbackExpression | None,
    ) -> None:
        self.expression = expression
        self.context_type = context_type
        self.branches = branches
        self.fallback = fallback

    @property
    def is_fallback(self) -> bool:
        return self.branches is None

    def __call__(self, resource: dict) -> list:
        return [value for _, value in self.typed(resource)]

    def typed(self, focus: Any, root: dict | None = None) -> list[tuple[str | None, Any]]:
        """``(fhir type, value)`` pairs for ``focus`` (the resource, or a node of
        ``context_type``); ``root`` is the resource ``%resource`` and contained lookups use."""
        if root is None:
            root = focus
        if self.branches is None:
            assert self.fallback is not None
            return [(None, v) for v in self.fallback.evaluate(focus, root, self.context_type)]
        out: list[tuple[str | None, Any]] = []
        items = [focus]
        for steps, typ in self.branches:
            for value in run(steps, items, root):
                out.append((typ, value))
        return out


@lru_cache(maxsize=8192)
def compile_expression(expression: str, context_type: str | None = None) -> Extractor:
    """Compile ``expression`` for a focus of ``context_type`` (None: any resource; else a resource
    type, data type or backbone element path such as ``Observation.component``). Cached."""
    try:
        return Extractor(expression, context_type, compile_branches(expression, context_type), None)
    except Unsupported as exc:
        _fallbacks[(expression, context_type)] = str(exc)
        return Extractor(expression, context_type, None, fallback_expression(expression))


def fallback_expressions() -> dict[tuple[str, str | None], str]:
    """Expressions compiled so far that fell back to fhirpathpy, with the reason."""
    return dict(_fallbacks)
