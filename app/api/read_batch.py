"""Plain reads of one type that start in the same turn of the event loop share one query.

A plain read's cost in a worker is mostly system calls: the request's read, the response's write,
and the query's write and read on the database connection (py-spy ``--native`` under
``bench/crud.py``'s read load: the query's write alone was 18% of a worker's CPU, Python code a
tenth). Under concurrency several reads arrive in one turn of the loop (each connection's data is
handled in the same turn, their tasks start together in the next one). The first of them (the
leader) yields once, so that the others join it, then reads all their resources in one query
(``id = ANY($1)``) and hands each its row: one database round trip, and less PostgreSQL work,
for the lot. A read alone runs the single-row query, one loop turn later than it would alone.

Each read still sees every write that committed before its request arrived: the shared query
starts after all of them. A failure of the shared query (a statement timeout, no free connection)
is every joined read's failure; a leader cancelled (its client gone, the server stopping) lets
each read that joined it read alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeAlias

import asyncpg

from app.projections.current_state import Head, read_head, read_heads

_ALONE = object()
"""What a joined read gets when its leader was cancelled: read alone."""

_Waiters: TypeAlias = dict[str, list[asyncio.Future[object]]]


class ReadBatcher:
    """The reads of one request pool; :meth:`read` is ``read_head`` taken together."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._open: dict[str, _Waiters] = {}  # resource type -> the reads waiting for its leader

    async def read(self, resource_type: str, resource_id: str) -> Head | None:
        joined = self._open.get(resource_type)
        if joined is not None:
            return await self._join(joined, resource_type, resource_id)
        joined = self._open[resource_type] = {}
        try:
            try:
                await asyncio.sleep(0)  # one turn: the reads starting in it join
            finally:
                del self._open[resource_type]
            heads = await self._query(resource_type, resource_id, joined)
        except Exception as exc:
            failure = exc
            _settle(joined, lambda waiter, _: waiter.set_exception(failure))
            raise
        except BaseException:
            _settle(joined, lambda waiter, _: waiter.set_result(_ALONE))
            raise
        _settle(joined, lambda waiter, rid: waiter.set_result(heads.get(rid)))
        return heads.get(resource_id)

    async def _join(self, joined: _Waiters, resource_type: str, resource_id: str) -> Head | None:
        waiter: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        joined.setdefault(resource_id, []).append(waiter)
        head = await waiter
        if head is _ALONE:
            return await read_head(self.pool, resource_type, resource_id)
        return head  # type: ignore[return-value]

    async def _query(self, resource_type: str, resource_id: str, joined: _Waiters) -> dict[str, Head]:
        if not joined:
            head = await read_head(self.pool, resource_type, resource_id)
            return {} if head is None else {resource_id: head}
        return await read_heads(self.pool, resource_type, list({resource_id: None, **joined}))


def _settle(joined: _Waiters, outcome: Callable[[asyncio.Future[object], str], None]) -> None:
    """Call ``outcome(waiter, resource id)`` for each joined read still waiting."""
    for resource_id, waiters in joined.items():
        for waiter in waiters:
            if not waiter.done():
                outcome(waiter, resource_id)
