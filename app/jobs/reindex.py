"""Reindex jobs: build (or drop) the index of one custom SearchParameter from the event log, or
rebuild a type's projections (``$reindex``).

Both reindex kinds replay the last event of each resource of the parameter's base types through
the search-index projector limited to the parameter's code (its ``rows`` and ``write``, as the
inline path runs them): the rows of that code are cleared (from the side tables of the
parameter's type) and, while the parameter is defined, rebuilt; :mod:`app.jobs.param_index` says
how a concurrent write of one of the resources is never lost nor doubled.
"""

from __future__ import annotations

import asyncpg
import orjson

from app.fhirspec.resource_types import is_resource_type, resource_types
from app.fhirspec.search_parameters import SearchParam, core_registry, registry
from app.jobs.param_index import Report, index_code
from app.projections import custom_params
from app.projections.rebuild import rebuild_type, replay_executor
from app.projections.search_index import param_kinds
from app.search_types.param_aliases import dependents


def concrete_bases(param: SearchParam) -> list[str]:
    out: list[str] = []
    for base in param.base:
        out += list(resource_types()) if base in ("Resource", "DomainResource") else [base]
    return [t for t in dict.fromkeys(out) if is_resource_type(t)]


async def reindex_param(pool: asyncpg.Pool, job_id: int, url: str, report: Report) -> None:
    row = await pool.fetchrow("SELECT status, job_id FROM search_param_state WHERE url = $1", url)
    if row is None or row["status"] != "building" or row["job_id"] != job_id:
        return  # superseded by a later definition or retired meanwhile
    async with pool.acquire() as conn:
        await custom_params.sync(conn)
    param = registry().by_url(url)
    if param is not None and param.custom:
        await _index_with_dependents(pool, param, report)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "UPDATE search_param_state SET status = 'ready', updated_at = now() WHERE url = $1 AND job_id = $2",
            url,
            job_id,
        )
        await custom_params.bump_version(conn)


async def drop_param(pool: asyncpg.Pool, url: str, definition: str | None, report: Report) -> None:
    """Clear the rows a retired or re-coded definition built (it names its code, type and bases);
    rows of the code that a parameter still defines are rebuilt, not lost."""
    if definition is None:
        return
    async with pool.acquire() as conn:
        await custom_params.sync(conn)
    param = custom_params.parse_definition(orjson.loads(definition))
    await _index_with_dependents(pool, param, report)


async def _index_with_dependents(pool: asyncpg.Pool, param: SearchParam, report: Report) -> None:
    """Index the parameter's code, then the R4 parameters answered from its rows where it is the
    R4 one (:func:`app.search_types.param_aliases.dependents`): theirs are built or cleared."""
    types = concrete_bases(param)
    await index_code(pool, param.code, types, param_kinds(param.type), report)
    for code, of_types in dependents(param.code, types).items():
        kind = core_registry().get(of_types[0], code)
        assert kind is not None
        await index_code(pool, code, of_types, param_kinds(kind.type), report)


async def rebuild_types(pool: asyncpg.Pool, types: list[str], report: Report) -> None:
    async with pool.acquire() as conn:
        await custom_params.sync(conn)
    with replay_executor(await custom_params.current_definitions(pool)) as executor:
        for i, resource_type in enumerate(types):
            result = await rebuild_type(pool, resource_type, executor=executor)
            await report({"types_done": i + 1, "types": len(types), "events": result.events})
