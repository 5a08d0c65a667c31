"""Parsing a search request's parameters (https://hl7.org/fhir/R4/search.html).

Parameters of the same name are ANDed; comma-separated values within one are ORed (``\\,``
escapes a comma). Result parameters (``_count``, ``_sort``, ``_total``, ``_summary``,
``_elements``) shape the Bundle. A parameter the server cannot apply (unknown, unsupported
modifier or chain, unknown ``_include`` target or ``_sort`` key) is rejected with 400 under
``Prefer: handling=strict`` (the default) and ignored with a warning under ``handling=lenient``;
a malformed value, a control character, or a search beyond the limits of
:mod:`app.queries.search.model` is always 400, naming the parameter.
"""

from __future__ import annotations

import re

from app.errors import FhirError, Issue, invalid
from app.fhirspec.search_parameters import params_for
from app.queries.paging import CURSOR_PARAM, decode_cursor
from app.queries.search.criteria import ALL_MODIFIERS, resolve
from app.queries.search.include_parse import parse_include
from app.queries.search.model import (
    MAX_CRITERIA,
    MAX_INCLUDES,
    MAX_OR_VALUES,
    MAX_SORT_KEYS,
    Criterion,
    Include,
    SearchQuery,
    SortKey,
    Unusable,
    rejection,
    split_values,
    unescape,
)
from app.search_types.registry import search_type

__all__ = [
    "ALL_MODIFIERS",
    "Criterion",
    "Include",
    "SearchQuery",
    "SortKey",
    "parse_search",
    "split_values",
    "unescape",
]

# Parameters that shape the result or transport, not the match.
RESULT_PARAMS = frozenset(
    {
        "_count",
        "_sort",
        "_total",
        "_summary",
        "_elements",
        CURSOR_PARAM,
        "_format",
        "_pretty",
        "_type",
    }
)
# Accepted and ignored without a warning: they change nothing for a JSON server without includes.
QUIET_PARAMS = frozenset({"_contained", "_containedType"})
SUMMARY_VALUES = {"true", "false", "text", "data", "count"}
TOTAL_VALUES = {"none", "estimate", "accurate"}
# C0 control characters but tab, LF and CR (which FHIR strings allow); PostgreSQL refuses NUL.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


class _Parser:
    def __init__(self, query: SearchQuery, strict: bool) -> None:
        self.query = query
        self.strict = strict

    def reject(self, name: str, why: str) -> None:
        if self.strict:
            raise rejection(name, why)
        self.query.ignored.append((name, why))
        self.query.warnings.append(
            Issue("warning", "not-supported", f"Search parameter '{name[:100]}' was ignored: {why}")
        )


def _check_text(name: str, value: str) -> None:
    for text in (name, value):
        bad = _CONTROL.search(text)
        if bad:
            raise invalid(
                f"Search parameter '{_CONTROL.sub('?', name)[:100]}' contains the control character "
                f"U+{ord(bad.group()):04X}, which search values may not hold"
            )


def parse_search(
    resource_type: str,
    params: list[tuple[str, str]],
    *,
    strict: bool,
    default_count: int,
    max_count: int,
    building: frozenset[str] = frozenset(),
) -> SearchQuery:
    """``building``: URLs of custom parameters whose index is still being built (→ 503)."""
    query = SearchQuery(resource_type)
    parser = _Parser(query, strict)
    singles: dict[str, str] = {}
    for name, value in params:
        _check_text(name, value)
        base, _, modifier = name.partition(":")
        if base in RESULT_PARAMS:
            if base in singles and base not in ("_sort", "_elements", "_type"):
                raise invalid(f"{base} may be given only once")
            singles[base] = value
            query.applied.append((name, value))
            continue
        if base in QUIET_PARAMS:
            continue
        if base in ("_include", "_revinclude"):
            try:
                inc = parse_include(name, value)
            except Unusable as exc:
                parser.reject(f"{name}={value}", exc.why)
                continue
            (query.includes if base == "_include" else query.revincludes).append(inc)
            query.applied.append((name, value))
            continue
        if len(split_values(value)) > MAX_OR_VALUES:
            raise invalid(
                f"Search parameter '{name[:100]}' has {len(split_values(value))} comma-separated values; "
                f"at most {MAX_OR_VALUES} are allowed (split the search)"
            )
        try:
            query.criteria.append(resolve(resource_type, name, value, building))
        except Unusable as exc:
            parser.reject(name, exc.why)
            continue
        query.applied.append((name, value))
    _check_limits(query)
    _result_params(query, parser, singles, default_count, max_count)
    return query


