"""The ``fhirledger`` command line: ``serve``, and the operator commands registered by
``cli_events`` (events, audit), ``cli_projections`` (projections) and ``cli_schema`` (schema)."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import signal
import sys
from collections.abc import Sequence
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING

from app.cli_common import data_dir_environment
from app.db.locality import cores_available
from app.settings import Settings, retired_settings

if TYPE_CHECKING:
    from app.db.embedded import EmbeddedPostgres

log = logging.getLogger("fhirledger")

COMMANDS = {
    "events": "app.cli_events",
    "audit": "app.cli_events",
    "projections": "app.cli_projections",
    "schema": "app.cli_schema",
    "import": "app.cli_import",
    "doctor": "app.cli_doctor",
}
"""The operator commands, and the module that registers and runs each (``serve`` is here)."""


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
    for warning in retired_settings(os.environ):
        log.warning("%s", warning)
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
    # worker threads (the search rows of large writes) hand the GIL back to the event loop every 1 ms, not 5
    sys.setswitchinterval(0.001)
    # SIGTERM behaves like Ctrl-C: uvicorn shuts down, then we stop the embedded server.
    signal.signal(signal.SIGTERM, lambda *_: os.kill(os.getpid(), signal.SIGINT))
    try:
        return _run_uvicorn(settings, args)
    finally:
        if embedded is not None:
            embedded.stop()


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
    """HTTP worker processes by default: one per core available, wherever the database runs. A
    worker is one Python process with one event loop; a transaction Bundle's parse, validation and
    search rows keep it busy while PostgreSQL's backends wait for its statements, so on 2 cores
    with the embedded database one worker left a core idle: sampled every 5 ms during an ingest,
    its process ran in 86% of the samples, with no backend and no client running in 31%.

    Session 34, 2 cores, the embedded database, alternated: ingest (``python bench/scale.py build
    --copies 3 --workers N``) 3,446, 3,512 and 3,755 resources/s with two workers against 2,669,
    3,141 and 3,130 with one, and from 188,028 resources to the million 3,715 against 3,376;
    create at c=16 (``python bench/crud.py --ops 2000 --rounds 2 --concurrency 16 --mix-ops 0
    --workers N``) 0.54, 0.52, 0.62, 0.54 and 0.51× the raw baseline against 0.66, 0.61, 0.53 and
    0.55×, read 0.83-1.05× against 0.81-0.98×, update 0.74-1.01× against 0.84-1.04×. Until then one
    worker per two cores was the default with the database on this machine (session 31: two
    workers split concurrent creates into smaller statements, create 0.45-0.64×); since session 32
    the workers share one statement per type in flight (:mod:`app.projections.cross_process_gate`)."""
    return cores_available()


def worker_environment(settings: Settings) -> dict[str, str]:
    """What a worker process of ``serve --workers N`` needs of the settings this process was given
    on its command line, as the environment its own settings read: the database it serves, and the
    data directory (``--data-dir``), where its exports and its spec cache go by default (without it
    a worker used ``./.fhirledger`` of the working directory)."""
    return {"FHIRLEDGER_DATABASE_URL": settings.database_url or "", "FHIRLEDGER_DATA_DIR": str(settings.data_dir)}


def _run_uvicorn(settings: Settings, args: argparse.Namespace) -> int:
    """Serve until stopped; the exit status (non-zero when the workers' supervisor gave up)."""
    import uvicorn

    from app.api.app import create_app
    from app.api.workers.supervisor import run_workers

    workers = args.workers or default_workers()
    common = {
        "host": settings.host,
        "port": settings.port,
        "log_level": args.log_level,
        "access_log": args.access_log,
        "http": "app.api.protocol:FhirHttpToolsProtocol",
    }
    if workers > 1:  # each worker process builds its app from the environment
        os.environ.update(worker_environment(settings))
        return run_workers("app.api.workers.worker_app:create_worker_app", workers, **common)
    uvicorn.run(create_app(settings), **common)
    return 0


def command_modules(argv: Sequence[str]) -> list[str]:
    """The modules of the operator commands to register: the one of the command asked for (each
    imports what it runs, and all of them together cost ~0.2 s of CPU at every start, and again in
    replay's fork server, which loads the main module), none for ``serve``, and all of them
    otherwise (the help lists them, a wrong command is told the choices)."""
    command = next((a for a in argv if not a.startswith("-")), None)
    if command == "serve":
        return []
    if command in COMMANDS:
        return [COMMANDS[command]]
    return list(dict.fromkeys(COMMANDS.values()))


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
        "--workers",
        type=int,
        default=None,
        help=(
            "HTTP worker processes (default: one per core available; half of them, rounded up, with the"
            " database on this machine)"
        ),
    )
    serve.add_argument("--log-level", default="info")
    serve.add_argument("--access-log", action="store_true", help="log every request")
    serve.add_argument(
        "--insecure-open",
        action="store_true",
        help="serve a non-loopback host without authorization settings (only behind an authorizing proxy)",
    )
    serve.set_defaults(func=_serve)
    for module in command_modules(sys.argv[1:] if argv is None else argv):
        import_module(module).register(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    with data_dir_environment(getattr(args, "data_dir", None)):
        return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
