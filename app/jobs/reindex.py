"""Reindex jobs: build (or drop) the index of one custom SearchParameter, or rebuild a type's
projections (``$reindex``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg
import orjson

from app.fhirspec.resource_types import is_resource_type, resource_types
from app.fhirspec.search_parameters import SearchParam, register, registry, unregister
from app.projections.current_state import current_table
from app.projections.custom_params import custom_param
from app.projections.rebuild import custom_definitions, rebuild_type, replay_executor
from app.projections.search_index import KINDS, search_table, value_rows, write_rows
from app.projections.search_values import extract_values

Report = Callable[[dict], Awaitable[None]]
BATCH = 500


def concrete_bases(param: SearchParam) -> list[str]:
    out: list[str] = []
    for base in param.base:
        out += list(resource_types()) if base in ("Resource", "DomainResource") else [base]
    return [t for t in dict.fromkeys(out) if is_resource_type(t)]


async def sync_custom_params(pool: asyncpg.Pool) -> dict[str, str]:
    """Make this process's registry agree with ``search_param_state``; returns url -> status."""
    rows = await pool.fetch("SELECT url, status, definition FROM search_param_state")
    for r in rows:
        known = registry().by_url(r["url"])
        if r["status"] == "retired":
            if known is not None and known.custom:
                unregister(r["url"])
        elif known is None:
            register(custom_param(orjson.loads(r["definition"])))
    return {r["url"]: r["status"] for r in rows}


async def reindex_param(pool: asyncpg.Pool, job_id: int, url: str, report: Report) -> None:
    row = await pool.fetchrow("SELECT status, definition, job_id FROM search_param_state WHERE url = $1", url)
    if row is None or row["status"] != "building" or row["job_id"] != job_id:
        return  # superseded by a later definition or retired meanwhile
    param = register(custom_param(orjson.loads(row["definition"])))
    done = 0
    for resource_type in concrete_bases(param):
        cur = current_table(resource_type)
        after = ""
        while True:
            async with pool.acquire() as conn, conn.transaction():
                # FOR SHARE: a concurrent write of one of these resources waits, then re-indexes
                # it inline (with this parameter, already registered); no stale rows survive.
                rows = await conn.fetch(
                    f"SELECT id, resource FROM {cur} WHERE id > $1 AND NOT deleted ORDER BY id LIMIT $2 FOR SHARE",
                    after,
                    BATCH,
                )
                if not rows:
                    break
                ids = [r["id"] for r in rows]
                out: dict[str, list[tuple]] = {k: [] for k in KINDS}
                for r in rows:
                    found: dict[str, list[tuple]] = {k: [] for k in KINDS}
                    value_rows(param.code, extract_values(orjson.loads(r["resource"]), param), found)
                    for kind, kind_rows in found.items():
                        out[kind] += [(r["id"], *row) for row in kind_rows]
                await conn.execute(
                    f"DELETE FROM {search_table(resource_type, param.type)} WHERE id = ANY($1) AND param = $2",
                    ids,
                    param.code,
                )
                await write_rows(conn, resource_type, [], out)
                after = ids[-1]
                done += len(rows)
            await report({"resources": done, "type": resource_type})
    await pool.execute(
        "UPDATE search_param_state SET status = 'ready', updated_at = now() WHERE url = $1 AND job_id = $2",
        url,
        job_id,
    )


async def drop_param(pool: asyncpg.Pool, url: str, definition: str | None = None) -> None:
    """Delete the rows of a retired or redefined parameter (the definition that built them names
    its code, type and bases); unregister it unless a new definition of the URL is in use."""
    if definition is None:
        definition_bytes = await pool.fetchval("SELECT definition FROM search_param_state WHERE url = $1", url)
        definition = definition_bytes.decode() if definition_bytes else None
    if definition is None:
        return
    param = custom_param(orjson.loads(definition))
    status = await pool.fetchval("SELECT status FROM search_param_state WHERE url = $1", url)
    if status == "retired":
        unregister(url)
    for resource_type in concrete_bases(param):
        await pool.execute(f"DELETE FROM {search_table(resource_type, param.type)} WHERE param = $1", param.code)


async def rebuild_types(pool: asyncpg.Pool, types: list[str], report: Report) -> None:
    with replay_executor(await custom_definitions(pool)) as executor:
        for i, resource_type in enumerate(types):
            result = await rebuild_type(pool, resource_type, executor=executor)
            await report({"types_done": i + 1, "types": len(types), "events": result.events})
