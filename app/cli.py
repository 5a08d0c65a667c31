"""The ``fhirledger`` command line: ``serve``, and the operator commands registered by
``cli_events`` (events, audit), ``cli_projections`` (projections) and ``cli_schema`` (schema)."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from app.cli_doctor import register as register_doctor
from app.cli_events import register as register_events
from app.cli_import import register as register_import
from app.cli_projections import register as register_projections
from app.cli_schema import register as register_schema
from app.settings import Settings

if TYPE_CHECKING:
    from app.db.embedded import EmbeddedPostgres

log = logging.getLogger("fhirledger")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or name to listen on) is reachable from this machine only."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def open_access_refusal(settings: Settings, insecure_open: bool) -> str | None:
    """Why ``serve`` must not start, or None: without authorization settings it serves loopback only,
    unless the operator says ``--insecure-open``."""
    if settings.auth_issuer or insecure_open or is_loopback(settings.host):
        return None
    return (
        f"refusing to serve {settings.host} without authorization: anyone who reaches it could read, write "
        "and delete every resource. Set FHIRLEDGER_AUTH_ISSUER, FHIRLEDGER_AUTH_AUDIENCE and FHIRLEDGER_AUTH_JWKS, "
        "listen on a loopback address (--host 127.0.0.1), or pass --insecure-open if something in front of this "
        "server already authorizes every request"
    )


def _serve(args: argparse.Namespace) -> int:
    overrides: dict = {"host": args.host, "port": args.port}
    if args.data_dir:
        overrides["data_dir"] = Path(args.data_dir)
    settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    refusal = open_access_refusal(settings, args.insecure_open)
    if refusal:
        print(f"fhirledger serve: {refusal}", file=sys.stderr)
        return 2
    if not settings.auth_issuer:
        log.warning(
            "authorization is off (FHIRLEDGER_AUTH_ISSUER unset): every client that reaches %s:%s may read and "
            "write everything",
            settings.host,
            settings.port,
        )
    embedded = None
    if not settings.database_url:
        started = _start_embedded(settings)
        if isinstance(started, int):
            return started
        embedded, settings = started
    # worker threads (large bodies, extraction) hand the GIL back to the event loop every 1 ms, not 5
    sys.setswitchinterval(0.001)
    # SIGTERM behaves like Ctrl-C: uvicorn shuts down, then we stop the embedded server.
    signal.signal(signal.SIGTERM, lambda *_: os.kill(os.getpid(), signal.SIGINT))
    try:
        _run_uvicorn(settings, args)
    finally:
        if embedded is not None:
            embedded.stop()
    return 0


def _start_embedded(settings: Settings) -> tuple[EmbeddedPostgres, Settings] | int:
    """The embedded PostgreSQL started on the data directory (claimed for this process), and the
    settings pointing at it; or the exit status after saying why it could not start."""
    from app.db.datadir_lock import DataDirInUse, claim_for_serve
    from app.db.embedded import EmbeddedPostgres, EmbeddedStartError

    data_dir = settings.data_dir.expanduser().resolve()
    try:
        claim_for_serve(data_dir)  # held until this process ends, however it ends
    except DataDirInUse as exc:
        print(f"fhirledger serve: {exc}", file=sys.stderr)
        return 1
    log.info("data directory: %s", data_dir)
    embedded = EmbeddedPostgres(data_dir)
    try:
        dsn = embedded.start()
    except EmbeddedStartError as exc:
        print(f"fhirledger serve: {exc}", file=sys.stderr)
        return 1
    embedded.supervise()
    return embedded, settings.model_copy(update={"database_url": dsn, "data_dir": data_dir})


def default_workers() -> int:
    """One HTTP worker process per core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


WORKER_HEALTHCHECK_S = 60
"""Seconds a worker process may take to answer the supervisor's health ping before it is killed."""


def _run_uvicorn(settings: Settings, args: argparse.Namespace) -> None:
    import uvicorn

    from app.api.app import create_app

    workers = args.workers or default_workers()
    common = {
        "host": settings.host,
        "port": settings.port,
        "log_level": args.log_level,
        "access_log": args.access_log,
        "http": "app.api.protocol:FhirHttpToolsProtocol",
    }
    if workers > 1:  # each worker process builds its app from the environment
        os.environ["FHIRLEDGER_DATABASE_URL"] = settings.database_url or ""
        # a worker answers the supervisor's health ping from a thread; on a machine loaded many
        # times over its cores, importing and warming the app can keep it from answering within
        # uvicorn's default 5 s, and the supervisor would kill and restart it, again and again
        uvicorn.run(
            "app.api.worker:create_worker_app",
            factory=True,
            workers=workers,
            timeout_worker_healthcheck=WORKER_HEALTHCHECK_S,
            **common,
        )
    else:
        uvicorn.run(create_app(settings), **common)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fhirledger", description="fhirledger FHIR R4 server")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the FHIR server (embedded PostgreSQL unless FHIRLEDGER_DATABASE_URL)")
    serve.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port to listen on (default 8080)")
    serve.add_argument(
        "--data-dir", default=None, help="data directory of the embedded database (default ./.fhirledger)"
    )
    serve.add_argument(
        "--workers", type=int, default=None, help="HTTP worker processes (default: one per core available)"
    )
    serve.add_argument("--log-level", default="info")
    serve.add_argument("--access-log", action="store_true", help="log every request")
    serve.add_argument(
        "--insecure-open",
        action="store_true",
        help="serve a non-loopback host without authorization settings (only behind an authorizing proxy)",
    )
    serve.set_defaults(func=_serve)
    register_events(sub)
    register_projections(sub)
    register_schema(sub)
    register_import(sub)
    register_doctor(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
