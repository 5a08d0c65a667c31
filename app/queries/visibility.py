"""Which resources and versions a token may see on read, vread and history (its scopes' patient
compartment and v2 query restrictions; see :mod:`app.queries.search.restriction`).

- read: the current resource must match the restriction, checked in SQL with the conditions a
  search uses (so a read agrees with a search);
- vread and history entries: the version itself must be in the patient's compartment (checked on
  its content with :func:`app.auth.in_compartment`; a deletion by the version it deleted), and,
  for a scope with a query, the resource must match that query now (the search index holds only
  current versions, so a deleted resource matches no query).

A resource outside what the token may see is a 403 naming the restriction; a history entry
outside it is left out of the page.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import asyncpg
import orjson

from app.auth import Decision, Principal, in_compartment
from app.errors import FhirError
from app.events.model import StoredEvent
from app.events.store import read_version
from app.projections.current_state import current_table
from app.queries.search.conditions import criterion_sql
from app.queries.search.model import AccessGroup, Restriction
from app.queries.search.restriction import restriction_for, restriction_sql
from app.queries.search.sql import Args, all_of


def outside(resource_type: str, resource_id: str, restriction: Restriction, what: str = "") -> FhirError:
    """403 for a resource (or one of its versions, ``what``) the token's scopes do not reach."""
    return FhirError(
        403,
        "forbidden",
        f"{resource_type}/{resource_id}{what} is outside what the token's scopes allow: they allow "
        f"{resource_type} resources only {restriction.why}",
    )


async def require_visible(pool: asyncpg.Pool, decision: Decision, resource_id: str, base: str = "") -> None:
    """403 unless the current resource ``resource_id`` of the decision's type matches its restriction."""
    restriction = restriction_for(decision)
    if restriction is None:
        return
    args = Args()
    id_ref = args.add(resource_id)
    cond = restriction_sql(restriction, args, base)
    sql = f"SELECT EXISTS (SELECT 1 FROM {current_table(decision.resource_type)} r WHERE r.id = {id_ref} AND {cond})"
    if not await pool.fetchval(sql, *args.values):
        raise outside(decision.resource_type, resource_id, restriction)


async def _matching_now(
    pool: asyncpg.Pool, restriction: Restriction, group: AccessGroup, ids: list[str], base: str
) -> set[str]:
    """Those of ``ids`` whose current resource matches the group's scope query."""
    args = Args()
    ids_ref = args.add(ids, "text[]")
    cond = all_of([criterion_sql(restriction.resource_type, c, args, base) for c in group.criteria])
    table = current_table(restriction.resource_type)
    rows = await pool.fetch(
        f"SELECT r.id FROM {table} r WHERE r.id = ANY({ids_ref}) AND NOT r.deleted AND {cond}", *args.values
    )
    return {row["id"] for row in rows}


async def _content(pool: asyncpg.Pool, e: StoredEvent) -> dict | None:
    """What a version holds; for a deletion, the version it deleted."""
    resource = e.resource
    if resource is None and e.version > 1:
        before = await read_version(pool, e.resource_type, e.resource_id, e.version - 1)
        resource = before.resource if before is not None else None
    return orjson.loads(resource) if resource is not None else None


async def _visible_of_type(
    pool: asyncpg.Pool, restriction: Restriction, events: list[StoredEvent], base: str
) -> set[tuple[str, int]]:
    """(id, version) of the events of one type the restriction lets through."""
    ids = sorted({e.resource_id for e in events})
    now = [await _matching_now(pool, restriction, g, ids, base) if g.criteria else None for g in restriction.groups]
    out: set[tuple[str, int]] = set()
    for e in events:
        content = await _content(pool, e) if any(g.patient is not None for g in restriction.groups) else None
        for group, matching in zip(restriction.groups, now, strict=True):
            if matching is not None and e.resource_id not in matching:
                continue
            if group.patient is not None and not (
                group.compartment and content is not None and in_compartment(content, group.patient)
            ):
                continue
            out.add((e.resource_id, e.version))
            break
    return out


async def visible_events(
    pool: asyncpg.Pool, principal: Principal, events: Sequence[StoredEvent], base: str = ""
) -> list[StoredEvent]:
    """The events (history entries) the principal may see, in their order: of types it may read
    (``r``), within its restrictions."""
    if principal.is_open:
        return list(events)
    by_type: dict[str, list[StoredEvent]] = defaultdict(list)
    for e in events:
        by_type[e.resource_type].append(e)
    keep: set[tuple[str, str, int]] = set()
    for kind, of_type in by_type.items():
        decision = principal.allows(kind, "history-type")
        if not decision.allowed:
            continue
        try:
            restriction = restriction_for(decision)
        except FhirError:
            continue  # no scope query of this type can be applied: nothing of it is visible
        if restriction is None:
            keep.update((kind, e.resource_id, e.version) for e in of_type)
        else:
            keep.update((kind, rid, v) for rid, v in await _visible_of_type(pool, restriction, of_type, base))
    return [e for e in events if (e.resource_type, e.resource_id, e.version) in keep]


async def require_version_visible(pool: asyncpg.Pool, decision: Decision, e: StoredEvent, base: str = "") -> None:
    """403 unless the token may see this version (vread, or the latest version for instance history)."""
    restriction = restriction_for(decision)
    if restriction is None:
        return
    if not await _visible_of_type(pool, restriction, [e], base):
        what = f" (version {e.version})" if decision.interaction == "vread" else ""
        raise outside(e.resource_type, e.resource_id, restriction, what)
