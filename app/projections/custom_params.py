"""Custom SearchParameters (https://hl7.org/fhir/R4/searchparameter.html): a projector of
``SearchParameter`` events, inline in the write's transaction.

An ``active`` SearchParameter whose URL is not one of R4's own (with ``base``, ``code``, ``type``
and ``expression``) is recorded in ``search_param_state`` as ``building`` and a ``reindex-param``
job is queued in the same transaction; the job (app/jobs) builds its index from the current
versions and marks it ``ready``. Retiring or deleting it queues ``drop-param``. A definition the
server cannot index (unknown type, an expression that does not compile, a code clash with an R4
parameter of a base type) fails the write with 422, so it is never half-registered.

Each server process keeps the registry in memory and syncs it from ``search_param_state`` every few
seconds (app/api/staleness.py); the process running the job registers the parameter before it
indexes. With several worker processes, a write handled by another process in those seconds is
indexed without the new parameter unless the job reaches it later — a gap to close with a
registry version checked per write."""

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
from app.jobs.queue import queue_job

CUSTOM_PARAMS_DDL = """
CREATE TABLE IF NOT EXISTS search_param_state (
    url         text PRIMARY KEY,
    resource_id text NOT NULL,
    version     integer NOT NULL,
    status      text NOT NULL CHECK (status IN ('building', 'ready', 'retired')),
    definition  bytea,
    job_id      bigint,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS jobs (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind        text NOT NULL,
    params      jsonb NOT NULL,
    status      text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'done', 'failed')),
    progress    jsonb,
    error       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    started_at  timestamptz,
    finished_at timestamptz
);
CREATE INDEX IF NOT EXISTS jobs_pending ON jobs (id) WHERE status IN ('pending', 'running');
"""


def custom_param(resource: dict) -> SearchParam:
    """The parameter a SearchParameter resource defines, checked to be indexable here."""
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
        if expression and (why := regex_refusal(expression)):
            raise FhirError(422, "processing", f"{where}: expression '{expression[:200]}': {why}")
        if expression:
            try:
                context = base if is_resource_type(base) else "Patient"
                if compile_expression(expression, context).is_fallback:
                    # fhirpathpy checks syntax lazily: one evaluation surfaces an error
                    fhirpathpy.evaluate({"resourceType": context}, expression, model=models["r4"])
            except Exception as exc:  # the compiler's and fhirpathpy's errors are of several kinds
                text = f"{where}: expression '{expression}' cannot be evaluated: {exc}"
                raise FhirError(422, "processing", text) from None
    return param


def is_core(url: str | None) -> bool:
    found = registry().by_url(url) if url else None
    return found is not None and not found.custom


async def _drop(conn: asyncpg.Connection, known: asyncpg.Record) -> int:
    """Queue the removal of the rows a definition built (it names its own code, type and bases)."""
    definition = known["definition"].decode() if known["definition"] else None
    return await queue_job(conn, "drop-param", {"url": known["url"], "definition": definition})


class CustomSearchParamProjector:
    name = "custom_search_params"

    async def apply(self, conn: asyncpg.Connection, events: Sequence[VersionEvent], positions: Sequence[int]) -> None:
        for e in events:
            if e.resource_type != "SearchParameter":
                continue
            known = await conn.fetchrow(
                "SELECT url, definition FROM search_param_state WHERE resource_id = $1", e.resource_id
            )
            resource = orjson.loads(e.resource) if e.resource else None
            active = (
                e.kind is not EventKind.DELETED
                and resource is not None
                and resource.get("status") == "active"
                and not is_core(resource.get("url"))
                and resource.get("expression")
            )
            if known is not None and (not active or resource.get("url") != known["url"]):
                job = await _drop(conn, known)
                await conn.execute(
                    "UPDATE search_param_state SET status = 'retired', job_id = $2, updated_at = now() WHERE url = $1",
                    known["url"],
                    job,
                )
            if not active:
                continue
            param = custom_param(resource)
            if known is not None and known["url"] == param.url and known["definition"]:
                old = custom_param(orjson.loads(known["definition"]))
                if (old.code, old.type, old.base) != (param.code, param.type, param.base):
                    await _drop(conn, known)  # the old code's rows go; the new ones are built below
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
