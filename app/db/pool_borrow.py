"""The request pool's short ways to take and hand back a connection, for the work that needs
nothing of the server to reset (:mod:`app.db.pool`, whose pool resets nothing on release).

asyncpg's ``Pool.fetchrow`` runs ``async with pool.acquire()``: an acquire context, a queue get,
a connection proxy, a future, and on release a shielded task (two more loop turns) under a timeout
context, plus the idle timer cancelled and re-armed. For a plain read's one query that was about
half of asyncpg's share of a worker's CPU, and twice the cost of the query itself on a connection
held by the caller (measured in-process: ~30-45 us against ~16 us per query).

:func:`borrow` takes a free, connected, current holder off the pool's queue without a proxy (the
connection is used only by the caller's one statement), marks it in use (so that ``Pool.close``
waits for it) and stops its idle timer; :func:`hand_back` puts it back when its session needs
nothing (open, outside a transaction, no cancellation under way, not due to be closed) and says
False otherwise, when the caller hands it to asyncpg's own release (:func:`release_with_asyncpg`).

These use asyncpg's private attributes (``_queue``, ``_in_use``, ``_con``, ...), checked against
asyncpg 0.32 only: with any other release installed (:data:`SHORT_WAYS` False) every function here
declines (``borrow`` gives None, ``release_at_once`` False) and the pool takes asyncpg's own public
ways, slower but correct. ``tests/db/test_pool_release.py`` covers what a caller sees, both ways.
"""

from __future__ import annotations

import asyncpg
from asyncpg.pool import PoolConnectionHolder, PoolConnectionProxy

VERIFIED_RELEASES = ("0.32.",)
"""The asyncpg releases whose private attributes these functions were read against."""

SHORT_WAYS = asyncpg.__version__.startswith(VERIFIED_RELEASES)
"""Whether the short ways are taken (the installed asyncpg is a verified release)."""


def borrow(pool: asyncpg.Pool) -> PoolConnectionHolder | None:
    """A free holder with a live connection of the current generation, taken at once; or None."""
    if not SHORT_WAYS or not pool._initialized or pool._closing or pool._closed or pool._setup is not None:
        return None
    free = pool._queue._queue  # type: ignore[union-attr]  # the last one put back is handed out first
    if not free:
        return None
    holder = free[-1]
    con = holder._con
    if con is None or con.is_closed() or holder._generation != pool._generation or holder._in_use is not None:
        return None
    pool._queue.get_nowait()  # type: ignore[union-attr]  # that same holder: asyncpg's queue prefers live ones
    holder._maybe_cancel_inactive_callback()
    holder._timeout = None
    holder._in_use = pool._loop.create_future()
    return holder


def connection_of(holder: PoolConnectionHolder) -> asyncpg.Connection:
    """The connection a borrowed holder holds (used by the borrower's work only)."""
    return holder._con  # type: ignore[return-value]


def hand_back(holder: PoolConnectionHolder) -> bool:
    """Put a borrowed holder back as it is when its connection needs nothing; False otherwise."""
    if holder._in_use is None:  # its connection closed meanwhile: asyncpg's cleanup put it back
        return True
    if not needs_nothing(holder._pool, holder, holder._con):
        return False
    holder._con._listeners.clear()  # what Connection._reset does outside a transaction
    holder._con._log_listeners.clear()
    holder._release()  # the future resolved, back on the queue
    holder._setup_inactive_callback()
    return True


async def release_with_asyncpg(pool: asyncpg.Pool, holder: PoolConnectionHolder) -> None:
    """asyncpg's release of a borrowed holder whose connection needs work (a rollback, a
    cancellation to wait for, a close): through a proxy, as if it had been acquired."""
    proxy = PoolConnectionProxy(holder, holder._con)
    holder._proxy = proxy
    await asyncpg.Pool.release(pool, proxy)


def needs_nothing(pool: asyncpg.Pool, holder: PoolConnectionHolder, con: asyncpg.Connection | None) -> bool:
    """Whether a connection in use can go back to the queue with no work with the server."""
    if con is None or holder._pool is not pool or holder._in_use is None:
        return False
    protocol = con._protocol
    return not (
        con.is_closed()
        or protocol._is_cancelling()
        or protocol.is_in_transaction()
        or con._top_xact is not None
        or protocol.queries_count >= holder._max_queries
        or holder._generation != pool._generation
    )


def release_at_once(proxy: PoolConnectionProxy) -> bool:
    """``Pool.release`` of an acquired connection that needs nothing, without asyncpg's shielded
    task and timeout context; False (nothing done) when it needs asyncpg's release."""
    if not SHORT_WAYS:
        return False
    holder = getattr(proxy, "_holder", None)
    con = getattr(proxy, "_con", None)
    if holder is None or not needs_nothing(holder._pool, holder, con):
        return False
    con._on_release()  # warns of listeners left behind
    con._listeners.clear()
    con._log_listeners.clear()
    holder._timeout = None
    holder._release()  # back on the queue; the proxy detached
    holder._setup_inactive_callback()
    return True
