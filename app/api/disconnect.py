"""ASGI middleware that cancels a request's work when its client goes away.

A watcher reads the server's messages: it hands the request body on to the application, then
waits for the server's ``http.disconnect``; if it comes before the response has been sent, the request's task is
cancelled, and asyncpg cancels the query that task awaits, so an abandoned search stops holding a
database connection and a backend. Nothing is answered (no one is listening); a write cancelled
before its commit is rolled back whole.

The watcher is a task of its own, started only once the request has run for :data:`GRACE`: most
requests (a read, a create, an update) are answered sooner, and a task per request (its creation,
its steps, its cancellation) was 5% of a create's CPU; the grace periods of a loop's requests are
timed by one timer (:class:`_GraceClock`), not one ``call_later`` each. Until then the application reads the
server's messages itself, through the same ``receive`` (a ``http.disconnect`` that comes while it
reads its body cancels it the same way); a client that goes away from a request answered within
:data:`GRACE` is not noticed, as one that goes away just after its answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("fhirledger.api")
_DISCONNECT: Message = {"type": "http.disconnect"}
GRACE = 0.25
"""Seconds a request runs before its watcher starts (a create at concurrency 16 on a loaded 2-core
machine answers in tens of milliseconds; an abandoned long search is still cancelled within this)."""


class _Watch:
    """The receive/send pair handed to the application, and the watcher behind them.

    Once started, the watcher is the only reader of the server's ``receive``: it hands the
    request's body messages to the application one at a time (a slot of one, so the body is not
    read ahead of the application's limits), then waits for the server's ``http.disconnect``, which
    comes when the client goes away or after the response is done. The slot is a plain attribute
    and two futures, not an ``asyncio.Queue`` and ``Event`` (some twenty Python calls per request).
    Before it starts, the application's ``receive`` reads the server's directly; the watcher is
    not started while such a read is under way (two readers at once), but as soon as it ends."""

    def __init__(self, receive: Receive, send: Send, task: asyncio.Task) -> None:
        self._receive = receive
        self._send = send
        self._task = task
        self._slot: Message | None = None  # a message the application has not taken yet
        self._reader: asyncio.Future | None = None  # the application waiting for one
        self._taken: asyncio.Future | None = None  # the watcher waiting for the slot to empty
        self._body_done = False
        self._gone: asyncio.Event | None = None
        self._went = False
        self._watcher: asyncio.Task | None = None
        self._reading = False  # the application reads the server's receive itself, now
        self._due = False  # the grace period is over: watch once that read ends
        self.responded = False
        self.cancelled = False
        self.finished = False  # the request is over: its grace period no longer matters

    async def receive(self) -> Message:
        if self._watcher is None and not self._body_done:
            return await self._read_directly()
        if self._body_done:
            self.start()
            if not self._went:
                self._gone = self._gone or asyncio.Event()
                await self._gone.wait()
            return _DISCONNECT
        while self._slot is None:
            self._reader = self._task.get_loop().create_future()
            await self._reader
        message, self._slot = self._slot, None
        _wake(self._taken)
        if message["type"] != "http.request" or not message.get("more_body", False):
            self._body_done = True
        return message

    async def _read_directly(self) -> Message:
        """The server's next message for the application, no watcher running."""
        self._reading = True
        try:
            message = await self._receive()
        finally:
            self._reading = False
        if message["type"] != "http.request" or not message.get("more_body", False):
            self._body_done = True
        if message["type"] == "http.disconnect":
            self._went = True
            if not self.responded:  # as the watcher's cancellation would: nothing is answered
                self.cancelled = True
                raise asyncio.CancelledError
        elif self._due:
            self.start()
        return message

    def due(self) -> None:
        """The grace period is over: start the watcher (once no direct read is under way)."""
        self._due = True
        if not self._reading:
            self.start()

    def start(self) -> None:
        if self._watcher is None and not self._went:
            self._watcher = self._task.get_loop().create_task(self.watch())

    def stop(self) -> None:
        self.finished = True
        if self._watcher is not None:
            self._watcher.cancel()

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            self.responded = True
        await self._send(message)

    async def watch(self) -> None:
        while not self._body_done:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                if self._slot is None:
                    self._hand(message)  # an application waiting for the body learns it too
                self._went_away()
                return
            while self._slot is not None:  # the previous message is not taken yet
                self._taken = self._task.get_loop().create_future()
                await self._taken
            self._hand(message)
            if not message.get("more_body", False):
                break
        message = await self._receive()  # returns when the client goes away or the response is done
        if message["type"] == "http.disconnect":
            self._went_away()

    def _hand(self, message: Message) -> None:
        self._slot = message
        _wake(self._reader)

    def _went_away(self) -> None:
        self._went = True
        if self._gone is not None:
            self._gone.set()
        if not self.responded:
            self.cancelled = True
            self._task.cancel()


def _wake(waiter: asyncio.Future | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


class _GraceClock:
    """The watches of one event loop whose grace period runs, in the order they began (each waits
    the same :data:`GRACE`), behind one timer armed for the first of them: uvloop's ``call_later``
    and ``cancel`` of a timer per request were 3 to 5 us of each request's CPU. A watch whose
    request is over stays in line until its time comes and is then passed over."""

    __slots__ = ("loop", "_waiting", "_timer")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._waiting: deque[tuple[float, _Watch]] = deque()
        self._timer: asyncio.TimerHandle | None = None

    def add(self, watch: _Watch) -> None:
        self._waiting.append((self.loop.time() + GRACE, watch))
        if self._timer is None:
            self._timer = self.loop.call_at(self._waiting[0][0], self._ring)

    def _ring(self) -> None:
        self._timer = None
        waiting = self._waiting
        now = self.loop.time() + 0.001  # a loop's timers run up to its clock's resolution early
        try:
            while waiting and waiting[0][0] <= now:
                watch = waiting.popleft()[1]
                if not watch.finished:
                    watch.due()
        finally:
            if waiting:
                self._timer = self.loop.call_at(waiting[0][0], self._ring)


class CancelOnDisconnect:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._clock: _GraceClock | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        task = asyncio.current_task()
        assert task is not None
        watch = _Watch(receive, send, task)
        loop = task.get_loop()
        clock = self._clock
        if clock is None or clock.loop is not loop:
            clock = self._clock = _GraceClock(loop)
        clock.add(watch)
        try:
            await self.app(scope, watch.receive, watch.send)
        except asyncio.CancelledError:
            if not watch.cancelled:
                raise
            task.uncancel()
            log.info("client went away: %s %s cancelled", scope["method"], scope["path"][:200])
        finally:
            watch.stop()