def _check_limits(query: SearchQuery) -> None:
    if len(query.criteria) > MAX_CRITERIA:
        raise invalid(
            f"This search has {len(query.criteria)} search parameters; at most {MAX_CRITERIA} are allowed in one search"
        )
    if len(query.includes) + len(query.revincludes) > MAX_INCLUDES:
        raise invalid(f"At most {MAX_INCLUDES} _include and _revinclude parameters are allowed in one search")


def _set_applied(query: SearchQuery, name: str, value: str | None) -> None:
    """Replace (or, with None, drop) the applied value of a single result parameter."""
    query.applied = [(k, value if k == name else v) for k, v in query.applied if k != name or value is not None]


def _result_params(
    query: SearchQuery, parser: _Parser, singles: dict[str, str], default_count: int, max_count: int
) -> None:
    query.count = _count(query, singles.get("_count"), default_count, max_count)
    if "_sort" in singles:
        query.sort = _sort(query.resource_type, parser, singles["_sort"])
        text = ",".join(("-" if k.descending else "") + k.code for k in query.sort)
        query.applied = [(k, v) for k, v in query.applied if k != "_sort"]
        if text:
            query.applied.append(("_sort", text))
    total = singles.get("_total")
    if total is not None:
        if total not in TOTAL_VALUES:
            raise invalid(f"_total='{total[:40]}' is not one of none, estimate, accurate")
        query.total = total
    summary = singles.get("_summary")
    if summary is not None:
        if summary not in SUMMARY_VALUES:
            raise invalid(f"_summary='{summary[:40]}' is not one of true, false, text, data, count")
        query.summary = None if summary == "false" else summary
    if "_elements" in singles:
        names = tuple(e.strip() for e in singles["_elements"].split(",") if e.strip())
        query.elements = names or None
    if CURSOR_PARAM in singles:
        query.cursor = decode_cursor(singles[CURSOR_PARAM])


def _count(query: SearchQuery, raw: str | None, default: int, maximum: int) -> int:
    """``_count``, clamped to ``maximum`` with a warning (the ``self`` link shows the clamped value)."""
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()):
        raise invalid(f"_count='{raw[:40]}' is not a non-negative whole number")
    if len(raw) <= 9 and int(raw) <= maximum:
        return int(raw)
    query.warnings.append(
        Issue(
            "warning",
            "processing",
            f"_count={raw[:20]}{'…' if len(raw) > 20 else ''} is above this server's maximum page size; "
            f"pages hold at most {maximum} resources (_count={maximum})",
        )
    )
    _set_applied(query, "_count", str(maximum))
    return maximum


def _sort(resource_type: str, parser: _Parser, raw: str) -> list[SortKey]:
    keys = []
    known = params_for(resource_type)
    parts = raw.split(",")
    if len(parts) > MAX_SORT_KEYS:
        raise invalid(f"_sort has {len(parts)} keys; at most {MAX_SORT_KEYS} are allowed")
    for part in parts:
        part = part.strip()
        if not part:
            continue
        descending = part.startswith("-")
        code = part.lstrip("-")
        if code in ("_id", "_lastUpdated"):
            keys.append(SortKey(code, None, descending))
            continue
        param = known.get(code)
        if param is None:
            parser.reject(f"_sort={part}", f"'{code[:60]}' is not a search parameter of {resource_type}")
        elif not param.expression:  # _content, _text (full-text searches), _query
            parser.reject(f"_sort={part}", f"'{code}' has no values to sort by")
        elif search_type(param.type).sort_columns is None:
            parser.reject(f"_sort={part}", f"'{code}' is a {param.type} parameter and cannot be sorted on")
        else:
            keys.append(SortKey(code, param, descending))
    return keys


def strict_failure(query: SearchQuery) -> FhirError | None:
    """The 400 strict handling would have answered for a query parsed leniently, if any."""
    return rejection(*query.ignored[0]) if query.ignored else None
