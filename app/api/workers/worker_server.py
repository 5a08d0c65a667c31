"""A worker process of ``fhirledger serve --workers N``: uvicorn's, with its listening paused and
resumed by :class:`app.api.workers.accept_balance.AcceptBalance` (the supervisor starts these,
app/api/workers/supervisor.py)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from uvicorn.server import Server
from uvicorn.supervisors.multiprocess import Process

from app.api.workers import accept_balance
from app.api.workers.accept_balance import AcceptBalance, OpenCounts
from app.api.workers.start_barrier import barrier_directory, barrier_workers


class BalancedServer(Server):
    """uvicorn's server, balancing its connections against the other workers' once it listens."""

    balance: AcceptBalance | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        directory = barrier_directory()
        if not sockets or directory is None or self.should_exit:
            return
        config = self.config
        loop = asyncio.get_running_loop()

        def protocol(_loop: asyncio.AbstractEventLoop | None = None) -> asyncio.Protocol:  # Server.startup's own
            return config.http_protocol_class(  # type: ignore[call-arg]
                config=config, server_state=self.server_state, app_state=self.lifespan.state, _loop=_loop
            )

        async def listen(sock: socket.socket) -> Any:
            return await loop.create_server(protocol, sock=sock, ssl=config.ssl, backlog=config.backlog)

        spares = [sock.dup() for sock in sockets]
        counts = OpenCounts(directory, peers=barrier_workers() - 1)
        self.balance = AcceptBalance(counts, lambda: self.servers, listen, spares)
        accept_balance.install(self.balance)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.balance is not None:
            self.balance.stop()
            accept_balance.install(None)
        await super().shutdown(sockets)


class BalancedProcess(Process):
    """uvicorn's worker process, serving with :class:`BalancedServer`."""

    @property
    def server(self) -> Server:
        if self._server is None:
            self._server = BalancedServer(config=self.config)
        return self._server
