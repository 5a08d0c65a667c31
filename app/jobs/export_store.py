"""The record of each bulk export (table ``bulk_export``): what was asked, by whom, the snapshot it
reads, its state and, once complete, its files. The kick-off writes it with its job (one
transaction); the job (app/jobs/export.py), the status and file routes, cancellation and the TTL
cleanup read and update it.

States: ``accepted`` (queued) → ``running`` → ``completed`` | ``failed``; ``cancelled`` (by a
``DELETE`` of its status URL) and ``expired`` (files removed after the TTL) are final.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg
import orjson

from app.job_queue import queue_job

Conn = asyncpg.Connection | asyncpg.Pool
JOB_KIND = "bulk-export"

BULK_EXPORT_DDL = """
CREATE TABLE IF NOT EXISTS bulk_export (
    id               text PRIMARY KEY,
    job_id           bigint,
    request          text NOT NULL,
    params           jsonb NOT NULL,
    owner            jsonb NOT NULL,
    requires_token   boolean NOT NULL,
    directory        text NOT NULL,
    ttl_hours        double precision NOT NULL,
    snapshot         text NOT NULL,
    transaction_time timestamptz NOT NULL,
    status           text NOT NULL DEFAULT 'accepted'
                     CHECK (status IN ('accepted', 'running', 'completed', 'failed', 'cancelled', 'expired')),
    progress         jsonb NOT NULL DEFAULT '{}',
    output           jsonb,
    error            text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    expires_at       timestamptz
);
CREATE INDEX IF NOT EXISTS bulk_export_expires ON bulk_export (expires_at) WHERE status IN ('completed', 'failed');
"""

_COLUMNS = (
    "id, request, params, owner, requires_token, directory, ttl_hours, snapshot, transaction_time, status,"
    " progress, output, error, created_at, finished_at, expires_at"
)


@dataclass(frozen=True)
class ExportRecord:
    id: str
    request: str
    params: dict
    owner: dict  # {"sub", "client"} of the kick-off's token (None values when authorization is off)
    requires_token: bool
    directory: str
    ttl_hours: float
    snapshot: str
    transaction_time: datetime
    status: str
    progress: dict
    output: dict | None  # {"output": [...], "error": [...]} once completed
    error: str | None
    created_at: datetime
    finished_at: datetime | None
    expires_at: datetime | None


def _json(value: object) -> str:
    return orjson.dumps(value).decode()


def _record(row: asyncpg.Record) -> ExportRecord:
    data = dict(row)
    for key in ("params", "owner", "progress", "output"):
        if data[key] is not None:
            data[key] = orjson.loads(data[key])
    return ExportRecord(**data)


async def create_export(pool: asyncpg.Pool, record: ExportRecord) -> None:
    """Record the export and queue its job, in one transaction."""
    async with pool.acquire() as conn, conn.transaction():
        job = await queue_job(conn, JOB_KIND, {"export": record.id})
        await conn.execute(
            "INSERT INTO bulk_export (id, job_id, request, params, owner, requires_token, directory, ttl_hours,"
            " snapshot, transaction_time) VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6, $7, $8, $9, $10)",
            record.id,
            job,
            record.request,
            _json(record.params),
            _json(record.owner),
            record.requires_token,
            record.directory,
            record.ttl_hours,
            record.snapshot,
            record.transaction_time,
        )


async def load_export(conn: Conn, export_id: str) -> ExportRecord | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM bulk_export WHERE id = $1", export_id)
    return _record(row) if row else None


async def start_export(conn: Conn, export_id: str) -> ExportRecord | None:
    """Mark an accepted (or interrupted, still running) export running; None if it is over."""
    row = await conn.fetchrow(
        f"UPDATE bulk_export SET status = 'running' WHERE id = $1 AND status IN ('accepted', 'running')"
        f" RETURNING {_COLUMNS}",
        export_id,
    )
    return _record(row) if row else None


async def save_progress(conn: Conn, export_id: str, progress: dict) -> bool:
    """Record the progress; False when the export is no longer running (cancelled meanwhile)."""
    result = await conn.execute(
        "UPDATE bulk_export SET progress = $2::jsonb WHERE id = $1 AND status = 'running'", export_id, _json(progress)
    )
    return result.split()[-1] == "1"


async def finish_export(conn: Conn, export_id: str, output: dict | None, error: str | None = None) -> bool:
    """Completed (with ``output``) or failed (with ``error``); the TTL runs from now."""
    result = await conn.execute(
        "UPDATE bulk_export SET status = $2, output = $3::jsonb, error = $4, finished_at = now(),"
        " expires_at = now() + make_interval(secs => ttl_hours * 3600) WHERE id = $1 AND status = 'running'",
        export_id,
        "failed" if error is not None else "completed",
        None if output is None else _json(output),
        error,
    )
    return result.split()[-1] == "1"


async def cancel_export(conn: Conn, export_id: str) -> ExportRecord | None:
    """Mark an export cancelled (from any state but cancelled and expired); its record before."""
    row = await conn.fetchrow(
        f"WITH before AS (SELECT {_COLUMNS} FROM bulk_export WHERE id = $1 FOR UPDATE)"
        " UPDATE bulk_export e SET status = 'cancelled', finished_at = now() FROM before"
        " WHERE e.id = before.id AND before.status NOT IN ('cancelled', 'expired')"
        f" RETURNING {', '.join('before.' + c.strip() for c in _COLUMNS.split(','))}",
        export_id,
    )
    return _record(row) if row else None


async def expire_due(conn: Conn, now: datetime) -> list[ExportRecord]:
    """Mark the exports whose files are due for removal expired; returns them (files still there)."""
    rows = await conn.fetch(
        "UPDATE bulk_export SET status = 'expired' WHERE status IN ('completed', 'failed') AND expires_at <= $1"
        f" RETURNING {_COLUMNS}",
        now,
    )
    return [_record(r) for r in rows]
