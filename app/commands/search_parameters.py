"""Custom SearchParameters as a write-side policy (https://hl7.org/fhir/R4/searchparameter.html).

Run by every write (app/commands/unit_of_work.py) around its append:

- before the append, a SearchParameter that defines an active custom parameter is checked to be
  indexable here (base, type, a code that does not clash with R4's, an expression that compiles):
  a definition the server cannot index is refused with 422 and nothing is written; then the
  registry version is locked (shared; exclusive when the write holds SearchParameters) and the
  process's custom parameters are reloaded if it moved, so the inline projection of this write
  indexes every parameter defined before it;
- after the projection, the index builds are queued (``reindex-param``, ``drop-param`` for a
  retired, deleted or re-coded definition), recorded in ``search_param_state`` as ``building``,
  and the version is bumped so that every process reloads before its next search or write.

The set of active parameters itself is the current SearchParameter resources
(app/projections/custom_params.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
import fhirpathpy
import orjson
from fhirpathpy.models import models

from app.errors import FhirError
from app.events.model import EventKind, VersionEvent
from app.fhirpath import compile_expression
from app.fhirpath.regex_guard import refusal as regex_refusal
from app.fhirspec.resource_types import is_resource_type
from app.fhirspec.search_parameters import SearchParam, get_param, registry
from app.job_queue import queue_job
from app.projections.custom_params import bump_version, is_custom_definition, parse_definition, sync_for_write


def check_expression(where: str, expression: str, base: str) -> None:
    """Refuse (422) an expression that cannot be evaluated on ``base``, or that would run a regular
    expression (``matches``/``replaceMatches``: a catastrophic pattern would stall every later write)."""
    if why := regex_refusal(expression):
        raise FhirError(422, "processing", f"{where}: expression '{expression[:200]}': {why}")
    try:
        context = base if is_resource_type(base) else "Patient"
        if compile_expression(expression, context).is_fallback:
            # fhirpathpy checks syntax lazily: one evaluation surfaces an error
            fhirpathpy.evaluate({"resourceType": context}, expression, model=models["r4"])
    except Exception as exc:  # the compiler's and fhirpathpy's errors are of several kinds
        raise FhirError(422, "processing", f"{where}: expression '{expression}' cannot be evaluated: {exc}") from None


def checked_param(resource: dict) -> SearchParam:
    """The parameter a SearchParameter resource defines, checked to be indexable here (else 422)."""
    url = resource.get("url")
    where = f"SearchParameter {url or resource.get('id')}"
    try:
        param = SearchParam.from_resource(resource, registry().by_url)
    except (KeyError, ValueError) as exc:
        raise FhirError(422, "processing", f"{where} cannot be used for search: {exc}") from None
    if not param.expression or param.type == "special":
        raise FhirError(422, "processing", f"{where} needs an expression and a type other than special")
    for base in param.base:
        if not is_resource_type(base) and base not in ("Resource", "DomainResource"):
            raise FhirError(422, "processing", f"{where}: base '{base}' is not a resource type")
        clash = get_param(base, param.code) if is_resource_type(base) else None
        if clash is not None and not clash.custom and clash.url != param.url:
            raise FhirError(422, "processing", f"{where}: code '{param.code}' is already R4's {clash.url} on {base}")
        expression = param.expression_for(base)
        if expression:
            check_expression(where, expression, base)
    return param


def _definition(e: VersionEvent) -> dict | None:
    """The custom parameter definition an event holds, if any."""
    if e.resource_type != "SearchParameter" or e.kind is EventKind.DELETED or e.resource is None:
        return None
    resource = orjson.loads(e.resource)
    return resource if is_custom_definition(resource) else None


async def before_append(conn: asyncpg.Connection, events: Sequence[VersionEvent]) -> list[VersionEvent]:
    """Check the definitions among ``events`` and load the current parameters; returns the
    SearchParameter events (for :func:`after_projection`)."""
    definitions = [e for e in events if e.resource_type == "SearchParameter"]
    for e in definitions:
        resource = _definition(e)
        if resource is not None:
            checked_param(resource)
    await sync_for_write(conn, exclusive=bool(definitions))
    return definitions


async def _retire(conn: asyncpg.Connection, known: asyncpg.Record) -> None:
    definition = known["definition"].decode() if known["definition"] else None
    job = await queue_job(conn, "drop-param", {"url": known["url"], "definition": definition})
    await conn.execute(
        "UPDATE search_param_state SET status = 'retired', job_id = $2, updated_at = now() WHERE url = $1",
        known["url"],
        job,
    )


async def _build(conn: asyncpg.Connection, e: VersionEvent, param: SearchParam, known: asyncpg.Record | None) -> None:
    if known is not None and known["url"] == param.url and known["definition"]:
        old = parse_definition(orjson.loads(known["definition"]))
        if (old.code, old.type, old.base) != (param.code, param.type, param.base):  # the old code's rows go
            await queue_job(conn, "drop-param", {"url": param.url, "definition": known["definition"].decode()})
    job = await queue_job(conn, "reindex-param", {"url": param.url})
    await conn.execute(
        "INSERT INTO search_param_state (url, resource_id, version, status, definition, job_id)"
        " VALUES ($1, $2, $3, 'building', $4, $5) ON CONFLICT (url) DO UPDATE SET resource_id = $2,"
        " version = $3, status = 'building', definition = $4, job_id = $5, updated_at = now()",
        param.url,
        e.resource_id,
        e.version,
        e.resource,
        job,
    )


async def after_projection(conn: asyncpg.Connection, definitions: Sequence[VersionEvent]) -> None:
    """Queue the index builds the SearchParameter events call for and bump the version."""
    if not definitions:
        return
    for e in definitions:
        known = await conn.fetchrow(
            "SELECT url, definition FROM search_param_state WHERE resource_id = $1 AND status <> 'retired'",
            e.resource_id,
        )
        resource = _definition(e)
        if known is not None and (resource is None or resource.get("url") != known["url"]):
            await _retire(conn, known)
        if resource is not None:
            await _build(conn, e, parse_definition(resource), known)
    await bump_version(conn)
