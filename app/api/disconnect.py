"""ASGI middleware that cancels a request's work when its client goes away.

Once the request body has been read (at once for a request without one), a watcher waits for the
server's ``http.disconnect``; if it comes before the response has been sent, the request's task is
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


def _bodyless(scope: Scope) -> bool:
    headers = dict(scope["headers"])
    return b"transfer-encoding" not in headers and headers.get(b"content-length", b"0").strip() == b"0"


def _last_of_body(message: Message) -> bool:
    return message["type"] != "http.request" or not message.get("more_body", False)


class _Watch:
    """The receive/send pair handed to the application, and the watcher behind them."""

    def __init__(self, receive: Receive, send: Send, task: asyncio.Task, bodyless: bool) -> None:
        self._receive = receive
        self._send = send
        self._task = task
        self._bodyless = bodyless
        self._early: asyncio.Queue[Message] = asyncio.Queue()  # a bodyless request's (empty) body messages
        self._handed_early = False
        self._body_read = asyncio.Event()
        self._gone = asyncio.Event()
        self.responded = False
        self.cancelled = False

    async def receive(self) -> Message:
        if self._bodyless and not self._handed_early:
            message = await self._early.get()
            self._handed_early = _last_of_body(message)
            return message
        if self._bodyless or self._body_read.is_set():
            await self._gone.wait()
            return _DISCONNECT
        message = await self._receive()
        if _last_of_body(message):
            self._body_read.set()
        return message

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            self.responded = True
        await self._send(message)

    async def watch(self) -> None:
        if self._bodyless:
            while True:  # an empty body may still come as several empty messages
                message = await self._receive()
                self._early.put_nowait(message)
                if _last_of_body(message):
                    break
            if message["type"] == "http.disconnect":
                self._went_away()
                return
        else:
            await self._body_read.wait()
        message = await self._receive()  # returns when the client goes away or the response is done
        if message["type"] == "http.disconnect":
            self._went_away()

    def _went_away(self) -> None:
        self._gone.set()
        if not self.responded:
            self.cancelled = True
            self._task.cancel()


class CancelOnDisconnect:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        task = asyncio.current_task()
        assert task is not None
        watch = _Watch(receive, send, task, _bodyless(scope))
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
