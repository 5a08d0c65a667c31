"""Turning the resources of an import file into version events (pure; runs in worker processes).

Each resource is checked as a write through the API would check it (its type and id, then the
R4 validator of :func:`app.commands.validate.check_resource`), then stamped (:func:`app.commands.stamp.stamp`)
into a version-1 event recorded as ``PUT [type]/[id]`` by the importer. The search rows come from
the search-index projector's own ``rows``, so imported resources are indexed exactly like written ones.

Identity and time, as the file says:

- ``id``: kept. A Bundle entry without one takes it from ``request.url`` (``PUT Type/id``) or from
  a ``urn:uuid:`` ``fullUrl``; else a new UUID. Every string equal to an entry's ``fullUrl`` is
  rewritten to ``Type/id`` (:func:`app.commands.references.rewrite`), as a transaction does.
- ``meta.versionId`` (digits) and ``meta.lastUpdated``: kept, so a file exported by a FHIR server
  imports byte for byte; the event's version is that versionId (its history here starts there)
  and its recorded time that lastUpdated (a time in the future is refused). Without them: version 1
  at the time of the import.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import orjson

from app.commands.references import references_in, rewrite
from app.commands.search_parameters import checked_param
from app.commands.stamp import stamped
from app.commands.validate import check_resource
from app.errors import FhirError, Issue
from app.events.model import EventKind, RequestContext, VersionEvent
from app.fhirspec.resource_types import is_resource_type
from app.fhirtime import FhirDateError, now_millis, parse_range
from app.identity import ID_PATTERN, MAX_VERSION_DIGITS
from app.projections.custom_params import is_custom_definition
from app.projections.search_index import SearchIndexProjector, SearchRows

ENTRY_BUNDLES = frozenset({"transaction", "batch", "collection"})
RESOURCE_BUNDLES = frozenset({"document", "message"})  # imported as Bundle resources themselves
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Problem:
    """A resource (or a whole file) that was not imported: where (``file:line`` or
    ``file#entry[i]``) and why."""

    where: str
    issues: tuple[Issue, ...]


@dataclass
class Prepared:
    """The events of a part of a file, in file order, with their search rows and the problems."""

    events: list[VersionEvent] = field(default_factory=list)
    where: list[str] = field(default_factory=list)
    search: SearchRows = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    inputs: int = 0  # lines or entries read


class Rejected(Exception):
    def __init__(self, *issues: Issue) -> None:
        super().__init__(issues[0].diagnostics)
        self.issues = issues


def _error(text: str, code: str = "invalid", expression: tuple[str, ...] = ()) -> Rejected:
    return Rejected(Issue("error", code, text, expression))


def version_and_time(resource: dict, now: datetime) -> tuple[int, datetime]:
    """The version and recorded time an imported resource keeps from its ``meta``."""
    meta = resource.get("meta") if isinstance(resource.get("meta"), dict) else {}
    version_id = meta.get("versionId")
    version = 1
    if isinstance(version_id, str) and version_id.isdigit() and 0 < len(version_id) <= MAX_VERSION_DIGITS:
        version = max(int(version_id), 1)
    last_updated = meta.get("lastUpdated")
    if not isinstance(last_updated, str):
        return version, now
    try:
        at = parse_range(last_updated)[0]
    except FhirDateError as exc:
        raise _error(str(exc), "value", (f"{resource['resourceType']}.meta.lastUpdated",)) from None
    if at > now + CLOCK_SKEW:
        raise _error(
            f"meta.lastUpdated {last_updated} is in the future; an imported version is recorded at its lastUpdated",
            "value",
            (f"{resource['resourceType']}.meta.lastUpdated",),
        )
    return version, at.replace(microsecond=at.microsecond // 1000 * 1000)


def to_event(resource: object, context: RequestContext, now: datetime, lenient: bool) -> VersionEvent:
    """The version event of one imported resource; raises :class:`Rejected` with every issue."""
    if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
        raise _error("not a FHIR resource: a JSON object with a 'resourceType' is expected", "structure")
    resource_type = resource["resourceType"]
    if not is_resource_type(resource_type):
        raise _error(f"unknown resource type '{resource_type[:80]}'", "not-supported")
    rid = resource.get("id")
    if not isinstance(rid, str) or not ID_PATTERN.fullmatch(rid):
        raise _error(f"the resource needs an 'id' of 1-64 characters A-Z a-z 0-9 - . (found {rid!r:.80})")
    local = [r for r in references_in(resource) if r.startswith(("urn:uuid:", "urn:oid:")) or "?" in r]
    if local:
        raise _error(
            f"the reference '{local[0][:120]}' names no resource: urn: references must name an entry of the same"
            " Bundle, and conditional references are not resolved by an import",
            "not-found",
        )
    try:
        check_resource(resource, lenient=lenient)
        if resource_type == "SearchParameter" and is_custom_definition(resource):
            checked_param(resource)  # a definition this server cannot index is refused, as by the API
    except FhirError as exc:
        raise Rejected(*exc.all_issues()) from None
    version, recorded_at = version_and_time(resource, now)
    body, parsed = stamped(resource, rid, version, recorded_at)
    put = _put(context, resource_type, rid)
    return VersionEvent(resource_type, rid, version, EventKind.CREATED, body, recorded_at, put, parsed)


def _put(context: RequestContext, resource_type: str, rid: str) -> RequestContext:
    return RequestContext(
        "PUT",
        f"{resource_type}/{rid}",
        actor=context.actor,
        client_addr=context.client_addr,
        request_id=context.request_id,
        client_id=context.client_id,
        scope_kind=context.scope_kind,
    )


def _add(out: Prepared, where: str, resource: object, context: RequestContext, now: datetime, lenient: bool) -> None:
    try:
        out.events.append(to_event(resource, context, now, lenient))
        out.where.append(where)
    except Rejected as exc:
        out.problems.append(Problem(where, exc.issues))


def _finish(out: Prepared) -> Prepared:
    """The search rows of the events (a resource repeated in one part counts once: its first)."""
    first: dict[tuple[str, str], VersionEvent] = {}
    for e in out.events:
        first.setdefault((e.resource_type, e.resource_id), e)
    out.search = SearchIndexProjector().rows(list(first.values()), [0] * len(first))
    out.events = [replace(e, parsed=None) for e in out.events]  # the bytes go back to the importer, not the value
    return out


def prepare_lines(
    path: str,
    first_line: int,
    lines: list[bytes],
    context: RequestContext,
    lenient: bool,
    resource_type: str | None = None,
) -> Prepared:
    """The events of ndjson lines (``first_line`` is the number of the first; each of
    ``resource_type`` when given); blank lines are skipped."""
    out = Prepared(inputs=len(lines))
    now = now_millis()
    for n, line in enumerate(lines, first_line):
        if not line.strip():
            continue
        try:
            resource = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            out.problems.append(Problem(f"{path}:{n}", (Issue("error", "structure", f"not JSON: {exc}"),)))
            continue
        if resource_type is not None and isinstance(resource, dict) and resource.get("resourceType") != resource_type:
            text = f"a {resource.get('resourceType')!r:.40} where the input's type is {resource_type}"
            out.problems.append(Problem(f"{path}:{n}", (Issue("error", "invalid", text),)))
            continue
        _add(out, f"{path}:{n}", resource, context, now, lenient)
    return _finish(out)


def _entry_id(entry: dict, resource: dict) -> str | None:
    """The id an entry's resource takes: its own, else ``request.url``'s, else its urn:uuid's."""
    if isinstance(resource.get("id"), str):
        return resource["id"]
    request = entry.get("request") if isinstance(entry.get("request"), dict) else {}
    url = request.get("url")
    if request.get("method") == "PUT" and isinstance(url, str) and "?" not in url and url.count("/") == 1:
        return url.split("/")[1]
    full_url = entry.get("fullUrl")
    if isinstance(full_url, str) and full_url.startswith("urn:uuid:"):
        return full_url[len("urn:uuid:") :]
    return None


def bundle_resources(path: str, bundle: dict) -> tuple[list[tuple[str, object]], list[Problem]]:
    """``(where, resource)`` of each entry of a Bundle, with ids given and fullUrls rewritten."""
    entries = bundle.get("entry") if isinstance(bundle.get("entry"), list) else []
    mapping: dict[str, str] = {}
    found: list[tuple[str, dict]] = []
    problems: list[Problem] = []
    for i, entry in enumerate(entries):
        where = f"{path}#entry[{i}]"
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            problems.append(Problem(where, (Issue("error", "required", "the entry holds no resource to import"),)))
            continue
        rid = _entry_id(entry, resource) or str(uuid.uuid4())
        resource = {**resource, "id": rid} if resource.get("id") != rid else resource
        full_url = entry.get("fullUrl")
        if isinstance(full_url, str) and full_url:
            mapping[full_url] = f"{resource['resourceType']}/{rid}"
        found.append((where, resource))
    if not mapping:
        return list(found), problems
    return [(where, rewrite(resource, mapping)) for where, resource in found], problems


def prepare_document(path: str, raw: bytes, context: RequestContext, lenient: bool) -> Prepared:
    """The events of a JSON file: a Bundle's entries (transaction, batch, collection), or one resource."""
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Prepared(problems=[Problem(path, (Issue("error", "structure", f"not JSON: {exc}"),))], inputs=1)
    now = now_millis()
    is_bundle = isinstance(document, dict) and document.get("resourceType") == "Bundle"
    if not is_bundle or document.get("type") in RESOURCE_BUNDLES:
        out = Prepared(inputs=1)
        _add(out, path, document, context, now, lenient)
        return _finish(out)
    if document.get("type") not in ENTRY_BUNDLES:
        text = f"a Bundle of type {document.get('type')!r} is not imported (transaction, batch or collection are)"
        return Prepared(problems=[Problem(path, (Issue("error", "not-supported", text),))], inputs=1)
    resources, problems = bundle_resources(path, document)
    out = Prepared(problems=problems, inputs=len(resources) + len(problems))
    for where, resource in resources:
        _add(out, where, resource, context, now, lenient)
    return _finish(out)
