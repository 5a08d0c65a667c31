"""What the operator commands share: finding the database (``--database-url``,
``FHIRLEDGER_DATABASE_URL`` or the embedded server under ``--data-dir``; the postmaster of a running
``fhirledger serve`` is used and left running) and reporting errors."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path

from app.settings import Settings, get_settings


class CommandError(Exception):
    """A problem to report in one line and exit 2."""


@contextmanager
def database(url: str | None, data_dir: str | None) -> Iterator[str]:
    """The DSN to use, starting (and afterwards stopping) the embedded server when needed."""
    settings = Settings()
    if url or settings.database_url:
        yield url or settings.database_url  # type: ignore[misc]
        return
    from app.db.embedded import EmbeddedPostgres, EmbeddedStartError

    embedded = EmbeddedPostgres(Path(data_dir) if data_dir else settings.data_dir)  # resolved to an absolute path
    if not (embedded.pgdata / "PG_VERSION").exists():
        raise CommandError(f"no database under {embedded.data_dir}: pass --database-url or --data-dir")
    try:
        dsn = embedded.start()  # adopts the postmaster of a running `fhirledger serve`
    except EmbeddedStartError as exc:
        raise CommandError(str(exc)) from None
    try:
        yield dsn
    finally:
        embedded.stop()  # stops the postmaster only when no server or other command uses it


def database_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database-url", default=None, help="PostgreSQL DSN (default FHIRLEDGER_DATABASE_URL)")
    parser.add_argument(
        "--data-dir", default=None, help="data directory of the embedded database (default ./.fhirledger)"
    )


@contextmanager
def data_dir_environment(data_dir: str | None) -> Iterator[None]:
    """``FHIRLEDGER_DATA_DIR`` set to a command's ``--data-dir`` while it runs (then restored), and the
    settings read again: what reads them (:func:`app.settings.get_settings`) then finds that
    directory, above all the spec cache in ``<data_dir>/spec-cache``
    (:func:`app.fhirspec.derived.cache_dir`), in this process and in the processes it starts (a
    replay's workers, a server's). Without it they looked in ``./.fhirledger`` of the working
    directory and, finding no cache there, each parsed the spec files again: 1.46 s of CPU instead
    of 0.77 to load the search parameters, in the command's process and again in a replay's fork
    server (session 18)."""
    if data_dir is None:
        yield
        return
    before = os.environ.get("FHIRLEDGER_DATA_DIR")
    os.environ["FHIRLEDGER_DATA_DIR"] = str(Path(data_dir).expanduser().resolve())
    get_settings.cache_clear()
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("FHIRLEDGER_DATA_DIR", None)
        else:
            os.environ["FHIRLEDGER_DATA_DIR"] = before
        get_settings.cache_clear()


def run_with_database(name: str, args: argparse.Namespace, work: Callable[[str], Coroutine]) -> int:
    """Run ``work(dsn)`` for a command; a :class:`CommandError` is one line on stderr and exit 2."""
    try:
        with database(args.database_url, args.data_dir) as dsn:
            asyncio.run(work(dsn))
    except CommandError as exc:
        print(f"fhirledger {name}: {exc}", file=sys.stderr)
        return 2
    return 0
