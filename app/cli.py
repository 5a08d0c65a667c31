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
from app.db.locality import cores_available, on_this_machine
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


def default_workers(database_url: str | None = None) -> int:
    """HTTP worker processes by default: one per core available, or half of them (rounded up)
    when the database runs on this machine (the embedded one, or a local host: ``database_url``
    None stands for the embedded one), whose backends need the other half. On 2 cores with the
    embedded server (``bench/crud.py --workers 1`` against ``--workers 2``, c=16, medians of two
    rounds each): create 2,281 against 1,964/s (0.65× against 0.49× the raw baseline), read 13,156
    against 10,905/s, update 2,373 against 2,366/s, the CRUD mix at 64 clients 1,922-2,065
    against 1,902-1,936 requests/s; two workers split the concurrent writes into smaller batches
    (PostgreSQL 0.23 against 0.35 ms of CPU per create) and their two event loops each wake for
    fewer requests (the server 0.25 against 0.36 ms). Synthea transaction ingest is the exception
    (3,788 against 4,113 resources/s over 62,676 resources): ``--workers`` sets it.

    Session 31 measured it again on 2 cores, alternated: two workers ingest 3,177 against 2,517
    resources/s to 188,028 and 2,927 against 2,712 from there to the million (two cores 95% busy
    there either way), but create fell to 0.45-0.64× the raw baseline (six runs; PostgreSQL
    0.48-0.55 against 0.31-0.36 ms per create) against 0.51-0.68× with one (five runs): one stays
    the default, as a target met in every run is worth more than one missed either way."""
    cores = cores_available()
    if database_url is None or on_this_machine(database_url):
        return (cores + 1) // 2
    return cores


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

    workers = args.workers or default_workers(settings.database_url)
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
