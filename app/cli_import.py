"""``fhirledger import [--data-dir D | --database-url U] FILE_OR_DIR...``: bulk-load ndjson files and
Bundle JSON files (optionally gzip) into the database of a running or stopped server.

With ``--data-dir`` the embedded PostgreSQL is used as the other operator commands use it: a running
``fhirledger serve``'s postmaster is adopted and left running (the import takes the same
per-resource locks as the server's writes), a stopped one is started for the import and stopped
after it. Every resource that is not imported is reported as ``file:line`` (or
``file#entry[i]``) with its issues; the rest carry on. Exit status: 0 when everything was
imported or already there, 1 when some resources were rejected or conflicted, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

import asyncpg
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeRemainingColumn

from app.bulk.pipeline import BATCH, ImportSummary, import_executor, import_files
from app.bulk.prepare import Problem
from app.bulk.sources import SourceError, find_files
from app.cli_common import CommandError, database
from app.db.migrations import migrate
from app.events.model import RequestContext
from app.projections.rebuild import custom_definitions
from app.projections.state import check_projections

IMPORTER = "fhirledger-import"
COLUMNS = (
    SpinnerColumn(),
    BarColumn(bar_width=24),
    TextColumn("{task.percentage:>3.0f}%"),
    TextColumn("{task.fields[resources]} resources, {task.fields[rate]}/s{task.fields[others]}"),
    TimeRemainingColumn(),
)


def cli_context() -> RequestContext:
    """What the import's events record: the importer as actor and client."""
    return RequestContext("PUT", "", actor=IMPORTER, client_id=IMPORTER, request_id=f"import-{os.getpid()}")


def print_problem(console: Console, problem: Problem) -> None:
    for issue in problem.issues:
        where = f" at {issue.expression[0]}" if issue.expression else ""
        text = f"{problem.where}: {issue.severity} {issue.code}{where}: {issue.diagnostics}"
        console.print(escape(text), soft_wrap=True)  # one line per issue, whatever the width


def summary_text(s: ImportSummary) -> str:
    rate = s.imported / s.elapsed if s.elapsed else 0.0
    types = ", ".join(f"{t} {n:,}" for t, n in s.by_type.most_common(8))
    return (
        f"imported {s.imported:,} resources from {s.files} file(s) in {s.elapsed:.1f} s ({rate:,.0f}/s);"
        f" {s.skipped:,} already there, {s.rejected:,} rejected, {s.conflicts:,} conflicts"
        + (f"\n  {types}" if types else "")
    )


async def run_import(
    dsn: str, paths: list[str], console: Console, *, batch: int = BATCH, workers: int = 0, lenient: bool = False
) -> ImportSummary:
    """Import ``paths`` into the database at ``dsn``; ``workers`` processes prepare the resources
    (0: as many as CPUs; 1: in this process)."""
    files = find_files(paths)
    total = sum(f.stat().st_size for f in files)
    workers = workers or os.cpu_count() or 2
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2, command_timeout=None)
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
            await check_projections(conn)
        definitions = await custom_definitions(pool)
        executor = import_executor(definitions, workers) if workers > 1 else None
        with Progress(*COLUMNS, console=console, transient=False) as progress:
            task = progress.add_task("import", total=max(total, 1), resources="0", rate="-", others="")

            def advance(s: ImportSummary) -> None:
                progress.update(task, completed=s.weight_done)
                elapsed = progress.tasks[0].elapsed or 0
                rate = f"{s.imported / elapsed:,.0f}" if elapsed else "-"
                not_imported = s.rejected + s.conflicts
                others = f", {s.skipped:,} there" if s.skipped else ""
                others += f", {not_imported:,} not imported" if not_imported else ""
                progress.update(task, resources=f"{s.imported:,}", rate=rate, others=others)

            try:
                summary = await import_files(
                    pool,
                    files,
                    cli_context(),
                    executor=executor,
                    workers=workers,
                    batch=batch,
                    lenient=lenient,
                    progress=advance,
                    on_problem=lambda p: print_problem(progress.console, p),
                )
            finally:
                if executor is not None:
                    executor.shutdown(cancel_futures=True)
    finally:
        await pool.close()
    console.print(summary_text(summary), soft_wrap=True)
    return summary


MAX_BATCH = 5000
"""Each batch holds one advisory lock per resource until it commits; PostgreSQL's shared lock table
(``max_locks_per_transaction`` x connections, 6,400 by default) bounds how many."""


def _import_command(args: argparse.Namespace) -> int:
    console = Console(stderr=False)
    if not 1 <= args.batch <= MAX_BATCH:
        print(f"fhirledger import: --batch must be 1 to {MAX_BATCH} (found {args.batch})", file=sys.stderr)
        return 2
    try:
        find_files(args.paths)  # a missing path is a usage error before any database is touched
        with database(args.database_url, args.data_dir) as dsn:
            summary = asyncio.run(run_import(dsn, args.paths, console, batch=args.batch, workers=args.workers))
    except (CommandError, SourceError) as exc:
        print(f"fhirledger import: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fhirledger import: interrupted; the batches written stay, run it again to resume", file=sys.stderr)
        return 130
    return 1 if summary.rejected or summary.conflicts else 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "import",
        help="bulk-load ndjson and Bundle files (optionally .gz) into the database",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("paths", nargs="+", metavar="FILE_OR_DIR", help="ndjson / Bundle JSON files or directories")
    parser.add_argument("--database-url", default=None, help="PostgreSQL DSN (default FHIRLEDGER_DATABASE_URL)")
    parser.add_argument("--data-dir", default=None, help="embedded database's data directory (default ./.fhirledger)")
    parser.add_argument("--batch", type=int, default=BATCH, help=f"resources per transaction (default {BATCH})")
    parser.add_argument("--workers", type=int, default=0, help="processes preparing resources (default: CPUs; 1: none)")
    parser.set_defaults(func=_import_command)
