"""The active custom SearchParameters, derived from the current SearchParameter resources.

A SearchParameter resource that is ``active``, has an expression and a URL that is not one of
R4's own defines a custom parameter; the set lives nowhere else than in the current-state
projection of SearchParameter, so replaying the log rebuilds it. ``search_param_version`` holds
one counter, bumped by every write of a SearchParameter and by a finished index build; each
process compares it with the version its registry was loaded at (per write inside the write's
transaction, per request before a search) and reloads the registry when it moved.
``search_param_state`` is the bookkeeping of index builds per URL (``building`` until the
reindex job is done, then ``ready``); it is not a projection and a URL without a row is ready.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass

import asyncpg
import orjson

from app.events.codec import decode
from app.fhirspec.search_parameters import SearchParam, register, registry, unregister
from app.projections.current_state import current_table, resource_sql

log = logging.getLogger("fhirledger.search_params")

VERSION_LOCK = 7_245_003  # writers hold it shared, a SearchParameter write exclusively

SEARCH_PARAM_STATE_DDL = """
CREATE TABLE IF NOT EXISTS search_param_state (
    url         text PRIMARY KEY,
    resource_id text NOT NULL,
    version     integer NOT NULL,
    status      text NOT NULL CHECK (status IN ('building', 'ready', 'retired')),
    definition  bytea,
    job_id      bigint,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
"""

# one row; the function locks (shared or exclusive) and then reads it in a new snapshot, so a
# writer that waited for a SearchParameter write sees the version that write committed
SEARCH_PARAM_VERSION_DDL = f"""
CREATE TABLE IF NOT EXISTS search_param_version (
    one     boolean PRIMARY KEY DEFAULT true CHECK (one),
    version bigint NOT NULL
);
INSERT INTO search_param_version (version) VALUES (1) ON CONFLICT DO NOTHING;
CREATE OR REPLACE FUNCTION search_param_version_locked(exclusive boolean) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF exclusive THEN
        PERFORM pg_advisory_xact_lock({VERSION_LOCK});
    ELSE
        PERFORM pg_advisory_xact_lock_shared({VERSION_LOCK});
    END IF;
    RETURN (SELECT version FROM search_param_version);
END $$;
"""


def is_core(url: object) -> bool:
    found = registry().by_url(url) if isinstance(url, str) else None
    return found is not None and not found.custom


def is_custom_definition(resource: dict | None) -> bool:
    """Whether a SearchParameter resource defines an active custom parameter."""
    return (
        resource is not None
        and resource.get("status") == "active"
        and bool(resource.get("expression"))
        and not is_core(resource.get("url"))
    )


def parse_definition(resource: dict) -> SearchParam:
    """The parameter a SearchParameter resource defines (not checked: app/commands does that)."""
    return SearchParam.from_resource(resource, registry().by_url)


def load_definitions(definitions: Iterable[bytes]) -> dict[str, bytes]:
    """Make this process's custom parameters exactly those defined by ``definitions`` (JSON bytes of
    SearchParameter resources); returns url -> definition of those loaded."""
    wanted: dict[str, tuple[bytes, SearchParam]] = {}
    for blob in definitions:
        resource = orjson.loads(blob)
        if not is_custom_definition(resource):
            continue
        try:
            wanted[resource["url"]] = (blob, parse_definition(resource))
        except (KeyError, ValueError) as exc:  # stored before the write-side checks existed
            log.warning("custom SearchParameter %s not loaded: %s", resource.get("url"), exc)
    for param in registry().all():
        if param.custom and param.url not in wanted:
            unregister(param.url)
    for url, (blob, param) in wanted.items():
        if _loaded.get(url) != blob or registry().by_url(url) is None:
            register(param)
    _loaded.clear()
    _loaded.update({url: blob for url, (blob, _) in wanted.items()})
    return dict(_loaded)


async def current_definitions(conn: asyncpg.Connection | asyncpg.Pool) -> list[bytes]:
    """The JSON of every current SearchParameter resource that defines a custom parameter."""
    rows = await conn.fetch(
        f"SELECT {resource_sql('c')} AS resource FROM {current_table('SearchParameter')} c WHERE NOT c.deleted"
    )
    return [blob for r in rows if is_custom_definition(orjson.loads(blob := decode(r["resource"])))]


@dataclass(frozen=True)
class ParamsState:
    """What this process loaded: the version, and the URLs whose index is still being built."""

    version: int
    building: frozenset[str]


_loaded: dict[str, bytes] = {}
_state = ParamsState(0, frozenset())
_reload = asyncio.Lock()


def loaded() -> ParamsState:
    return _state


async def _load(conn: asyncpg.Connection, version: int) -> ParamsState:
    global _state
    load_definitions(await current_definitions(conn))
    rows = await conn.fetch("SELECT url FROM search_param_state WHERE status = 'building'")
    _state = ParamsState(version, frozenset(r["url"] for r in rows))
    return _state


async def sync(conn: asyncpg.Connection, version: int | None = None) -> ParamsState:
    """Reload the registry's custom parameters if the stored version moved past the loaded one."""
    if version is None:
        version = await conn.fetchval("SELECT version FROM search_param_version")
    if version == _state.version:
        return _state
    async with _reload:
        if version == _state.version:
            return _state
        return await _load(conn, version)


async def sync_for_write(conn: asyncpg.Connection, exclusive: bool) -> ParamsState:
    """Inside a write's transaction, before its projection: lock the version (shared, or exclusive
    for a write of SearchParameters) and load the parameters it stands for."""
    version = await conn.fetchval("SELECT search_param_version_locked($1)", exclusive)
    return await sync(conn, version)


async def bump_version(conn: asyncpg.Connection | asyncpg.Pool) -> None:
    await conn.execute("UPDATE search_param_version SET version = version + 1")
