"""Writing one batch of imported resources: one database transaction, as a write through the API.

1. The resources' write locks are taken (the commands' own per-resource advisory locks, in sorted
   order), so an API write of the same resource waits for the batch or the batch for it.
2. What is already stored is read from the current-state projection. A resource stored with the
   same content (meta.versionId and meta.lastUpdated aside) is skipped: re-running an interrupted
   import carries on where it stopped. A resource stored with other content, or deleted here, is
   reported as a conflict and left as it is: an import never overwrites.
3. The new versions are appended to the log with one COPY (:func:`app.events.bulk.copy_append`)
   and projected with the inline projectors' own ``rows`` and ``write(bulk=True)`` (COPY), so
   imported resources are read, searched and replayed like any other.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field

import asyncpg
import orjson

from app.bulk.prepare import Prepared, Problem
from app.commands import search_parameters
from app.commands.unit_of_work import WriteTransaction, _is_contention
from app.errors import Issue
from app.events.bulk import copy_append
from app.events.model import RequestContext, VersionEvent
from app.projections.current_state import CurrentStateProjector, Head
from app.projections.search_index import SearchIndexProjector, SearchRows, TypeRows, merge

MAX_ATTEMPTS = 8


@dataclass
class BatchOutcome:
    imported: list[VersionEvent] = field(default_factory=list)
    skipped: int = 0
    conflicts: list[Problem] = field(default_factory=list)


def content(raw: bytes | None) -> bytes | None:
    """A stored resource without the meta the server sets (to tell "the same again" from "other")."""
    if raw is None:
        return None
    resource = orjson.loads(raw)
    meta = dict(resource.get("meta") or {})
    meta.pop("versionId", None)
    meta.pop("lastUpdated", None)
    resource["meta"] = meta
    return orjson.dumps(resource)


def _conflict(where: str, e: VersionEvent, head: Head) -> Problem:
    what = f"{e.resource_type}/{e.resource_id}"
    state = "was deleted on this server" if head.deleted else f"is stored with other content (version {head.version})"
    text = f"{what} {state}; an import does not overwrite it (update it through the API)"
    return Problem(where, (Issue("error", "conflict", text, (e.resource_type,)),))


def _first_occurrences(parts: list[Prepared]) -> tuple[list[tuple[int, str, VersionEvent]], list, int]:
    """Each resource's first event in the batch as ``(part, where, event)``; later ones that
    repeat it are skipped (same content) or conflicts."""
    first: dict[tuple[str, str], VersionEvent] = {}
    out: list[tuple[int, str, VersionEvent]] = []
    conflicts: list[Problem] = []
    skipped = 0
    for p, part in enumerate(parts):
        for where, e in zip(part.where, part.events, strict=True):
            key = (e.resource_type, e.resource_id)
            seen = first.get(key)
            if seen is None:
                first[key] = e
                out.append((p, where, e))
            elif content(seen.resource) == content(e.resource):
                skipped += 1
            else:
                text = (
                    f"{e.resource_type}/{e.resource_id} appears earlier in this import with other content; not imported"
                )
                conflicts.append(Problem(where, (Issue("error", "conflict", text, (e.resource_type,)),)))
    return out, conflicts, skipped


def _only(search: SearchRows, keep: dict[str, set[str]]) -> SearchRows:
    """The search rows of the resources ``keep`` (type -> ids) only."""
    out: SearchRows = {}
    for resource_type, tr in search.items():
        ids = keep.get(resource_type, set())
        if not ids:
            continue
        rows = {kind: [r for r in kind_rows if r[0] in ids] for kind, kind_rows in tr.rows.items()}
        out[resource_type] = TypeRows(
            clear=[i for i in tr.clear if i in ids], rows=rows, codes=tr.codes, kinds=tr.kinds
        )
    return out


async def _heads(tx: WriteTransaction, events: list[VersionEvent]) -> dict[tuple[str, str], Head]:
    by_type: dict[str, list[str]] = {}
    for e in events:
        by_type.setdefault(e.resource_type, []).append(e.resource_id)
    out: dict[tuple[str, str], Head] = {}
    for resource_type, ids in by_type.items():
        for rid, head in (await tx.heads(resource_type, ids)).items():
            out[(resource_type, rid)] = head
    return out


async def _write(conn: asyncpg.Connection, context: RequestContext, parts: list[Prepared]) -> BatchOutcome:
    firsts, conflicts, skipped = _first_occurrences(parts)
    tx = WriteTransaction(conn, context)
    await tx.lock_keys([f"{e.resource_type}/{e.resource_id}" for _, _, e in firsts])
    heads = await _heads(tx, [e for _, _, e in firsts])
    new: list[VersionEvent] = []
    keep: list[dict[str, set[str]]] = [{} for _ in parts]
    for p, where, e in firsts:
        head = heads.get((e.resource_type, e.resource_id))
        if head is None:
            new.append(e)
            keep[p].setdefault(e.resource_type, set()).add(e.resource_id)
        elif not head.deleted and content(head.resource) == content(e.resource):
            skipped += 1
        else:
            conflicts.append(_conflict(where, e, head))
    if new:
        definitions = await search_parameters.before_append(conn, new)
        positions = await copy_append(conn, new)
        current = CurrentStateProjector()
        await current.write(conn, current.rows(new, positions), bulk=True)
        search = merge([_only(part.search, kept) for part, kept in zip(parts, keep, strict=True)])
        await SearchIndexProjector().write(conn, search, bulk=True)
        await search_parameters.after_projection(conn, definitions)
    return BatchOutcome(new, skipped, conflicts)


async def write_batch(pool: asyncpg.Pool, context: RequestContext, parts: list[Prepared]) -> BatchOutcome:
    """Write the events of ``parts`` in one transaction (retried when it meets concurrent writes)."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        async with pool.acquire() as conn:
            try:
                async with conn.transaction():
                    return await _write(conn, context, parts)
            except asyncpg.PostgresError as exc:
                if not _is_contention(exc) or attempt == MAX_ATTEMPTS:
                    raise
        await asyncio.sleep(random.uniform(0, 0.05 * attempt))
    raise AssertionError("unreachable")
