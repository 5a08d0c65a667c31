"""ASGI middleware that cancels a request's work when its client goes away.

A watcher reads the server's messages: it hands the request body on to the application, then
waits for the server's ``http.disconnect``; if it comes before the response has been sent, the request's task is
cancelled, and asyncpg cancels the query that task awaits, so an abandoned search stops holding a
database connection and a backend. Nothing is answered (no one is listening); a write cancelled
before its commit is rolled back whole.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("fhirledger.api")
_DISCONNECT: Message = {"type": "http.disconnect"}


class _Watch:
    """The receive/send pair handed to the application, and the watcher behind them.

    The watcher is the only reader of the server's ``receive``: it hands the request's body
    messages to the application one at a time (a slot of one, so the body is not read ahead of
    the application's limits), then waits for the server's ``http.disconnect``, which comes when
    the client goes away or after the response is done. The slot is a plain attribute and two
    futures, not an ``asyncio.Queue`` and ``Event`` (some twenty Python calls per request)."""

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
        self.responded = False
        self.cancelled = False

    async def receive(self) -> Message:
        if self._body_done:
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

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            self.responded = True
        await self._send(message)

    async def watch(self) -> None:
        while True:
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


class CancelOnDisconnect:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        task = asyncio.current_task()
        assert task is not None
        watch = _Watch(receive, send, task)
        watcher = asyncio.create_task(watch.watch())
        try:
            await self.app(scope, watch.receive, watch.send)
        except asyncio.CancelledError:
            if not watch.cancelled:
                raise
            task.uncancel()
            log.info("client went away: %s %s cancelled", scope["method"], scope["path"][:200])
        finally:
            watcher.cancel()
