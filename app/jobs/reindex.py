"""Reindex jobs: build (or drop) the index of one custom SearchParameter from the event log, or
rebuild a type's projections (``$reindex``).

Both reindex kinds replay the last event of each resource of the parameter's base types through
the search-index projector limited to the parameter's code (its ``rows`` and ``write``, as the
inline path runs them): the rows of that code are cleared and, while the parameter is defined,
rebuilt. A batch holds the resources' write locks, so a concurrent write of one of them either
committed before the batch read its events or indexes it after the batch, inline.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg
import orjson

from app.events.latest import last_events, resource_ids_after
from app.fhirspec.resource_types import is_resource_type, resource_types
from app.fhirspec.search_parameters import SearchParam, registry
from app.projections import custom_params
from app.projections.rebuild import rebuild_type, replay_executor
from app.projections.search_index import SearchIndexProjector

Report = Callable[[dict], Awaitable[None]]
BATCH = 500
_LOCK_MANY = (
    "SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0)))"
    " FROM (SELECT k FROM unnest($1::text[]) k ORDER BY k) sorted"
)


def concrete_bases(param: SearchParam) -> list[str]:
    out: list[str] = []
    for base in param.base:
        out += list(resource_types()) if base in ("Resource", "DomainResource") else [base]
    return [t for t in dict.fromkeys(out) if is_resource_type(t)]


async def _reindex_batch(
    pool: asyncpg.Pool, projector: SearchIndexProjector, resource_type: str, ids: list[str]
) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(_LOCK_MANY, [f"{resource_type}/{i}" for i in ids])  # the writers' per-resource locks
        events, positions = await last_events(conn, resource_type, ids)
        await projector.write(conn, projector.rows(events, positions))


async def reindex_code(pool: asyncpg.Pool, code: str, types: list[str], report: Report) -> None:
    """Rebuild the rows of one parameter code over ``types`` from the last event of each resource."""
    projector = SearchIndexProjector(codes=frozenset({code}))
    done = 0
    for resource_type in types:
        after = ""
        while ids := await resource_ids_after(pool, resource_type, after, BATCH):
            await _reindex_batch(pool, projector, resource_type, ids)
            after, done = ids[-1], done + len(ids)
            await report({"resources": done, "type": resource_type})


async def reindex_param(pool: asyncpg.Pool, job_id: int, url: str, report: Report) -> None:
    row = await pool.fetchrow("SELECT status, job_id FROM search_param_state WHERE url = $1", url)
    if row is None or row["status"] != "building" or row["job_id"] != job_id:
        return  # superseded by a later definition or retired meanwhile
    async with pool.acquire() as conn:
        await custom_params.sync(conn)
    param = registry().by_url(url)
    if param is not None and param.custom:
        await reindex_code(pool, param.code, concrete_bases(param), report)
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
    await reindex_code(pool, param.code, concrete_bases(param), report)


async def rebuild_types(pool: asyncpg.Pool, types: list[str], report: Report) -> None:
    async with pool.acquire() as conn:
        await custom_params.sync(conn)
    with replay_executor(await custom_params.current_definitions(pool)) as executor:
        for i, resource_type in enumerate(types):
            result = await rebuild_type(pool, resource_type, executor=executor)
            await report({"types_done": i + 1, "types": len(types), "events": result.events})
