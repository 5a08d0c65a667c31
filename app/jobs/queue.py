"""Queueing a background job (run by app/jobs/runner.py)."""

from __future__ import annotations

import asyncpg
import orjson


async def queue_job(conn: asyncpg.Connection | asyncpg.Pool, kind: str, params: dict) -> int:
    return await conn.fetchval(
        "INSERT INTO jobs (kind, params) VALUES ($1, $2::jsonb) RETURNING id", kind, orjson.dumps(params).decode()
    )
