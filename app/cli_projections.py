"""``fhirledger projections status`` and ``fhirledger projections rebuild``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable

import asyncpg
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from app.cli_common import CommandError, database_options, run_with_database
from app.collector import tune_collector
from app.db.migrations import migrate
from app.events.store import counts_by_type
from app.fhirspec.resource_types import is_resource_type, resource_types
from app.projections.current_state import current_table
from app.projections.rebuild import custom_definitions, pending_events, rebuild_type, replay_executor
from app.projections.rebuild_many import each_type, largest_first
from app.projections.search_index import KINDS as SEARCH_KINDS
from app.projections.search_index import search_table
from app.projections.state import check_projections, statuses


async def status(dsn: str, show_all: bool, console: Console | None = None) -> list[dict]:
    console = console or Console(width=None if Console().is_terminal else 160)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
            await check_projections(conn)
        counts = await counts_by_type(pool)
        table = Table(title="projections")
        for col in ("projection", "status", "version", "rows", "checkpoint", "lag", "rebuild", "audit"):
            table.add_column(col)
        audits = {
            r["resource_type"]: f"{r['drifted']}/{r['sampled']} drifted at {r['checked_at']:%Y-%m-%d %H:%M}"
            for r in await pool.fetch("SELECT resource_type, sampled, drifted, checked_at FROM projection_audit")
        }
        out = []
        for s in await statuses(pool):
            events, max_position = counts.get(s.resource_type, (0, 0))
            if not show_all and not events and s.status == "ready":
                continue
            if s.kind == "current_state":
                rows = await pool.fetchval(f"SELECT count(*) FROM {current_table(s.resource_type)}")
            else:
                rows = 0
                for kind in SEARCH_KINDS:
                    rows += await pool.fetchval(f"SELECT count(*) FROM {search_table(s.resource_type, kind)}")
            # ready projections are maintained inline, in the write's own transaction: no lag
            lag = 0 if s.status == "ready" else max(0, max_position - (s.rebuild or {}).get("checkpoint", s.checkpoint))
            version = "current" if s.version == s.expected else f"{s.version} (code expects {s.expected})"
            rebuild = f"at position {s.rebuild['checkpoint']}" if s.rebuild else ""
            audit = audits.get(s.resource_type, "")
            out.append(
                {"name": s.name, "status": s.status, "rows": rows, "lag": lag, "version": version, "audit": audit}
            )
            table.add_row(s.name, s.status, version, str(rows), str(s.checkpoint), str(lag), rebuild, audit)
        console.print(table)
        return out
    finally:
        await pool.close()


COLUMNS = (
    SpinnerColumn(),
    TextColumn("{task.description:<28}"),
    BarColumn(),
    TextColumn("{task.fields[done]:>10}/{task.fields[of]:<10}"),
    TextColumn("{task.fields[rate]:>10} events/s"),
    TimeElapsedColumn(),
    TimeRemainingColumn(),
)


def _task(progress: Progress, task: TaskID) -> Task:
    return next(t for t in progress.tasks if t.id == task)


def _counted(progress: Progress, task: TaskID) -> Callable[[asyncio.Task], None]:
    """Sets the task's total once the events to replay are counted (the replay does not wait)."""

    def done(counting: asyncio.Task) -> None:
        # a done callback runs on the loop's next turn: after the type's final line when its rebuild
        # ended in the same turn as the count (a type without events), which it must not overwrite
        if _task(progress, task).fields.get("final"):
            return
        if not counting.cancelled() and counting.exception() is None:
            total = max(counting.result(), 1, int(_task(progress, task).completed))
            progress.update(task, total=total, of=f"{total:,}")

    return done


async def rebuild(dsn: str, types: list[str], console: Console | None = None, batch: int = 5000) -> int:
    """Rebuild the types' projections; the progress shows from the start: a spinner and the events
    replayed so far while the events to replay are still being counted."""
    console = console or Console()
    tune_collector()  # as a serving process does: this one reads and forwards batches (app/collector.py)
    with Progress(*COLUMNS, console=console) as progress:
        setup = progress.add_task("checking projections", total=None, done="", of="", rate="")
        pool = await asyncpg.create_pool(dsn, min_size=2, max_size=6)  # two types' rebuilds at a time
        try:
            async with pool.acquire() as conn:
                await migrate(conn)
                await check_projections(conn)
            executor = replay_executor(await custom_definitions(pool))
            progress.remove_task(setup)

            async def one(t: str) -> int:
                task = progress.add_task(t, total=None, done="0", of="?", rate="-")

                def advance(n: int) -> None:
                    progress.advance(task, n)
                    state = _task(progress, task)
                    speed = state.speed
                    progress.update(task, done=f"{state.completed:,.0f}", rate=f"{speed:,.0f}" if speed else "-")

                counting = asyncio.create_task(pending_events(pool, t))
                counting.add_done_callback(_counted(progress, task))
                result = await rebuild_type(pool, t, batch=batch, progress=advance, executor=executor)
                await counting
                # the bar full (a type without events too: its bar's total is 1), the count as replayed
                done = max(int(_task(progress, task).completed), 1)
                replayed = f"{result.events:,}"
                progress.update(task, total=done, completed=done, done=replayed, of=replayed, final=True)
                return result.events

            with executor:
                total = sum(await each_type(await largest_first(pool, types), one))  # two types at a time
        finally:
            await pool.close()
    console.print(f"rebuilt {len(types)} type(s) from {total} events")
    return total


def _status_command(args: argparse.Namespace) -> int:
    return run_with_database("projections", args, lambda dsn: status(dsn, args.all))


def _types(args: argparse.Namespace) -> list[str]:
    if args.all:
        return list(resource_types())
    types = args.type or []
    unknown = [t for t in types if not is_resource_type(t)]
    if unknown or not types:
        raise CommandError(f"give --type with R4 resource types (unknown: {', '.join(unknown)}) or --all")
    return types


def _rebuild_command(args: argparse.Namespace) -> int:
    try:
        types = _types(args)
    except CommandError as exc:
        print(f"fhirledger projections: {exc}", file=sys.stderr)
        return 2
    return run_with_database("projections", args, lambda dsn: rebuild(dsn, types, batch=args.batch))


def register(sub: argparse._SubParsersAction) -> None:
    projections = sub.add_parser("projections", help="inspect and rebuild the projections")
    commands = projections.add_subparsers(dest="projections_command", required=True)
    status_parser = commands.add_parser("status", help="state, rows, checkpoint and lag of each projection")
    status_parser.add_argument("--all", action="store_true", help="list the projections of empty types too")
    database_options(status_parser)
    status_parser.set_defaults(func=_status_command)
    rebuild_parser = commands.add_parser("rebuild", help="replay the event log into fresh projections and swap")
    rebuild_parser.add_argument("--type", action="append", help="a resource type (repeatable)")
    rebuild_parser.add_argument("--all", action="store_true", help="every resource type")
    rebuild_parser.add_argument("--batch", type=int, default=5000, help="events per batch and checkpoint")
    database_options(rebuild_parser)
    rebuild_parser.set_defaults(func=_rebuild_command)
