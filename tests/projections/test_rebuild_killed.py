"""A rebuild process killed with SIGKILL resumes from its checkpoint; the live projection is
never half-built."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time

import asyncpg
import orjson

from app.commands.stamp import stamp
from app.fhirtime import now_millis
from tests.projections.test_rebuild import dump

COLUMNS = ["resource_type", "resource_id", "version", "kind", "resource", "recorded_at", "method", "url"]


async def _projected(pool: asyncpg.Pool, n: int) -> None:
    """``n`` Media events appended and projected by a rebuild, so the live tables are complete."""
    from app.projections.rebuild import rebuild_type

    now = now_millis()
    rows = []
    for i in range(n):
        rid = f"kill-{i:05d}"
        body = {
            "resourceType": "Media",
            "status": "completed",
            "content": {"contentType": "image/png"},
            "note": [{"text": f"m{i}"}],
        }
        rows.append(("Media", rid, 1, "created", stamp(body, rid, 1, now), now, "POST", "Media"))
    async with pool.acquire() as conn:
        await conn.copy_records_to_table("event_log", records=rows, columns=COLUMNS)
    await rebuild_type(pool, "Media")


async def test_killed_rebuild_resumes_from_its_checkpoint(pool: asyncpg.Pool, database_dsn: str) -> None:
    await _projected(pool, 1500)
    before = await dump(pool, "Media")
    cmd = [
        sys.executable,
        "-m",
        "app.cli",
        "projections",
        "rebuild",
        "--type",
        "Media",
        "--batch",
        "20",
        "--database-url",
        database_dsn,
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = 0
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            state = await pool.fetchval("SELECT rebuild FROM projection_state WHERE name = 'current_state:Media'")
            checkpoint = orjson.loads(state)["checkpoint"] if state else 0
            if checkpoint > 0:
                break
            await asyncio.sleep(0.05)
        assert proc.poll() is None, "the rebuild finished before it could be killed; give it more events"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert checkpoint > 0
    assert await dump(pool, "Media") == before, "the live projection is untouched by the killed rebuild"
    from app.projections.rebuild import rebuild_type

    result = await rebuild_type(pool, "Media", batch=500)
    assert result.resumed_from >= checkpoint
    assert await dump(pool, "Media") == before
    assert await pool.fetchval("SELECT rebuild FROM projection_state WHERE name = 'current_state:Media'") is None
