"""Conditional create, update and delete: the write is aimed by search criteria instead of an id
(https://hl7.org/fhir/R4/http.html#ccreate, #cond-update, #3.1.0.7.1 conditional delete).

``conditional_target`` is the decision shared with transaction Bundles: given the ids the criteria
match, which resource the write touches. The three commands here run a top-level conditional
request in its own transaction, under an advisory lock on the criteria (so two identical
conditional creates make one resource), and report errors in terms of the request the client
sent, e.g. ``PUT Patient?identifier=x: 2 resources match ...``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from urllib.parse import parse_qsl, unquote, urlencode

from app.commands.create import decide_create, new_id
from app.commands.delete import decide_delete
from app.commands.references import resolve_conditional_references, rewrite
from app.commands.result import WriteResult, WriteStatus, written
from app.commands.unit_of_work import WriteTransaction
from app.commands.update import decide_update
from app.errors import FhirError, invalid

_NOUN = {"POST": "conditional create", "PUT": "conditional update", "DELETE": "conditional delete"}
_NOUN_PATCH = "conditional patch"
# Parameters that shape the response, not the search: never criteria.
RESULT_PARAMETERS = frozenset({"_format", "_pretty", "_summary", "_elements"})


def criteria_key(resource_type: str, query: str) -> str:
    """The lock key of conditional criteria, independent of parameter order."""
    params = sorted(parse_qsl(query, keep_blank_values=True))
    return f"{resource_type}?{urlencode(params)}"


def same_criteria(resource_type: str, a: str, b: str) -> bool:
    return criteria_key(resource_type, a) == criteria_key(resource_type, b)


def strip_if_none_exist(raw: str) -> str:
    """``identifier=x``, ``?identifier=x`` and ``Patient?identifier=x`` are all seen in the wild."""
    return raw.split("?", 1)[1] if "?" in raw else raw


def search_criteria(query: str) -> str:
    """A request's query string without the parameters that only shape the response."""
    params = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k not in RESULT_PARAMETERS]
    return urlencode(params)


@dataclass(frozen=True)
class Target:
    """What a conditional write touches: ``write_id`` (None: nothing to write) and, for a
    conditional create that matched, the ``existing_id`` it answers with."""

    write_id: str | None
    existing_id: str | None = None


def conditional_target(
    method: str, resource_type: str, criteria: str, ids: list[str], body_id: str | None = None
) -> Target:
    """The decision of a conditional write from the ids its criteria match (pure; raises 412 on
    several matches, 400 when a PUT body's id contradicts the match, 404 for a PATCH matching none)."""
    if len(ids) > 1:
        raise FhirError(
            412,
            "multiple-matches",
            f"{len(ids)} {resource_type} resources match '{criteria[:100]}'; a {_NOUN.get(method, _NOUN_PATCH)} "
            "needs the criteria to match at most one (make them more specific, e.g. an identifier)",
        )
    match = ids[0] if ids else None
    if method == "POST":
        return Target(None, match) if match else Target(new_id())
    if method == "PUT":
        if match and body_id is not None and body_id != match:
            raise invalid(
                f"the resource's id '{body_id}' differs from the id '{match}' of the {resource_type} "
                "the criteria match; leave the id out or send the matching one"
            )
        return Target(match or body_id or new_id())
    if method == "DELETE":
        return Target(match)
    if match is None:  # PATCH
        raise FhirError(404, "not-found", f"no {resource_type} matches '{criteria[:100]}' to patch")
    return Target(match)


@contextmanager
def speaking_of(request: str) -> Iterator[None]:
    """Errors raised inside name the client's request (e.g. ``PUT Patient?identifier=x``)."""
    try:
        yield
    except FhirError as exc:
        prefix = f"{request[:140]}: "
        issues = [replace(i, diagnostics=prefix + i.diagnostics) for i in exc.issues]
        raise FhirError(exc.status, exc.code, prefix + exc.diagnostics, exc.expression, issues, exc.headers) from None


async def _aimed(
    tx: WriteTransaction, method: str, resource_type: str, criteria: str, body_id: str | None = None
) -> Target:
    await tx.lock_keys([criteria_key(resource_type, criteria)])
    target = conditional_target(method, resource_type, criteria, await tx.match(resource_type, criteria), body_id)
    if target.write_id is not None:
        await tx.lock(resource_type, target.write_id)
    return target


async def _with_references(tx: WriteTransaction, resource: dict) -> dict:
    mapping = await resolve_conditional_references(resource, tx.match, "")
    return rewrite(resource, mapping) if mapping else resource  # type: ignore[return-value]


async def conditional_create(tx: WriteTransaction, resource_type: str, criteria: str, resource: dict) -> WriteResult:
    """``POST [type]`` with ``If-None-Exist`` (or criteria in the URL): 0 matches create, 1 answers
    the existing resource, several are a 412."""
    with speaking_of(f"POST {resource_type}?{unquote(criteria)}"):
        target = await _aimed(tx, "POST", resource_type, criteria)
        if target.existing_id is not None:
            head = await tx.head(resource_type, target.existing_id)
            assert head is not None  # it matched, so it is current
            return WriteResult(
                WriteStatus.EXISTING, resource_type, target.existing_id, head.version, head.last_updated, head.resource
            )
        assert target.write_id is not None
        body = await _with_references(tx, resource)
        event = decide_create(resource_type, target.write_id, body, tx.recorded_at(None), tx.context)
        (position,) = await tx.record([event])
        return written(event, position)


async def conditional_update(
    tx: WriteTransaction, resource_type: str, criteria: str, resource: dict, if_match: int | None
) -> WriteResult:
    """``PUT [type]?criteria``: 0 matches create (with the body's id, if any), 1 updates it."""
    with speaking_of(f"PUT {resource_type}?{unquote(criteria)}"):
        target = await _aimed(tx, "PUT", resource_type, criteria, resource.get("id"))
        assert target.write_id is not None
        rid = target.write_id
        head = await tx.head(resource_type, rid)
        body = {**await _with_references(tx, resource), "id": rid}
        event = decide_update(head, resource_type, rid, body, if_match, tx.recorded_at(head), tx.context)
        (position,) = await tx.record([event])
        return written(event, position)


async def conditional_delete(
    tx: WriteTransaction, resource_type: str, criteria: str, if_match: int | None
) -> WriteResult:
    """``DELETE [type]?criteria``: 0 matches change nothing, 1 is deleted, several are a 412."""
    with speaking_of(f"DELETE {resource_type}?{unquote(criteria)}"):
        target = await _aimed(tx, "DELETE", resource_type, criteria)
        head = await tx.head(resource_type, target.write_id) if target.write_id else None
        event = None
        if target.write_id is not None:
            event = decide_delete(head, resource_type, target.write_id, if_match, tx.recorded_at(head), tx.context)
        if event is None:
            return WriteResult(WriteStatus.UNCHANGED, resource_type, target.write_id or "", None, None, None)
        (position,) = await tx.record([event])
        return written(event, position)
