"""A create or update takes the short way in (app/api/read_front.py, app/api/fast_write.py): its
body read as the server hands it over (in one message or several, app/api/http.py read_body,
through the disconnect watcher's slot, app/api/disconnect.py), its headers read from the scope."""

from __future__ import annotations

import asyncio

import orjson

from app.api import disconnect
from app.api.request_meta import header

PATIENT = {"resourceType": "Patient", "name": [{"family": "Chunked", "given": ["Body"]}], "gender": "other"}


def _scope(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
        "root_path": "",
    }


async def _call(app, scope: dict, messages: list[dict], then_wait: bool = True, gap: float = 0) -> list[dict]:
    """Run one request; ``messages`` are what the server's ``receive`` gives (each after ``gap``
    seconds), then (``then_wait``) it waits until the response is complete, as uvicorn does, and
    says the client went away."""
    sent: list[dict] = []
    done = asyncio.Event()
    pending = list(messages)

    async def receive() -> dict:
        if pending:
            await asyncio.sleep(gap)  # the server hands each part over as it arrives
            return pending.pop(0)
        if then_wait:
            await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            done.set()

    await asyncio.wait_for(app(scope, receive, send), 10)
    return sent


async def test_a_body_in_several_messages_is_created_whole(app, client) -> None:
    body = orjson.dumps(PATIENT)
    parts = [body[:10], body[10:25], body[25:]]
    messages = [{"type": "http.request", "body": p, "more_body": i < 2} for i, p in enumerate(parts)]
    scope = _scope(
        "POST", "/fhir/Patient", [(b"content-type", b"application/fhir+json"), (b"prefer", b"return=minimal")]
    )
    sent = await _call(app, scope, messages)
    start = sent[0]
    assert start["status"] == 201
    location = dict(start["headers"])[b"location"].decode()
    read = await client.get(location)
    assert read.status_code == 200
    assert read.json()["name"] == PATIENT["name"]
    assert sent[-1]["body"] == b""  # return=minimal


async def test_a_client_gone_before_the_body_ends_gets_nothing_written(app, log_count) -> None:
    before = await log_count()
    scope = _scope("POST", "/fhir/Patient", [(b"content-type", b"application/fhir+json")])
    first = {"type": "http.request", "body": orjson.dumps(PATIENT)[:10], "more_body": True}
    sent = await _call(app, scope, [first], then_wait=False)
    assert not [m for m in sent if m["type"] == "http.response.start"]  # no one is listening
    assert await log_count() == before


async def test_an_update_body_in_one_message_with_headers_read_from_the_scope(app, client) -> None:
    body = orjson.dumps({**PATIENT, "id": "way-in-1"})
    scope = _scope(
        "PUT",
        "/fhir/Patient/way-in-1",
        [(b"content-type", b"application/fhir+json"), (b"x-request-id", b"req-way-in")],
    )
    sent = await _call(app, scope, [{"type": "http.request", "body": body, "more_body": False}])
    assert sent[0]["status"] in (200, 201)
    assert orjson.loads(sent[-1]["body"])["id"] == "way-in-1"
    assert (await client.get("/fhir/Patient/way-in-1")).status_code == 200


class _Request:
    def __init__(self, headers: list[tuple[bytes, bytes]]) -> None:
        self.scope = {"headers": headers}


def test_header_is_the_first_value_as_starlette_gives_it() -> None:
    request = _Request(
        [(b"prefer", b"return=minimal"), (b"prefer", b"handling=strict"), (b"x-a", "é".encode("latin-1"))]
    )
    assert header(request, "prefer") == "return=minimal"  # type: ignore[arg-type]
    assert header(request, "x-a") == "é"  # type: ignore[arg-type]
    assert header(request, "if-match") is None  # type: ignore[arg-type]


