"""Projection state: per projection (current state and search index, per resource type) the
version of its schema and extractor that built it, its status and its checkpoint.

The expected version is a fingerprint of the projector's code version and, for the search index,
of the core search parameters of the type (URL, type, expression), the side tables' layout and
the text-search configuration (``FHIRLEDGER_TEXT_SEARCH_CONFIG``: its stemming is stored). At
start the server compares it with what the tables were built by: a difference marks the
projection ``stale``; a search of a stale type answers 503 until ``fhirledger projections rebuild``
has run, it is never silently served. (Custom SearchParameters are tracked per parameter, not
here: adding one does not make the whole type stale.)"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache

import asyncpg
import orjson

from app.fhirspec.resource_types import resource_types
from app.fhirspec.search_parameters import params_for
from app.projections.current_state import CurrentStateProjector
from app.projections.search_index import COLUMNS, INDEXES, SearchIndexProjector
from app.search_types import text as text_search
from app.search_types.text_config import check_text_config

KINDS = ("current_state", "search_index")

PROJECTION_STATE_DDL = """
CREATE TABLE IF NOT EXISTS projection_state (
    name          text PRIMARY KEY,
    kind          text NOT NULL,
    resource_type text NOT NULL,
    version       text NOT NULL,
    status        text NOT NULL CHECK (status IN ('ready', 'stale', 'rebuilding')),
    checkpoint    bigint NOT NULL DEFAULT 0,
    rebuild       jsonb,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
"""


def projection_name(kind: str, resource_type: str) -> str:
    return f"{kind}:{resource_type}"


@cache
def expected_version(kind: str, resource_type: str) -> str:
    if kind == "current_state":
        return CurrentStateProjector.version
    params = sorted(
        (p.url, p.type, p.expression_for(resource_type) or "")
        for p in params_for(resource_type).values()
        if not p.custom
    )
    # "rows-25": narrowed reference parameters keep no rows of their own; "rows-26": nor do those whose
    # expression is another's (Patient phonetic is name's; app/search_types/param_aliases.py); "rows-27": the
    # _content documents leave UUIDs out (app/search_types/text_document.py)
    layout = orjson.dumps([COLUMNS, INDEXES, params, text_search.layout(), "rows-27"], option=orjson.OPT_SORT_KEYS)
    return f"{SearchIndexProjector.version}-{hashlib.sha256(layout).hexdigest()[:12]}"


@dataclass(frozen=True)
class ProjectionStatus:
    name: str
    kind: str
    resource_type: str
    status: str
    version: str
    expected: str
    checkpoint: int
    rebuild: dict | None


async def check_projections(conn: asyncpg.Connection) -> set[str]:
    """Record missing projections as built by the current code (their tables were just created
    by a migration, or predate state tracking), mark those built by other code stale; return the
    names of the stale ones. An unknown text-search configuration raises (the server cannot start)."""
    await check_text_config(conn)
    rows = {r["name"]: r for r in await conn.fetch("SELECT name, version, status FROM projection_state")}
    missing, stale = [], set()
    for t in resource_types():
        for kind in KINDS:
            name = projection_name(kind, t)
            want = expected_version(kind, t)
            row = rows.get(name)
            if row is None:
                missing.append((name, kind, t, want))
            elif row["version"] != want or row["status"] != "ready":
                stale.add(name)
    if missing:
        await conn.executemany(
            "INSERT INTO projection_state (name, kind, resource_type, version, status) VALUES ($1, $2, $3, $4, 'ready')"
            " ON CONFLICT (name) DO NOTHING",
            missing,
        )
    if stale:
        await conn.execute(
            "UPDATE projection_state SET status = 'stale', updated_at = now()"
            " WHERE name = ANY($1) AND status = 'ready'",
            sorted(stale),
        )
    return stale


def current_versions(resource_type: str) -> dict[str, str]:
    """The type's projections by name, each with the version the current code builds."""
    return {projection_name(kind, resource_type): expected_version(kind, resource_type) for kind in KINDS}


async def record_rebuilt(conn: asyncpg.Connection, resource_type: str, checkpoint: int) -> None:
    """Record the type's projections as rebuilt by the current code: ready at their versions, at
    ``checkpoint``, no rebuild under way."""
    await conn.executemany(
        "UPDATE projection_state SET version = $2, status = 'ready', checkpoint = $3, rebuild = NULL,"
        " updated_at = now() WHERE name = $1",
        [(name, version, checkpoint) for name, version in current_versions(resource_type).items()],
    )


async def statuses(conn: asyncpg.Connection | asyncpg.Pool) -> list[ProjectionStatus]:
    rows = await conn.fetch(
        "SELECT name, kind, resource_type, status, version, checkpoint, rebuild FROM projection_state ORDER BY name"
    )
    return [
        ProjectionStatus(
            r["name"],
            r["kind"],
            r["resource_type"],
            r["status"],
            r["version"],
            expected_version(r["kind"], r["resource_type"]),
            r["checkpoint"],
            orjson.loads(r["rebuild"]) if r["rebuild"] else None,
        )
        for r in rows
    ]
