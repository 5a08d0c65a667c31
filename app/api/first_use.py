"""What the first write of a resource type in a process builds, built in a worker thread: the
type's generated validity check (:mod:`app.validation.fast_accept`) and its search-row function
(:mod:`app.search_types.row_plan`); what all types share is built at start-up
(:func:`build_shared`), and a custom SearchParameter that makes a type's row function stale has it
built again the same way.

Built on the event loop, the first write of a type held the loop for as long as that took: about
75 ms for the first type of a server's worker process (what every type shares is built with it: a
fresh worker's first create took 87-92 ms, 21 ms now), a few milliseconds for each type after.
Meanwhile the worker accepted no connection, so the connections a client opened at that moment
all went to the other worker of ``serve --workers 2``, and stayed there: ``bench/crud.py``'s first
round of creates at 16 clients ran one worker with batches of one write per statement and the
other with seven, at 1,330-1,530 creates/s against 1,600-2,000 in the rounds after (its ratio to
the raw baseline 0.37 against 0.62). In a thread the build shares the interpreter with the loop,
which keeps accepting and serving the other requests."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from app.fhirspec.resource_types import resource_type_set
from app.search_types.row_plan import is_built, row_function
from app.validation import fast_accept


def _ready(resource_type: str) -> bool:
    return fast_accept.built(resource_type) and is_built(resource_type)


def _build(resource_types: list[str]) -> None:
    for resource_type in resource_types:
        fast_accept.prepare(resource_type)
        row_function(resource_type)


async def ready_to_write(resource_types: Iterable[str]) -> None:
    """Build what writes of ``resource_types`` need and this process has not built yet, off the
    event loop (names that are no resource type are left to the write to refuse)."""
    known = resource_type_set()
    missing = [t for t in set(resource_types) if t in known and not _ready(t)]
    if missing:
        await asyncio.to_thread(_build, sorted(missing))


WARMED = "Basic"
"""The type whose check and row function are built at start-up (:func:`build_shared`)."""


def build_shared() -> None:
    """At start-up, what the first type built in a process builds for all: the checks of the
    datatypes every resource shares (Meta, Extension, CodeableConcept, Reference…) and the FHIRPath
    type model the row functions are generated from. Building one small type's builds them (about
    75 ms after :func:`app.validation.warm`), after which a type costs a few milliseconds (built in
    a thread, :func:`ready_to_write`). Every type at start-up would cost 0.9 s more per process."""
    _build([WARMED])
