"""Reading a background job's state (for ``GET [base]/$reindex-status/[id]``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg
import orjson

# The jobs table says 'pending'; clients are told 'queued'.
STATUS_NAMES = {"pending": "queued", "running": "running", "done": "done", "failed": "failed"}


@dataclass(frozen=True)
class JobStatus:
    id: int
    kind: str
    status: str  # queued | running | done | failed
    params: dict
    progress: dict
    error: str | None
    created: datetime
    started: datetime | None
    finished: datetime | None


async def job_status(pool: asyncpg.Pool, job_id: int) -> JobStatus | None:
    row = await pool.fetchrow(
        "SELECT id, kind, status, params, progress, error, created_at, started_at, finished_at FROM jobs WHERE id = $1",
        job_id,
    )
    if row is None:
        return None
    return JobStatus(
        row["id"],
        row["kind"],
        STATUS_NAMES.get(row["status"], row["status"]),
        orjson.loads(row["params"]),
        orjson.loads(row["progress"]) if row["progress"] else {},
        row["error"],
        row["created_at"],
        row["started_at"],
        row["finished_at"],
    )
