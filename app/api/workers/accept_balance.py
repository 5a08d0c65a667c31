"""The workers of ``fhirledger serve --workers N`` share a client's connections evenly, however the
client opens them: a worker holding more open connections than another stops accepting until they
are even again.

All workers accept on one listening socket, and the kernel gives a new connection to whichever
accepts first. On a busy machine that is the worker already running (a sleeping one must first be
scheduled), so the worker that got a client's first connection got its later ones too: an ingest
client whose four workers each opened a connection when it first needed one (after reading its
first file) ran on one server worker of two, the other idle (bench/scale.py build: 49 s of CPU
against 5, 1,241 resources/s; bursts of connections opened at once are shared by
:func:`app.api.workers.bursts.share_burst`, these were not).

So each worker publishes how many connections it holds (:class:`OpenCounts`: eight bytes in a
shared file per worker, in the directory of the start barrier) and, when it holds more than the
worker holding fewest, closes its listening socket (:class:`AcceptBalance`): the others accept the
next connections. It listens again (a duplicate of the socket kept aside) as soon as it no longer
holds more, or when a connection has waited in the listening socket's queue, taken by no one, for
:data:`MAX_PAUSE` seconds (:func:`waiting`: the queue's length, which Linux tells): a peer that is
busy, hung or dead delays a connection by that much at most. Elsewhere than on Linux the pause
ends after :data:`MAX_PAUSE` whatever happens. Pauses are limited to :data:`PAUSES_PER_SECOND`, so
that clients opening a connection per request are not slowed by them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mmap
import os
import socket
import struct
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

SUFFIX = ".open"
MAX_PAUSE = 0.02
CHECK_EVERY = 0.002
PAUSES_PER_SECOND = 50
RETRY = 1.0  # seconds before listening is tried again after it failed
PEERS_TTL = 1.0  # how long the list of peers is kept before the directory is read again

log = logging.getLogger("uvicorn.error")


def waiting(sock: socket.socket) -> int | None:
    """How many connections wait in the queue of the listening socket ``sock`` (None: unknown)."""
    if not sys.platform.startswith("linux"):
        return None
    try:  # struct tcp_info: for a listening socket, tcpi_unacked is the length of its accept queue
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    except OSError:
        return None
    return struct.unpack_from("=8xI", info, 16)[0]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        pass
    return True


class OpenCounts:
    """This worker's count of open connections, published in ``directory``, and its peers'."""

    def __init__(self, directory: Path, pid: int | None = None, peers: int = 0) -> None:
        """``peers``: how many other workers there should be; until that many are found, the
        directory is read at each look (they publish as they start listening, this one perhaps
        first), then once per :data:`PEERS_TTL` seconds."""
        self.directory = directory
        self.pid = os.getpid() if pid is None else pid
        self.expected = peers
        self.path = directory / f"{self.pid}{SUFFIX}"
        self._mine = self._map(self.path, create=True)
        self._peers: dict[int, mmap.mmap] = {}
        self._listed = -PEERS_TTL

    @staticmethod
    def _map(path: Path, create: bool = False) -> mmap.mmap:
        fd = os.open(path, os.O_RDWR | (os.O_CREAT if create else 0), 0o600)
        try:
            if create:
                os.ftruncate(fd, 8)
            return mmap.mmap(fd, 8)
        finally:
            os.close(fd)

    def publish(self, open_now: int) -> None:
        self._mine[:8] = open_now.to_bytes(8, "little")

    def fewest_elsewhere(self) -> int | None:
        """The fewest connections a live peer holds (None without peers)."""
        now = time.monotonic()
        if now - self._listed >= PEERS_TTL or len(self._peers) < self.expected:
            self._listed = now
            self._refresh()
        if not self._peers:
            return None
        return min(int.from_bytes(m[:8], "little") for m in self._peers.values())

    def _refresh(self) -> None:
        live: dict[int, mmap.mmap] = {}
        for name in os.listdir(self.directory):
            if not name.endswith(SUFFIX) or not name[: -len(SUFFIX)].isdigit():
                continue
            pid = int(name[: -len(SUFFIX)])
            if pid == self.pid or not _alive(pid):
                continue
            known = self._peers.pop(pid, None)
            if known is None:
                with contextlib.suppress(OSError, ValueError):  # gone meanwhile, or not yet sized
                    known = self._map(self.directory / name)
            if known is not None:
                live[pid] = known
        for gone in self._peers.values():
            gone.close()
        self._peers = live

    def close(self) -> None:
        forget(self.directory, self.pid)
        for m in (self._mine, *self._peers.values()):
            m.close()
        self._peers = {}


def forget(directory: Path, pid: int) -> None:
    """Remove the count of the worker ``pid`` (ended, or replaced after its death)."""
    with contextlib.suppress(OSError):
        (directory / f"{pid}{SUFFIX}").unlink()


class AcceptBalance:
    """Pauses and resumes this worker's listening (its uvicorn server's ``servers``, re-created
    from ``spares``, duplicates of the listening sockets) by its connections against its peers'."""

    def __init__(
        self,
        counts: OpenCounts,
        servers: Callable[[], list[Any]],
        listen: Callable[[socket.socket], Any],
        spares: Sequence[socket.socket],
    ) -> None:
        self.counts = counts
        self._servers = servers
        self._listen = listen
        self._spares = list(spares)
        self.open = 0
        self.paused_at: float | None = None
        self._queued_since: float | None = None  # since when connections wait unaccepted (paused)
        self.pauses = 0
        self._window = 0.0
        self._in_window = 0
        self.stopped = False

    def opened(self, open_now: int) -> bool:
        """A connection was accepted (``open_now`` held with it); whether listening paused."""
        self.open = open_now
        self.counts.publish(open_now)
        if self.paused_at is not None or self.stopped:
            return False
        fewest = self.counts.fewest_elsewhere()
        if fewest is None or open_now <= fewest or not self._may_pause():
            return False
        self._pause()
        return True

    def closed(self, open_now: int) -> None:
        self.open = open_now
        self.counts.publish(open_now)

    def _may_pause(self) -> bool:
        now = time.monotonic()
        if now - self._window >= 1.0:
            self._window, self._in_window = now, 0
        if self._in_window >= PAUSES_PER_SECOND:
            return False
        self._in_window += 1
        return True

    def _pause(self) -> None:
        for server in self._servers():
            server.close()
        self.paused_at = time.monotonic()
        self._queued_since = None
        self.pauses += 1
        asyncio.get_running_loop().call_later(CHECK_EVERY, self._check)

    def _check(self) -> None:
        if self.stopped or self.paused_at is None:
            return
        fewest = self.counts.fewest_elsewhere()
        if fewest is not None and self.open > fewest and not self._left_waiting():
            asyncio.get_running_loop().call_later(CHECK_EVERY, self._check)
            return
        task = asyncio.get_running_loop().create_task(self._resume())
        task.add_done_callback(_log_failure)

    def _left_waiting(self) -> bool:
        """Whether a connection has waited :data:`MAX_PAUSE` seconds with no worker taking it."""
        now = time.monotonic()
        queued = waiting(self._spares[0])
        if queued is None:
            return now - (self.paused_at or now) >= MAX_PAUSE
        if not queued:
            self._queued_since = None
            return False
        if self._queued_since is None:
            self._queued_since = now
        return now - self._queued_since >= MAX_PAUSE

    async def _resume(self) -> None:
        servers = self._servers()
        if self.stopped:
            return
        try:
            servers[:] = [await self._listen(spare.dup()) for spare in self._spares]
        except OSError as exc:  # out of file descriptors, say: the others serve meanwhile
            log.warning("worker process [%s]: cannot listen again (%s); retrying in %s s", os.getpid(), exc, RETRY)
            asyncio.get_running_loop().call_later(RETRY, self._check)
            return
        self.paused_at = None
        if self.stopped:  # the server began shutting down meanwhile: its loop closed the old list
            for server in servers:
                server.close()

    def stop(self) -> None:
        """The server is shutting down: never listen again."""
        self.stopped = True
        for spare in self._spares:
            spare.close()
        self.counts.close()


def _log_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("worker process [%s]: could not listen again", os.getpid(), exc_info=task.exception())


_current: AcceptBalance | None = None


def install(balance: AcceptBalance | None) -> None:
    """Make ``balance`` the one this process's connections report to (None: none)."""
    global _current
    _current = balance


def opened(open_now: int) -> bool:
    """Called as a connection is accepted; whether this worker paused its listening."""
    return _current.opened(open_now) if _current is not None else False


def closed(open_now: int) -> None:
    if _current is not None:
        _current.closed(open_now)
