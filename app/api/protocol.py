"""uvicorn's httptools protocol, made to answer every request with FHIR.

Stock uvicorn answers a request its HTTP parser cannot take with a plain-text ``400 Invalid HTTP
request received`` and, through httptools, cannot take a URL longer than 65,535 bytes at all. This
protocol:

- hands a URL too long to parse to the application as ``/`` with its real length in the scope
  (:data:`URL_LENGTH_KEY`), so that the limits middleware (app/api/limits.py) answers 414 with an
  OperationOutcome and the connection stays usable;
- answers a request head (request line and headers) over :data:`HEAD_HARD_LIMIT` bytes at once
  with 414/431 and closes the connection, so no client can make the server buffer without bound;
  the client is likely still sending then, so the connection lingers (:meth:`_linger`): closed
  with unread data, it would be reset by the kernel, and the client would meet the reset while
  it sends, before it ever reads the answer;
- answers a request the parser rejects (a control character in a header, a malformed request
  line, ...) with a 400 OperationOutcome; the parser cannot resume after such an error, so that
  connection is closed;
- spreads the connections a client opens at once over the workers (app/api/workers/bursts.py), and
  keeps the workers' open connections even (app/api/workers/accept_balance.py);
- sends a response's head with its body's first part, in one write (app/api/one_send.py).
"""

from __future__ import annotations

from typing import Any

import httptools
import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from app.api.one_send import hold_head
from app.api.workers import accept_balance
from app.api.workers.bursts import share_burst
from app.errors import Issue, operation_outcome

FHIR_JSON = b"application/fhir+json"
URL_LENGTH_KEY = "fhirledger.url_length"
URL_PARSE_LIMIT = 65_535  # httptools' URL parser keeps offsets in 16 bits
HEAD_HARD_LIMIT = 1024 * 1024
LINGER_SECONDS = 2.0
"""How long a refused connection is given to finish sending (its data read and dropped) before the
server closes it."""
LINGER_BYTES = 16 * 1024 * 1024
"""How much a refused connection may still send meanwhile (more, and it is closed at once)."""


class _ErrorRecordingParser(httptools.HttpRequestParser):
    """The httptools parser, remembering why it last failed (uvicorn only says that it did); a
    subclass, not a wrapper, so that uvicorn's calls of its other methods cost nothing extra."""

    error = ""

    def feed_data(self, data: bytes) -> None:
        try:
            super().feed_data(data)
        except httptools.HttpParserError as exc:
            self.error = str(exc)
            raise


class FhirHttpToolsProtocol(HttpToolsProtocol):
    """``uvicorn.run(..., http=FhirHttpToolsProtocol)``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.parser = _ErrorRecordingParser(self)
        self.parser.set_dangerous_leniencies(lenient_data_after_close=True)  # as uvicorn sets its own

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        open_now = len(self.server_state.connections)
        if not accept_balance.opened(open_now):
            share_burst(open_now)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        accept_balance.closed(len(self.server_state.connections))

    _head_bytes = 0
    _counting = True  # between messages and in a request head; not while a body streams in
    _lingering: int | None = None  # bytes dropped since the refusal (None: not refused)

    def data_received(self, data: bytes) -> None:
        if self._lingering is not None:
            self._lingering += len(data)
            if self._lingering > LINGER_BYTES:
                self.transport.close()
            return
        if self._counting and not self.transport.is_closing():
            self._head_bytes += len(data)
            if self._head_bytes > HEAD_HARD_LIMIT:
                self._refuse_head()
                return
        super().data_received(data)

    def _refuse_head(self) -> None:
        if self.headers:  # uvicorn's list of this request's headers so far (None before the first)
            text = f"The request headers exceed {HEAD_HARD_LIMIT} bytes; the connection is closed"
            self.send_outcome(431, "too-costly", text)
        else:
            text = (
                f"The request URL exceeds {HEAD_HARD_LIMIT} bytes; the connection is closed. "
                "Send long searches as POST [base]/[type]/_search with the parameters in the body"
            )
            self.send_outcome(414, "too-costly", text)

    def on_headers_complete(self) -> None:
        self._counting = False
        self._head_bytes = 0
        if len(self.url) > URL_PARSE_LIMIT:
            self.scope[URL_LENGTH_KEY] = len(self.url)  # type: ignore[literal-required]
            self.url = b"/"
        previous = self.cycle
        super().on_headers_complete()
        if self.cycle is not previous:  # a new request/response cycle (not an upgrade)
            hold_head(self.cycle)

    def on_message_complete(self) -> None:
        self._counting = True
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        reason = getattr(self.parser, "error", "") or msg
        text = (
            f"The HTTP request is malformed and cannot be parsed ({reason.rstrip('.')}); check the request line "
            "and that header values hold no control characters. The connection is closed"
        )
        self.send_outcome(400, "structure", text)

    def send_outcome(self, status: int, code: str, text: str) -> None:
        """Answer ``status`` with an OperationOutcome and close the connection."""
        body = orjson.dumps(operation_outcome([Issue("error", code, text)]))
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [b"content-type: ", FHIR_JSON, b"\r\ncontent-length: ", str(len(body)).encode(), b"\r\n"]
        head += [b"connection: close\r\n\r\n", body]
        self.transport.write(b"".join(head))
        self._linger()

    def _linger(self) -> None:
        """Close for good once the client has stopped sending, or after :data:`LINGER_SECONDS`:
        the answer is sent and the writing side shut (the client reads the answer, then the end),
        and what still comes is read and dropped, up to :data:`LINGER_BYTES`."""
        if self._lingering is not None or self.transport.is_closing():
            return
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        self._lingering = 0
        self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def eof_received(self) -> bool | None:
        if self._lingering is not None:
            self.transport.close()  # the client has sent all it will
            return None
        return super().eof_received()
