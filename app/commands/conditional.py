"""Conditions of the conditional writes: create, update, patch and delete aimed by search criteria
instead of an id (https://hl7.org/fhir/R4/http.html#ccreate, #cond-update, #patch, #cdelete).

``conditional_target`` decides, from the ids the criteria match, which resource a write touches.
A write command that runs on its own calls ``aim`` (lock the criteria, so two identical conditional
creates make one resource; match them inside the transaction; decide) and reports errors in terms
of the request the client sent (``speaking_of``: ``PUT Patient?identifier=x: 2 resources match
...``). A transaction Bundle locks every entry's criteria first and calls ``conditional_target``
for each entry before any entry writes, then hands each command its target.

What criteria match is what the transaction's matcher (``tx.match``) finds: under a token with
confining scopes, only resources a search with that token would return
(:func:`app.api.write_auth.matcher_for`), so a resource the token cannot see does not exist for it
here either (none matching: create; several: 412, counting only those it can see)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from urllib.parse import parse_qsl, unquote, urlencode

from app.commands.references import resolve_conditional_references, rewrite
from app.commands.unit_of_work import WriteTransaction
from app.errors import FhirError, invalid
from app.identity import new_id

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


def request_path(resource_type: str, resource_id: str | None, criteria: str | None) -> str:
    """``Patient/1``, or ``Patient?identifier=x`` for a conditional write: what its events record."""
    return f"{resource_type}/{resource_id}" if resource_id else f"{resource_type}?{criteria}"


@dataclass(frozen=True)
class Target:
    """What a write touches: ``write_id`` (None: nothing to write, a conditional delete matching
    nothing) and, for a conditional create that matched, the ``existing_id`` it answers with."""

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
def speaking_of(method: str, resource_type: str, criteria: str) -> Iterator[None]:
    """Errors raised inside name the client's request (e.g. ``PUT Patient?identifier=x``)."""
    try:
        yield
    except FhirError as exc:
        prefix = f"{method} {resource_type}?{unquote(criteria)}"[:140] + ": "
        issues = [replace(i, diagnostics=prefix + i.diagnostics) for i in exc.issues]
        raise FhirError(exc.status, exc.code, prefix + exc.diagnostics, exc.expression, issues, exc.headers) from None


async def aim(
    tx: WriteTransaction, method: str, resource_type: str, criteria: str, body_id: str | None = None
) -> Target:
    """Lock the criteria and decide the target from what they match now, inside ``tx``."""
    await tx.lock_keys([criteria_key(resource_type, criteria)])
    return conditional_target(method, resource_type, criteria, await tx.match(resource_type, criteria), body_id)


async def with_references(tx: WriteTransaction, resource: dict) -> dict:
    """The resource with its conditional references (``Patient?identifier=x``) resolved."""
    mapping = await resolve_conditional_references(resource, tx.match, "")
    return rewrite(resource, mapping) if mapping else resource  # type: ignore[return-value]
