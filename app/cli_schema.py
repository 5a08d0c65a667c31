"""``fhirledger schema``: the DDL the registries generate (event log, current-state and search
tables, their indexes, the bookkeeping tables), exactly as the migrations apply it.

Every migration only executes SQL text, so running them against a recorder yields the schema
without a database; ``--resource T`` prints only the per-type tables of one resource type."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Coroutine
from pathlib import Path

from app.db.migrations import MIGRATIONS
from app.fhirspec.resource_types import resource_types
from app.projections.current_state import table_ddl
from app.projections.search_ddl import search_index_ddl


class _Recorder:
    """Stands in for a connection: keeps the statements a migration executes."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    async def execute(self, sql: str, *args: object) -> str:
        if args:
            raise RuntimeError("a migration passed arguments; the schema printer only takes DDL text")
        self.statements.append(sql.strip())
        return ""

    async def fetch(self, sql: str, *args: object) -> None:
        """A migration that reads the catalog to bring an older layout up to date (migration 13)
        finds nothing to read: the schema printed is that of a database this code creates."""
        return None


def _run(coroutine: Coroutine[object, None, None]) -> None:
    """Run a migration against the recorder: nothing in it waits, so one step completes it (and this
    works inside a running event loop too)."""
    try:
        coroutine.send(None)
    except StopIteration:
        return
    coroutine.close()
    raise RuntimeError("a migration waited on something other than the recorder")


def migrations_ddl() -> str:
    """Every migration's SQL, in order, each headed by its version and name."""
    out = []
    for version, name, migration in MIGRATIONS:
        recorder = _Recorder()
        _run(migration(recorder))  # type: ignore[arg-type]
        body = "\n".join(s if s.endswith(";") else s + ";" for s in recorder.statements)
        out.append(f"-- migration {version}: {name}\n{body}\n")
    return "\n".join(out)


def resource_ddl(resource_type: str) -> str:
    return f"-- {resource_type}: current state\n{table_ddl(resource_type)}\n-- {resource_type}: search index\n" + (
        search_index_ddl(resource_type) + "\n"
    )


def _schema_command(args: argparse.Namespace) -> int:
    if args.resource is not None and args.resource not in resource_types():
        print(f"fhirledger schema: unknown resource type {args.resource!r}", file=sys.stderr)
        return 2
    text = resource_ddl(args.resource) if args.resource else migrations_ddl()
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("schema", help="print the DDL the migrations apply (or one resource type's tables)")
    parser.add_argument("--resource", default=None, help="only this resource type's tables (e.g. Patient)")
    parser.add_argument("--output", default=None, help="write to this file instead of standard output")
    parser.set_defaults(func=_schema_command)
