"""Operator commands over the event log: ``fhirledger events tail`` (the change feed as JSON lines)
and ``fhirledger audit --resource Type/id`` (who did what when).

Both connect with asyncpg to ``--database-url``, else ``FHIRLEDGER_DATABASE_URL``, else the
embedded PostgreSQL under ``--data-dir`` (started for the command if no server runs there, and then
stopped again; a postmaster already serving ``fhirledger serve`` is reused and left running).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TextIO

import asyncpg
import orjson
from rich.console import Console
from rich.table import Table
from rich.text import Text

from app.cli_common import CommandError, database, database_options, run_with_database
from app.errors import FhirError
from app.fhirtime import format_instant
from app.queries.changes import ChangeEvent, Cursor, cursor_of, read_changes, read_trail

TAIL_BATCH = 1000


async def _connect(dsn: str) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(dsn)
    except (OSError, asyncpg.PostgresError) as exc:
        raise CommandError(f"cannot connect to the database: {exc}") from None


def event_line(e: ChangeEvent) -> str:
    """One change-feed event as a JSON line."""
    return orjson.dumps(
        {
            "type": e.resource_type,
            "id": e.resource_id,
            "version": e.version,
            "kind": e.kind.value,
            "position": e.position,
            "tx": e.tx,
            "recorded_at": format_instant(e.recorded_at),
            "actor": e.actor,
            "cursor": str(cursor_of(e)),
        }
    ).decode()


async def tail(
    dsn: str, after: Cursor | None = None, follow: bool = False, out: TextIO = sys.stdout, interval: float = 1.0
) -> Cursor | None:
    """Print the feed after ``after``; with ``follow``, keep polling every ``interval`` seconds.
    Returns the cursor after the last event printed."""
    conn = await _connect(dsn)
    try:
        while True:
            events = await read_changes(conn, after, TAIL_BATCH)
            for e in events:
                out.write(event_line(e) + "\n")
            if events:
                after = cursor_of(events[-1])
                out.flush()
            if len(events) < TAIL_BATCH:
                if not follow:
                    return after
                await asyncio.sleep(interval)
    finally:
        await conn.close()


async def audit(dsn: str, resource: str, console: Console | None = None) -> int:
    """Print the audit trail of ``Type/id`` as a table; returns the number of events shown."""
    resource_type, _, resource_id = resource.strip().strip("/").partition("/")
    if not resource_id or "/" in resource_id:
        raise CommandError(f"--resource '{resource}' is not Type/id, e.g. Patient/123")
    conn = await _connect(dsn)
    try:
        events = await read_trail(conn, resource_type, resource_id)
    except FhirError as exc:
        raise CommandError(exc.diagnostics) from None
    finally:
        await conn.close()
    console = console or Console()
    if not events:
        console.print(Text(f"No events for {resource_type}/{resource_id}"))
        return 0
    table = Table(title=Text(f"Audit trail of {resource_type}/{resource_id}"))
    for heading in ("version", "kind", "method", "url", "recorded at", "actor", "client address", "request id"):
        table.add_column(heading, overflow="fold")
    for e in events:
        cells = (e.method, e.url, format_instant(e.recorded_at), e.actor, e.client_addr, e.request_id)
        # stored values are printed literally: Text is never read as rich markup
        table.add_row(str(e.version), e.kind.value, *(Text(value or "") for value in cells))
    console.print(table)
    return len(events)


def _tail_command(args: argparse.Namespace) -> int:
    try:
        after = Cursor.parse(args.after) if args.after else None
    except FhirError as exc:
        print(f"fhirledger events tail: {exc.diagnostics}", file=sys.stderr)
        return 2
    try:
        with database(args.database_url, args.data_dir) as dsn:
            asyncio.run(tail(dsn, after, args.follow, interval=args.interval))
    except CommandError as exc:
        print(f"fhirledger events tail: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. piped into head
        sys.stderr.close()
        return 0
    return 0


def _audit_command(args: argparse.Namespace) -> int:
    return run_with_database("audit", args, lambda dsn: audit(dsn, args.resource))


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``events tail`` and ``audit`` to the ``fhirledger`` command line."""
    events = sub.add_parser("events", help="the change feed of the event log")
    events_sub = events.add_subparsers(dest="events_command", required=True)
    tail_parser = events_sub.add_parser(
        "tail", help="print events as JSON lines, oldest first, in an order that never skips a late commit"
    )
    tail_parser.add_argument("--after", default=None, help="start after this cursor (<tx>.<position>)")
    tail_parser.add_argument("--follow", "-f", action="store_true", help="keep waiting for new events")
    tail_parser.add_argument("--interval", type=float, default=1.0, help="seconds between polls with --follow")
    database_options(tail_parser)
    tail_parser.set_defaults(func=_tail_command)

    audit_parser = sub.add_parser("audit", help="who changed a resource, and when")
    audit_parser.add_argument("--resource", required=True, help="Type/id, e.g. Patient/123")
    database_options(audit_parser)
    audit_parser.set_defaults(func=_audit_command)
