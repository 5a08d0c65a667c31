"""The search-parameter registry: every SearchParameter of ``search-parameters.json`` (R4, 1,378),
indexed by resource type and code (https://hl7.org/fhir/R4/searchparameter.html).

Parameters on ``Resource``/``DomainResource`` (``_id``, ``_lastUpdated``, ``_tag``, ``_profile``,
``_security``, ``_source``, ``_text``, ``_content``, ``_query``) apply to every concrete type that
derives from that base. R4 expressions are unions over all base types (``Patient.name |
Practitioner.name``); :meth:`SearchParam.expression_for` gives the branches that apply to one type.

Custom SearchParameter resources can be added and removed at run time with :func:`register` and
:func:`unregister`; the index is rebuilt and swapped, so readers never see a half-built one.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from types import MappingProxyType

from app.fhirspec.derived import derived
from app.fhirspec.expressions import split_union
from app.fhirspec.loader import bundle_resources
from app.fhirspec.resource_types import resource_types
from app.fhirspec.type_hierarchy import ancestors

PARAM_TYPES = ("number", "date", "string", "token", "reference", "composite", "quantity", "uri", "special")
PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")

# Modifiers the R4 search page allows per parameter type, in their URL form (`:of-type`; `type`
# stands for `:[type]`). Used when a SearchParameter does not list its own `modifier`s.
DEFAULT_MODIFIERS: dict[str, tuple[str, ...]] = {
    "string": ("missing", "exact", "contains"),
    "token": ("missing", "text", "not", "above", "below", "in", "not-in", "of-type"),
    "reference": ("missing", "type", "identifier", "above", "below"),
    "date": ("missing",),
    "number": ("missing",),
    "quantity": ("missing",),
    "uri": ("missing", "below", "above"),
    "composite": ("missing",),
    "special": ("missing",),
}
_ABSTRACT_BASES = ("Resource", "DomainResource")
_LEADING_TYPE = re.compile(r"^\(*\s*([A-Z][A-Za-z]+)(?:[.\s)]|$)")


@dataclass(frozen=True)
class SearchComponent:
    """One part of a composite parameter: the component's parameter and its expression, which is
    evaluated relative to each node the composite's own expression yields."""

    definition: str
    expression: str
    param: SearchParam | None  # None until the definition URL is known to the registry


