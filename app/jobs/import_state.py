"""The state of ``$import`` jobs beside their row in ``jobs``: whether the client cancelled the
job (``DELETE`` on its status URL) and, once it finished, its result (the manifest the status URL
answers). Read by the status endpoint, written by the job (app/jobs/bulk_import.py)."""

from __future__ import annotations

import asyncpg
import orjson

IMPORT_JOBS_DDL = """
CREATE TABLE IF NOT EXISTS import_jobs (
    job_id     bigint PRIMARY KEY,
    cancelled  boolean NOT NULL DEFAULT false,
    result     jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);
"""

Conn = asyncpg.Connection | asyncpg.Pool


async def record(conn: Conn, job_id: int) -> None:
    await conn.execute("INSERT INTO import_jobs (job_id) VALUES ($1) ON CONFLICT DO NOTHING", job_id)


async def cancel(conn: Conn, job_id: int) -> bool:
    """Mark the job cancelled; a job not started yet never starts. False: no such import job."""
    found = await conn.fetchval("UPDATE import_jobs SET cancelled = true WHERE job_id = $1 RETURNING job_id", job_id)
    if found is None:
        return False
    await conn.execute(
        "UPDATE jobs SET status = 'failed', error = 'cancelled by the client', finished_at = now()"
        " WHERE id = $1 AND status = 'pending'",
        job_id,
    )
    return True


async def is_cancelled(conn: Conn, job_id: int) -> bool:
    return bool(await conn.fetchval("SELECT cancelled FROM import_jobs WHERE job_id = $1", job_id))


async def save_result(conn: Conn, job_id: int, result: dict) -> None:
    await conn.execute(
        "UPDATE import_jobs SET result = $2::jsonb WHERE job_id = $1", job_id, orjson.dumps(result).decode()
    )


async def read(conn: Conn, job_id: int) -> tuple[bool, dict | None] | None:
    """(cancelled, result) of an import job, or None when ``job_id`` is not one."""
    row = await conn.fetchrow("SELECT cancelled, result FROM import_jobs WHERE job_id = $1", job_id)
    if row is None:
        return None
    return row["cancelled"], orjson.loads(row["result"]) if row["result"] else None
