"""Queueing a background job: a row in the jobs table (run by app/jobs/runner.py). It sits below
every layer, so that a command can queue work without importing the jobs that run it."""

from __future__ import annotations

import asyncpg
import orjson

_QUEUE_LOCK = 7_245_003  # advisory-lock namespace: one queuer at a time per (kind, params)


async def queue_job(conn: asyncpg.Connection | asyncpg.Pool, kind: str, params: dict) -> int:
    return await conn.fetchval(
        "INSERT INTO jobs (kind, params) VALUES ($1, $2::jsonb) RETURNING id", kind, orjson.dumps(params).decode()
    )


async def queue_or_join(pool: asyncpg.Pool, kind: str, params: dict) -> tuple[int, bool]:
    """The id of a job doing this work, and whether it was already queued: a job of ``kind`` still
    waiting to start whose params contain ``params`` (e.g. a rebuild of every type covers a
    rebuild of one) is returned instead of queueing the same work again."""
    payload = orjson.dumps(params).decode()
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", _QUEUE_LOCK, kind)
        existing = await conn.fetchval(
            "SELECT id FROM jobs WHERE status = 'pending' AND kind = $1 AND params @> $2::jsonb ORDER BY id LIMIT 1",
            kind,
            payload,
        )
        if existing is not None:
            return existing, True
        return await queue_job(conn, kind, params), False