async def test_a_body_slower_than_the_watchers_grace_is_created_whole(app, client) -> None:
    """The application reads its body itself until the disconnect watcher starts (app/api/disconnect.py,
    ``GRACE``); the watcher, started while a part is on its way, hands the rest over."""
    body = orjson.dumps(PATIENT)
    parts = [body[:10], body[10:25], body[25:]]
    messages = [{"type": "http.request", "body": p, "more_body": i < 2} for i, p in enumerate(parts)]
    scope = _scope("POST", "/fhir/Patient", [(b"content-type", b"application/fhir+json")])
    sent = await _call(app, scope, messages, gap=disconnect.GRACE * 1.5)  # each part after the grace period
    assert sent[0]["status"] == 201
    read = await client.get(dict(sent[0]["headers"])[b"location"].decode())
    assert read.json()["name"] == PATIENT["name"]


class _Noted:
    """A watch as the grace clock sees it: ``due`` notes the time it was called."""

    def __init__(self, loop: asyncio.AbstractEventLoop, finished: bool = False) -> None:
        self.loop = loop
        self.finished = finished
        self.due_at: float | None = None

    def due(self) -> None:
        self.due_at = self.loop.time()


async def test_the_grace_periods_of_requests_in_flight_end_in_turn_under_one_timer(monkeypatch) -> None:
    """Each request's watcher is due once it has run for ``GRACE`` (not before), a request already
    answered is passed over, and a loop's requests share one timer (a timer each was 3-5 us of
    every request's CPU)."""
    monkeypatch.setattr(disconnect, "GRACE", 0.05)
    loop = asyncio.get_running_loop()
    armed: list[float] = []
    call_at = loop.call_at

    def counted(when: float, callback, *args, **kwargs):  # type: ignore[no-untyped-def]
        if getattr(callback, "__self__", None) is clock:  # (the test's sleeps use call_at too)
            armed.append(when)
        return call_at(when, callback, *args, **kwargs)

    monkeypatch.setattr(loop, "call_at", counted)
    clock = disconnect._GraceClock(loop)
    first, answered = _Noted(loop), _Noted(loop, finished=True)
    started = loop.time()
    clock.add(first)  # type: ignore[arg-type]
    clock.add(answered)  # type: ignore[arg-type]
    await asyncio.sleep(0.02)
    later = _Noted(loop)
    clock.add(later)  # type: ignore[arg-type]
    assert len(armed) == 1, "requests arriving while a grace period runs arm no timer of their own"
    await asyncio.sleep(0.15)
    assert first.due_at is not None and later.due_at is not None and answered.due_at is None
    assert first.due_at >= started + 0.05 - 0.002 and later.due_at >= started + 0.07 - 0.002
    assert len(armed) == 2, "one timer for the first, then one for the next in line"


async def test_a_write_passes_every_layer_but_those_that_only_pass_it_on(app, client) -> None:
    """The short way of a create or update (app/api/read_front.py) keeps the limits, the guards,
    authentication and the disconnect watcher, and leaves out the fast read and the custom-parameter
    check (which pass every create and update on unchanged)."""
    from app.api.auth import Authentication
    from app.api.disconnect import CancelOnDisconnect
    from app.api.fast_read import FastRead
    from app.api.fast_write import FastWrite
    from app.api.guards import RequestGuards
    from app.api.limits import RequestLimits
    from app.api.staleness import CustomParamsCheck

    body = orjson.dumps(PATIENT)
    created = await client.post("/fhir/Patient", content=body, headers={"Content-Type": "application/fhir+json"})
    assert created.status_code == 201  # (the fronts are built on first use)

    def layers(front: object) -> list[type]:
        out: list[type] = []
        while front is not None and not isinstance(front, FastWrite):
            out.append(type(front))
            front = getattr(front, "app", None)
        return out

    kept = [RequestLimits, RequestGuards, Authentication, CancelOnDisconnect]
    assert [t for t in layers(app._write_front) if t in (*kept, FastRead, CustomParamsCheck)] == kept
    reads = layers(app._read_front)
    assert FastRead in reads and CustomParamsCheck in reads and CancelOnDisconnect in reads
    form = await client.post("/fhir/Patient", content=body, headers={"Content-Type": "text/plain"})
    assert form.status_code == 415  # the guards still refuse a cross-site form's type
