"""Running an import: units of the files are prepared in worker processes (parse, validate, stamp,
extract search values; :mod:`app.bulk.prepare`) while the main process writes the prepared ones in
batches (:mod:`app.bulk.batch`), in file order.

Memory stays bounded: a few units per worker are in flight and one batch is held. An interrupted
import is resumed by running it again: what is stored is skipped batch by batch.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import asyncpg

from app.bulk.batch import write_batch
from app.bulk.prepare import Prepared, Problem, prepare_document, prepare_lines
from app.bulk.sources import Document, Source, SourceError, Unit, read_document, units
from app.errors import Issue
from app.events.model import RequestContext
from app.projections.custom_params import load_definitions

BATCH = 2000
"""Resources per transaction (each holds this many per-resource locks until it commits)."""
MAX_KEPT_PROBLEMS = 1000


@dataclass
class ImportSummary:
    files: int = 0
    inputs: int = 0  # lines and Bundle entries read
    imported: int = 0
    skipped: int = 0  # already stored with the same content
    rejected: int = 0  # not valid, or not readable
    conflicts: int = 0  # stored with other content, or deleted
    by_type: Counter = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)  # the first MAX_KEPT_PROBLEMS
    elapsed: float = 0.0
    weight_done: int = 0

    def keep(self, problems: list[Problem]) -> None:
        room = MAX_KEPT_PROBLEMS - len(self.problems)
        if room > 0:
            self.problems += problems[:room]


class ImportCancelled(Exception):
    """The import was asked to stop; the batches written so far stay (a re-run resumes)."""


Progress = Callable[[ImportSummary], None]
ProblemSink = Callable[[Problem], None]
StopCheck = Callable[[], Awaitable[bool]]


def _init_worker(definitions: list[bytes]) -> None:
    """A worker process: the same search parameters as the database, custom ones included."""
    load_definitions(definitions)


def import_executor(definitions: list[bytes], workers: int) -> ProcessPoolExecutor:
    """``workers`` processes preparing units (``definitions``: the custom SearchParameters in use)."""
    return ProcessPoolExecutor(
        max_workers=workers, mp_context=get_context("spawn"), initializer=_init_worker, initargs=(definitions,)
    )


def run_unit(unit: Unit, context: RequestContext, lenient: bool) -> Prepared:
    """Prepare one unit (in a worker process)."""
    if isinstance(unit, Document):
        try:
            raw = read_document(Path(unit.path))
        except (SourceError, OSError, EOFError) as exc:
            return Prepared(problems=[Problem(unit.path, (Issue("error", "structure", str(exc)),))], inputs=1)
        return prepare_document(unit.path, raw, context, lenient)
    return prepare_lines(unit.path, unit.first_line, unit.lines, context, lenient, unit.resource_type)


@dataclass
class _Run:
    pool: asyncpg.Pool
    context: RequestContext
    batch: int
    summary: ImportSummary
    progress: Progress | None
    on_problem: ProblemSink | None
    parts: list[Prepared] = field(default_factory=list)
    held: int = 0
    weight: int = 0

    def problems(self, problems: list[Problem]) -> None:
        self.summary.keep(problems)
        if self.on_problem:
            for p in problems:
                self.on_problem(p)

    def add(self, part: Prepared, weight: int) -> None:
        self.summary.inputs += part.inputs
        self.summary.rejected += len(part.problems)
        self.problems(part.problems)
        self.parts.append(part)
        self.held += len(part.events)
        self.weight += weight

    async def flush(self) -> None:
        if self.parts:
            outcome = await write_batch(self.pool, self.context, self.parts)
            s = self.summary
            s.imported += len(outcome.imported)
            s.skipped += outcome.skipped
            s.conflicts += len(outcome.conflicts)
            s.by_type.update(e.resource_type for e in outcome.imported)
            self.problems(outcome.conflicts)
        self.summary.weight_done += self.weight
        self.parts, self.held, self.weight = [], 0, 0
        if self.progress:
            self.progress(self.summary)


async def import_files(
    pool: asyncpg.Pool,
    files: list[Path | Source],
    context: RequestContext,
    *,
    executor: Executor | None = None,
    workers: int = 1,
    batch: int = BATCH,
    lenient: bool = False,
    progress: Progress | None = None,
    on_problem: ProblemSink | None = None,
    should_stop: StopCheck | None = None,
) -> ImportSummary:
    """Import ``files`` (see :mod:`app.bulk.sources`); ``executor`` prepares the units (None: a
    thread of this process) with ``workers`` workers; six units per worker are kept in flight, so the
    workers carry on while a batch is written."""
    started = time.monotonic()
    run = _Run(pool, context, batch, ImportSummary(files=len(files)), progress, on_problem)
    loop = asyncio.get_running_loop()
    source = units([f if isinstance(f, Source) else Source(f, str(f)) for f in files])
    pending: deque[tuple[asyncio.Future, int]] = deque()

    def submit() -> None:
        unit = next(source, None)
        if unit is not None:
            pending.append((loop.run_in_executor(executor, run_unit, unit, context, lenient), unit.weight))

    for _ in range(max(4, workers * 6)):
        submit()
    try:
        while pending:
            future, weight = pending.popleft()
            submit()
            run.add(await future, weight)
            if run.held >= batch:
                await run.flush()
                if should_stop is not None and await should_stop():
                    raise ImportCancelled()
        await run.flush()
    finally:
        for future, _ in pending:
            future.cancel()
        run.summary.elapsed = time.monotonic() - started
    return run.summary
