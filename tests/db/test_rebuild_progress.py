"""`fhirledger projections rebuild` shows progress from its first second: a spinner while it checks
the projections, then the events replayed so far while the events to replay are still being
counted (on a large log the count alone takes a while)."""

from __future__ import annotations

import asyncio
import io
import re

import asyncpg
import httpx
import pytest
from rich.console import Console

import app.cli_projections as cli_projections
from app.projections.rebuild import pending_events


async def test_rebuild_replays_and_counts_before_the_total_is_known(
    client: httpx.AsyncClient, pool: asyncpg.Pool, database_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(3):
        r = await client.put(
            f"/fhir/Flag/p{i}",
            json={
                "resourceType": "Flag",
                "id": f"p{i}",
                "status": "active",
                "code": {"text": "x"},
                "subject": {"reference": "Patient/a"},
            },
        )
        assert r.status_code == 201, r.text
    events = await pending_events(pool, "Flag")  # these three, and those of Flags other tests wrote
    assert events >= 3

    async def slow_count(pool, resource_type: str) -> int:  # a log too large to count at once
        await asyncio.sleep(1.5)
        return await pending_events(pool, resource_type)

    monkeypatch.setattr(cli_projections, "pending_events", slow_count)
    out = io.StringIO()
    total = await cli_projections.rebuild(
        database_dsn, ["Flag"], console=Console(file=out, force_terminal=True, width=200)
    )
    text = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", out.getvalue())  # without colours and cursor moves
    assert total == events
    assert "checking projections" in text
    assert re.search(rf"\b{events}/\?", text), "the replayed events show while the total is still unknown"
    assert re.search(rf"\b{events}/{events}\b", text)
    assert f"rebuilt 1 type(s) from {events} events" in text


async def test_a_type_without_events_shows_none_replayed(database_dsn: str) -> None:
    """A rebuild of every type meets mostly types without events: each line says 0 of 0, not 1 of 0
    (the bar's total is 1 so that it shows full)."""
    out = io.StringIO()
    total = await cli_projections.rebuild(
        database_dsn, ["VisionPrescription"], console=Console(file=out, force_terminal=True, width=200)
    )
    text = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", out.getvalue())
    assert total == 0
    assert re.search(r"VisionPrescription\s.*\b0/0\b", text), text[-400:]
    assert "1/0" not in text


async def test_a_count_done_as_the_rebuild_ends_leaves_the_final_line(
    database_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The count of a type's events and its rebuild may end in one turn of the event loop (a type
    without events): the count's callback, run on the next turn, leaves the type's final 0/0."""
    counted = asyncio.Event()
    rebuild_type = cli_projections.rebuild_type

    async def count_when_rebuilt(pool: asyncpg.Pool, resource_type: str) -> int:
        await counted.wait()
        return 0

    async def rebuild_then_count(*args, **kwargs):  # type: ignore[no-untyped-def]
        result = await rebuild_type(*args, **kwargs)
        counted.set()  # the count ends on the next turn, and so does this rebuild
        await asyncio.sleep(0)
        return result

    monkeypatch.setattr(cli_projections, "pending_events", count_when_rebuilt)
    monkeypatch.setattr(cli_projections, "rebuild_type", rebuild_then_count)
    out = io.StringIO()
    await cli_projections.rebuild(
        database_dsn, ["VisionPrescription"], console=Console(file=out, force_terminal=True, width=200)
    )
    text = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", out.getvalue())
    final = text.rsplit("VisionPrescription", 1)[1].splitlines()[0]
    assert re.search(r"\b0/0\b", final), final
