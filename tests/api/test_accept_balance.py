"""A worker holding more connections than its peers stops listening until they hold as many, or
until a connection has waited unaccepted for the longest pause (app/api/workers/accept_balance.py): real
sockets and a real listening server in this process, the peer's count set by hand."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from app.api.workers.accept_balance import MAX_PAUSE, RETRY, AcceptBalance, OpenCounts, waiting


@dataclass
class Worker:
    balance: AcceptBalance
    probe: socket.socket  # a duplicate of the listening socket (the loop closes its own when paused)
    peer: OpenCounts
    accepted: list[asyncio.Transport] = field(default_factory=list)
    clients: list[socket.socket] = field(default_factory=list)

    def connect(self) -> None:
        client = socket.socket()
        client.setblocking(False)
        try:
            client.connect(self.probe.getsockname())
        except BlockingIOError:
            pass
        self.clients.append(client)


async def _until(condition, timeout: float = 2.0) -> float:  # type: ignore[no-untyped-def]
    """Seconds until ``condition()`` holds (fails after ``timeout``)."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < timeout, "timed out"
        await asyncio.sleep(0.001)
    return time.monotonic() - start


@pytest.fixture
async def worker(tmp_path: Path) -> AsyncIterator[Worker]:
    sleeper = subprocess.Popen(["sleep", "60"])  # the peer: a live process of another pid
    loop = asyncio.get_running_loop()
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen(16)
    servers: list[asyncio.AbstractServer] = []
    holder: list[Worker] = []

    class Protocol(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            me = holder[0]
            me.accepted.append(transport)  # type: ignore[arg-type]
            me.balance.opened(len(me.accepted))

    async def listen(sock: socket.socket) -> asyncio.AbstractServer:
        return await loop.create_server(Protocol, sock=sock)

    peer = OpenCounts(tmp_path, pid=sleeper.pid)
    peer.publish(0)
    balance = AcceptBalance(OpenCounts(tmp_path), lambda: servers, listen, [listening.dup()])
    me = Worker(balance, listening.dup(), peer)
    holder.append(me)
    servers.append(await listen(listening))
    try:
        yield me
    finally:
        balance.stop()
        for server in servers:
            server.close()
        for transport in me.accepted:
            transport.close()
        for client in me.clients:
            client.close()
        me.probe.close()
        sleeper.kill()
        sleeper.wait()


async def test_a_worker_ahead_stops_listening_until_its_peer_holds_as_many(worker: Worker) -> None:
    worker.connect()
    await _until(lambda: len(worker.accepted) == 1)
    assert worker.balance.paused_at is not None  # one held here, none by the peer
    worker.connect()
    await asyncio.sleep(MAX_PAUSE / 2)
    assert len(worker.accepted) == 1 and waiting(worker.probe) == 1  # left to the peer
    worker.peer.publish(1)  # the peer took one elsewhere: even again
    await _until(lambda: len(worker.accepted) == 2, timeout=MAX_PAUSE * 5)


async def test_a_connection_no_peer_takes_waits_for_the_longest_pause_at_most(worker: Worker) -> None:
    worker.connect()
    await _until(lambda: len(worker.accepted) == 1)
    await asyncio.sleep(0.2)  # the pause lasts while no connection waits
    assert worker.balance.paused_at is not None
    worker.connect()  # the peer (hung, say) never takes it
    waited = await _until(lambda: len(worker.accepted) == 2)
    assert MAX_PAUSE * 0.8 <= waited < 0.5, waited


async def test_a_dead_peer_does_not_count(tmp_path: Path, worker: Worker) -> None:
    worker.peer.close()  # its file gone, as a worker that ended
    gone = subprocess.Popen(["true"])
    gone.wait()
    OpenCounts(tmp_path, pid=gone.pid).publish(0)  # one that died without removing its file
    worker.balance.counts._listed = -1e9  # read the directory again now
    for n in range(1, 4):
        worker.connect()
        await _until(lambda n=n: len(worker.accepted) == n)
    assert worker.balance.pauses == 0 and os.path.exists(tmp_path / f"{gone.pid}.open")


async def test_listening_that_fails_to_resume_is_tried_again(worker: Worker) -> None:
    listen, failures = worker.balance._listen, []

    async def fails_once(sock: socket.socket) -> asyncio.AbstractServer:
        if not failures:
            failures.append(sock)
            sock.close()
            raise OSError(24, "Too many open files")
        return await listen(sock)

    worker.balance._listen = fails_once
    worker.connect()
    await _until(lambda: len(worker.accepted) == 1)
    worker.peer.publish(1)  # even: it resumes, fails, and tries again a second later
    worker.connect()
    waited = await _until(lambda: len(worker.accepted) == 2, timeout=5)
    assert failures and RETRY * 0.8 <= waited < RETRY + 1, waited


def test_a_peer_that_starts_listening_later_is_seen_at_once(tmp_path: Path) -> None:
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        counts = OpenCounts(tmp_path, peers=1)
        assert counts.fewest_elsewhere() is None  # the other worker has not published yet
        OpenCounts(tmp_path, pid=sleeper.pid).publish(2)
        assert counts.fewest_elsewhere() == 2  # not a second later: the first connections matter most
    finally:
        sleeper.kill()
        sleeper.wait()
