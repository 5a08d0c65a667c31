"""What a parsed search is made of (criteria, sort keys, includes, the query itself), the limits
a search must stay within, and the splitting of ORed and escaped values."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.errors import FhirError, Issue
from app.fhirspec.search_parameters import SearchParam
from app.search_types.syntax import unescape as unescape  # re-exported

# Limits of one search, each answered with a 400 naming the parameter when exceeded.
MAX_OR_VALUES = 100  # comma-separated values of one parameter
MAX_CRITERIA = 50  # search parameters (criteria) of one search
MAX_INCLUDES = 20  # _include and _revinclude parameters of one search
MAX_CHAIN_DEPTH = 4  # reference hops of a chain or of nested _has, e.g. a.b.c.d.name
MAX_CHAIN_BRANCHES = 256  # target types a chain fans out to, over all its levels
MAX_SORT_KEYS = 8  # keys of _sort


@dataclass(frozen=True)
class Criterion:
    code: str
    param: SearchParam
    modifier: str | None  # a resource type for reference ``:[type]``
    values: tuple[str, ...]  # ORed
    chain: tuple[tuple[str, Criterion], ...] = ()  # ``subject:Patient.name=x``: (target type, criterion)
    reverse: bool = False  # ``_has:Observation:patient:code=x``: chain holds (source type, criterion)


@dataclass(frozen=True)
class SortKey:
    code: str
    param: SearchParam | None  # None for _id and _lastUpdated
    descending: bool


@dataclass(frozen=True)
class Include:
    """``_include=Observation:subject[:Patient]`` / ``_revinclude=Observation:subject``; ``*`` as
    the type or the code stands for every type or every reference parameter."""

    source_type: str
    code: str
    target_type: str | None
    iterate: bool = False
    text: str = ""  # as the client wrote it, e.g. ``_include:iterate=Patient:organization``


@dataclass(frozen=True)
class AccessGroup:
    """One way a token may see resources of a type (one :class:`app.auth.Access`): in a patient's
    compartment (any of ``compartment``; None: no compartment limit) and matching every one of
    ``criteria`` (a v2 scope's query)."""

    patient: str | None
    compartment: tuple[Criterion, ...] | None
    criteria: tuple[Criterion, ...]
    why: str  # for refusals, e.g. "in the compartment of Patient/1 and matching category=laboratory"


@dataclass(frozen=True)
class Restriction:
    """What a token's scopes let it see of one type: the resources matching any of ``groups``."""

    resource_type: str
    groups: tuple[AccessGroup, ...]

    @property
    def why(self) -> str:
        return " or ".join(g.why for g in self.groups)


@dataclass
class SearchQuery:
    resource_type: str
    criteria: list[Criterion] = field(default_factory=list)
    sort: list[SortKey] = field(default_factory=list)
    count: int = 20
    total: str | None = None  # _total as asked (none, estimate, accurate), None when not asked
    summary: str | None = None
    elements: tuple[str, ...] | None = None
    cursor: dict | None = None
    warnings: list[Issue] = field(default_factory=list)
    includes: list[Include] = field(default_factory=list)
    revincludes: list[Include] = field(default_factory=list)
    applied: list[tuple[str, str]] = field(default_factory=list)
    """The (name, value) pairs the search used, in request order (for the ``self`` link)."""
    ignored: list[tuple[str, str]] = field(default_factory=list)
    """(name, why) of the parameters left out under lenient handling."""
    restriction: Restriction | None = None
    """What the token's scopes let it see (ANDed with the criteria); None: everything."""
    compartment: Restriction | None = None
    """The compartment a compartment search is confined to (``Patient/1/Observation``), ANDed."""


class Unusable(Exception):
    """A parameter this server cannot apply (unknown, unsupported modifier, chain, include target):
    a 400 under strict handling, ignored with a warning under lenient handling."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def rejection(name: str, why: str) -> FhirError:
    """The 400 of a parameter that cannot be used under strict handling."""
    return FhirError(
        400,
        "not-supported",
        f"Unknown or unsupported search parameter '{name[:100]}': {why} "
        "(send 'Prefer: handling=lenient' to have it ignored with a warning instead)",
    )


def split_values(raw: str) -> tuple[str, ...]:
    """Split on unescaped commas; ``\\,`` is a literal comma."""
    out, buf, i = [], [], 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\\" and i + 1 < len(raw) and raw[i + 1] in ",$|\\":
            buf.append("\\" + raw[i + 1] if raw[i + 1] in "$|" else raw[i + 1])
            i += 2
            continue
        if ch == ",":
            out.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
        i += 1
    out.append("".join(buf))
    return tuple(out)