@dataclass(frozen=True)
class SearchParam:
    id: str
    url: str
    code: str
    name: str
    type: str
    base: tuple[str, ...]
    expression: str | None  # the full R4 expression
    base_expressions: tuple[tuple[str, str], ...] = ()  # (base type, the branches for it)
    target: tuple[str, ...] = ()  # reference target types
    modifiers: tuple[str, ...] = ()
    comparators: tuple[str, ...] = ()
    multiple_or: bool = True
    multiple_and: bool = True
    components: tuple[SearchComponent, ...] = ()
    xpath_usage: str | None = None
    custom: bool = False  # registered at run time, not from the R4 definitions
    _by_base: Mapping[str, str] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_base", MappingProxyType(dict(self.base_expressions)))

    def __hash__(self) -> int:
        return hash(self.url)

    def __getstate__(self) -> dict:
        """Pickled without ``_by_base`` (a read-only view, which does not pickle; rebuilt on load)."""
        return {k: v for k, v in self.__dict__.items() if k != "_by_base"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.__post_init__()

    def expression_for(self, resource_type: str) -> str | None:
        """The part of the expression that applies to ``resource_type`` (None if it has none)."""
        by_base = self._by_base
        if resource_type in by_base:
            return by_base[resource_type]
        for base in ancestors(resource_type):
            if base in by_base:
                return by_base[base]
        return None

    @classmethod
    def from_resource(
        cls, resource: dict, lookup: Callable[[str], SearchParam | None] | None = None, custom: bool = True
    ) -> SearchParam:
        """A SearchParam from a SearchParameter resource; ``lookup`` finds component definitions."""
        kind = resource["type"]
        if kind not in PARAM_TYPES:
            raise ValueError(f"SearchParameter.type {kind!r} is not a search parameter type")
        base = tuple(resource.get("base") or ())
        expression = resource.get("expression")
        modifiers = tuple(
            "of-type" if m == "ofType" else m for m in resource.get("modifier") or DEFAULT_MODIFIERS[kind]
        )
        comparators = tuple(resource.get("comparator") or (PREFIXES if kind in ("number", "date", "quantity") else ()))
        components = tuple(
            SearchComponent(c["definition"], c["expression"], lookup(c["definition"]) if lookup else None)
            for c in resource.get("component") or ()
        )
        return cls(
            id=resource.get("id") or resource["url"].rsplit("/", 1)[-1],
            url=resource["url"],
            code=resource["code"],
            name=resource.get("name") or resource["code"],
            type=kind,
            base=base,
            expression=expression,
            base_expressions=split_by_base(expression, base) if expression else (),
            target=tuple(resource.get("target") or ()),
            modifiers=modifiers,
            comparators=comparators,
            multiple_or=resource.get("multipleOr", True),
            multiple_and=resource.get("multipleAnd", True),
            components=components,
            xpath_usage=resource.get("xpathUsage"),
            custom=custom,
        )


def leading_type(branch: str) -> str | None:
    m = _LEADING_TYPE.match(branch)
    return m.group(1) if m else None


def split_by_base(expression: str, bases: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """For each base type, the union branches of ``expression`` that start with that type (or an
    abstract ancestor of it). If any branch is not type-prefixed, every base keeps the whole."""
    branches = split_union(expression)
    leads = [leading_type(b) for b in branches]
    out = []
    for base in bases:
        if any(lead is None for lead in leads):
            out.append((base, expression))
            continue
        applies = {base, *ancestors(base)}
        mine = [b for b, lead in zip(branches, leads, strict=True) if lead in applies]
        out.append((base, " | ".join(mine) if mine else expression))
    return tuple(out)


def _concrete_types(base: str) -> list[str]:
    if base not in _ABSTRACT_BASES:
        return [base]
    return [t for t in resource_types() if base in ancestors(t)]


class SearchParamRegistry:
    """Parameters by URL, and by (resource type, code). Later registrations win a code clash."""

    def __init__(self, params: Iterable[SearchParam] = ()) -> None:
        self._lock = threading.Lock()
        self._by_url: dict[str, SearchParam] = {}
        self._by_type: dict[str, Mapping[str, SearchParam]] = {}
        for p in params:
            self._by_url[p.url] = p
        self._reindex()

    def _reindex(self) -> None:
        index: dict[str, dict[str, SearchParam]] = {t: {} for t in resource_types()}
        for p in self._by_url.values():
            for base in p.base:
                for t in _concrete_types(base):
                    index.setdefault(t, {})[p.code] = p
        self._by_type = {t: MappingProxyType(codes) for t, codes in index.items()}

    def params_for(self, resource_type: str) -> Mapping[str, SearchParam]:
        return self._by_type.get(resource_type, MappingProxyType({}))

    def get(self, resource_type: str, code: str) -> SearchParam | None:
        return self.params_for(resource_type).get(code)

    def by_url(self, url: str) -> SearchParam | None:
        return self._by_url.get(url)

    def all(self) -> list[SearchParam]:
        return list(self._by_url.values())

    def register(self, param: SearchParam) -> SearchParam:
        """Add (or replace, by URL) a parameter; unresolved composite components are resolved."""
        with self._lock:
            if any(c.param is None for c in param.components):
                comps = tuple(
                    c if c.param else replace(c, param=self._by_url.get(c.definition)) for c in param.components
                )
                param = replace(param, components=comps)
            self._by_url = {**self._by_url, param.url: param}
            self._reindex()
        return param

    def unregister(self, url: str) -> SearchParam | None:
        with self._lock:
            removed = self._by_url.get(url)
            if removed is not None:
                self._by_url = {u: p for u, p in self._by_url.items() if u != url}
                self._reindex()
        return removed


@derived("search-parameters")
def _load_core() -> list[SearchParam]:
    resources = [r for r in bundle_resources("search-parameters.json") if r.get("resourceType") == "SearchParameter"]
    simple = {r["url"]: SearchParam.from_resource(r, custom=False) for r in resources if r["type"] != "composite"}
    composite = [SearchParam.from_resource(r, simple.get, custom=False) for r in resources if r["type"] == "composite"]
    by_url = {**simple, **{p.url: p for p in composite}}
    return [by_url[r["url"]] for r in resources]


@lru_cache(maxsize=1)
def registry() -> SearchParamRegistry:
    """The process-wide registry, built from the R4 definitions on first use."""
    return SearchParamRegistry(_load_core())


@lru_cache(maxsize=1)
def core_registry() -> SearchParamRegistry:
    """The R4 definitions alone (no custom parameter ever registered here)."""
    return SearchParamRegistry(_load_core())


def params_for(resource_type: str) -> Mapping[str, SearchParam]:
    """code -> SearchParam for one resource type (a read-only mapping), common params included."""
    return registry().params_for(resource_type)


def get_param(resource_type: str, code: str) -> SearchParam | None:
    return registry().get(resource_type, code)


def all_params() -> list[SearchParam]:
    return registry().all()


def register(param: SearchParam) -> SearchParam:
    return registry().register(param)


def unregister(url: str) -> SearchParam | None:
    return registry().unregister(url)
