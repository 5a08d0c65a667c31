"""The application class, whose plain reads, creates and updates skip FastAPI's outer layers.

A request passes FastAPI's and Starlette's own layers before this server's middleware: the
telemetry check (``NativeTelemetry.enabled``, a look-up of three OpenTelemetry providers on every
request), the server-error handler, exception telemetry, the body limit. For a plain read
(``GET [base]/[type]/[id]``, answered by :mod:`app.api.fast_read` from one query) they were a
tenth of a worker's CPU (py-spy, ``bench/crud.py``). :class:`FhirApp` hands a ``GET`` or ``HEAD``
without query string of a ``[base]/[type]/[id]`` path straight to this server's middleware chain
(limits, guards, authentication, the fast read, then the rest of the application as usual), inside
a server-error handler of its own that answers an unexpected exception as the application does
(the 500 OperationOutcome). What such a request does not get: FastAPI's OpenTelemetry spans and
metrics, and its body limit (a read has no body to limit). The same way in is taken by the two
writes that :mod:`app.api.fast_write` answers, ``POST [base]/[type]`` and ``PUT [base]/[type]/[id]``
(about 30 us of a create's CPU): their body is limited by the route (``read_body``, 413), and FastAPI's
limit is not set in this application. A write's chain leaves out the two layers that only ever pass
it on (the fast read answers GET and HEAD; the custom-parameter check passes a create, which loads
the parameters in its own statement, and every PUT): some 15,000 instructions of a create.
Every other request is unchanged.
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI
from starlette.datastructures import State
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.fast_read import FastRead
from app.api.limits import RequestLimits
from app.api.staleness import CustomParamsCheck
from app.fhirspec.resource_types import is_resource_type

_READS = ("GET", "HEAD")
_WRITES = {"POST": 0, "PUT": 1}  # method -> the slashes after the base in its fast path


class AppState(State):
    """``app.state`` whose values are also plain instance attributes. Starlette's ``State`` keeps
    them in a dict behind ``__getattr__``, so each read (``request.app.state.settings``) first fails
    the ordinary look-up, raising and clearing an ``AttributeError``: some 2,000 instructions, six
    times per create. Set and deleted as with ``State`` (its dict stays the same)."""

    def __setattr__(self, key: Any, value: Any) -> None:
        super().__setattr__(key, value)
        self.__dict__[key] = value

    def __delattr__(self, key: Any) -> None:
        super().__delattr__(key)
        self.__dict__.pop(key, None)


class FhirApp(FastAPI):
    """``FastAPI`` with the short way in for plain reads; ``read_base`` is the FHIR base path."""

    read_base: str = ""
    _read_front: ASGIApp | None = None
    _write_front: ASGIApp | None = None

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.state = AppState()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        way = self._short_way(scope) if scope["type"] == "http" else None
        if way is not None:
            scope["app"] = self  # as Starlette does
            if self._read_front is None:
                self._build_fronts()
            await (self._read_front if way == "read" else self._write_front)(scope, receive, send)  # type: ignore[misc]
            return
        await super().__call__(scope, receive, send)

    def _short_way(self, scope: Scope) -> str | None:
        """``read`` for a plain read, ``write`` for a create or update of a resource type's path
        (``app.api.fast_write``), else None."""
        method: str = scope["method"]
        path: str = scope["path"]
        prefix = self.read_base.rstrip("/") + "/"
        if not path.startswith(prefix):
            return None
        if method in _READS:
            return "read" if not scope.get("query_string") and path.count("/", len(prefix)) == 1 else None
        slashes = _WRITES.get(method)
        if slashes is None or path.count("/", len(prefix)) != slashes:
            return None
        return "write" if is_resource_type(path[len(prefix) :].split("/", 1)[0]) else None

    def _build_fronts(self) -> None:
        """This server's middleware chain (from :class:`RequestLimits` in) behind a server-error
        handler with the application's handler for unexpected exceptions; for writes, the same
        without the layers that pass them on."""
        if self.middleware_stack is None:
            self.middleware_stack = self.build_middleware_stack()
        layer: object = self.middleware_stack
        while layer is not None and not isinstance(layer, RequestLimits):
            layer = getattr(layer, "app", None)
        if layer is None:  # no such chain: the usual way in
            self._read_front = self._write_front = super().__call__
            return
        handler = self.exception_handlers.get(Exception) or self.exception_handlers.get(500)
        self._read_front = ServerErrorMiddleware(layer, handler=handler, debug=self.debug)  # type: ignore[arg-type]
        writes = chain_without(layer, (FastRead, CustomParamsCheck))
        self._write_front = self._read_front
        if writes is not None:
            self._write_front = ServerErrorMiddleware(writes, handler=handler, debug=self.debug)  # type: ignore[arg-type]


def chain_without(top: object, skipped: tuple[type, ...]) -> object | None:
    """The middleware chain from ``top`` in without its layers of the ``skipped`` types: the layers
    above the last of them copied (sharing their settings) and linked past them, those below it
    shared; None when the chain lacks one of them. The copies are shallow: a layer above that kept
    state of its own in an attribute it rebinds would keep it apart for the two chains (today's
    layers there, limits, guards and authentication, hold settings only)."""
    kept: list[object] = []
    found: set[type] = set()
    layer: object | None = top
    while layer is not None and len(found) < len(skipped):
        if isinstance(layer, skipped):
            found.add(next(t for t in skipped if isinstance(layer, t)))
        else:
            kept.append(layer)
        layer = getattr(layer, "app", None)
    if len(found) < len(skipped) or layer is None:
        return None
    inner: object = layer
    for outer in reversed(kept):
        clone = copy.copy(outer)
        clone.app = inner  # type: ignore[attr-defined]
        inner = clone
    return inner
