"""A response's head and the first part of its body go to the client in one send.

uvicorn writes the status line and headers as soon as the application starts its response, then
the body in a second write. With ``TCP_NODELAY`` (set by uvloop) each write is its own system call
and its own TCP segment, and on loopback each send delivers the data and wakes the reader, whose
client then reads twice. For a plain read (about 1 KB) the head's write was the largest single
cost in a worker: 15% of its CPU (py-spy, ``bench/crud.py``). :class:`HeldHead` stands in for the
connection's transport in one request/response cycle: it holds the head and writes it with the
body's first part (``writelines``: one ``writev``, the body not copied).

A head whose body never comes (a HEAD request, a 304, an application that fails after starting
its response) is written when the response completes or the connection closes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol


class _Cycle(Protocol):
    """uvicorn's ``RequestResponseCycle``, as far as it is used here."""

    transport: asyncio.Transport
    response_started: bool
    on_response: Callable[[], None]


def hold_head(cycle: _Cycle) -> None:
    """Make ``cycle`` (new, before its application runs) send its response head with the body."""
    held = HeldHead(cycle.transport, cycle)
    completed = cycle.on_response

    def on_response() -> None:  # uvicorn calls it once the response is complete: a HEAD's head goes
        held.flush()
        completed()

    cycle.transport = held  # type: ignore[assignment]
    cycle.on_response = on_response


class HeldHead:
    """The transport of one cycle; writes before the response starts (``100 Continue``) pass."""

    __slots__ = ("_transport", "_cycle", "_head", "_holding")

    def __init__(self, transport: asyncio.Transport, cycle: _Cycle) -> None:
        self._transport = transport
        self._cycle = cycle
        self._head: bytes | None = None
        self._holding = True  # until the head has been held and written

    def write(self, data: bytes) -> None:
        if self._head is not None:
            head, self._head = self._head, None
            self._transport.writelines((head, data))
        elif self._holding and self._cycle.response_started:
            self._head = data
            self._holding = False
        else:
            self._transport.write(data)

    def flush(self) -> None:
        """Write a held head (its response completed without a body write)."""
        if self._head is not None:
            head, self._head = self._head, None
            self._transport.write(head)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:  # is_closing, get_extra_info, pause_reading ...
        return getattr(self._transport, name)
