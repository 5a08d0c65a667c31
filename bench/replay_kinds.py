"""Where PostgreSQL's share of a replay goes, by side-table kind: the backend CPU of each kind's bulk
load (its COPY or INSERT of a batch's rows, :meth:`SearchIndexProjector.load`; the current-state
rows as ``current``) and of each kind's index builds (:data:`bench.replay.SLOWEST`, recorded by
:func:`bench.replay.time_statements`), summed over the resource types.

Session 21, the real million: ``text 14+8, token 3+6, reference 3+4, date 1+4, sort 1+3, quantity
1+3, current 1+2, composite 1+2`` us per event. The full-text rows cost more than all the others'
loads together: their documents are parsed by PostgreSQL (twice: the configured language and
``simple``), an ExplanationOfBenefit's about 64 us, each distinct in every resource (it holds the
claim's identifier), and the rows go in by INSERT (the documents are computed on the way) where
the other kinds COPY."""

from __future__ import annotations

import re
from collections import Counter

import asyncpg

from app.projections import current_state
from app.projections.search_index import EncodedRows, SearchIndexProjector
from bench.replay import SLOWEST, backend_cpu

LOADS: Counter[str] = Counter()
"""Backend CPU seconds of the bulk loads, by kind."""

_SIDE_TABLE = re.compile(r"\b(?:sp_[a-z0-9_]+_(?P<kind>[a-z]+)|(?P<current>cur)_[a-z0-9_]+)__s(?![a-z0-9])")


def time_loads() -> None:
    """Record the backend CPU of each kind's bulk load (in :data:`LOADS`)."""
    load_search, load_current = SearchIndexProjector.load, current_state.CurrentStateProjector.load

    async def search(
        self: SearchIndexProjector, conn: asyncpg.Connection, of_type: str, rows: EncodedRows, *rest: object
    ) -> None:
        pid = conn.get_server_pid()
        for kind, data in rows.items():
            before = backend_cpu(pid)
            await load_search(self, conn, of_type, {kind: data}, *rest)  # type: ignore[arg-type]
            LOADS[kind] += backend_cpu(pid) - before

    async def current(self: current_state.CurrentStateProjector, conn: asyncpg.Connection, *args: object) -> None:
        before = backend_cpu(conn.get_server_pid())
        await load_current(self, conn, *args)  # type: ignore[arg-type]
        LOADS["current"] += backend_cpu(conn.get_server_pid()) - before

    SearchIndexProjector.load = search  # type: ignore[method-assign]
    current_state.CurrentStateProjector.load = current  # type: ignore[method-assign]


def builds_by_kind() -> Counter[str]:
    """Backend CPU seconds of the index builds (and constraints) of the shadow tables, by kind."""
    out: Counter[str] = Counter()
    for cpu, _, sql in SLOWEST:
        if not sql.startswith(("CREATE", "ALTER")):
            continue
        match = _SIDE_TABLE.search(sql)
        if match:
            out["current" if match["current"] else match["kind"]] += cpu
    return out


def kinds_text(events: int) -> str:
    """Backend CPU per event by kind: load + index builds, the costliest kind first."""
    builds = builds_by_kind()
    kinds = sorted(set(LOADS) | set(builds), key=lambda k: -(LOADS[k] + builds[k]))
    per = 1e6 / max(events, 1)
    parts = [f"{k} {LOADS[k] * per:.0f}+{builds[k] * per:.0f}" for k in kinds if (LOADS[k] + builds[k]) * per >= 0.5]
    return "backend CPU per event by kind, load + index builds (us): " + ", ".join(parts)
