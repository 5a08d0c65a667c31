"""Background jobs recorded in PostgreSQL (table ``jobs``) and run in-process by APScheduler, so
a restart resumes them: a job left ``running`` by a stopped server is taken up again (every job
is idempotent)."""

from __future__ import annotations

import logging

import asyncpg
import orjson

from app.jobs.bulk_import import run_import_job
from app.jobs.export import run_export
from app.jobs.export_store import JOB_KIND as EXPORT_JOB
from app.jobs.reindex import drop_param, rebuild_types, reindex_param

log = logging.getLogger("fhirledger.jobs")

_CLAIM = """
UPDATE jobs SET status = 'running', started_at = now()
WHERE id = (SELECT id FROM jobs WHERE status = 'pending' ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1)
RETURNING id, kind, params
"""


async def resume_interrupted(pool: asyncpg.Pool) -> int:
    """At start: jobs a previous process left running go back to the queue."""
    result = await pool.execute("UPDATE jobs SET status = 'pending' WHERE status = 'running'")
    return int(result.split()[-1])


async def run_pending(pool: asyncpg.Pool, limit: int = 10) -> int:
    """Run queued jobs one after another; returns how many ran."""
    ran = 0
    while ran < limit:
        job = await pool.fetchrow(_CLAIM)
        if job is None:
            return ran
        ran += 1
        job_id, kind, params = job["id"], job["kind"], orjson.loads(job["params"])

        async def report(progress: dict, job_id: int = job_id) -> None:
            await pool.execute(
                "UPDATE jobs SET progress = $2::jsonb WHERE id = $1", job_id, orjson.dumps(progress).decode()
            )

        try:
            if kind == "reindex-param":
                await reindex_param(pool, job_id, params["url"], report)
            elif kind == "drop-param":
                await drop_param(pool, params["url"], params.get("definition"), report)
            elif kind == "rebuild-types":
                await rebuild_types(pool, params["types"], report)
            elif kind == EXPORT_JOB:
                await run_export(pool, params["export"], report)
            elif kind == "bulk-import":
                await run_import_job(pool, job_id, params, report)
            else:
                raise ValueError(f"unknown job kind {kind!r}")
        except Exception as exc:  # a failed job is recorded, never crashes the server
            log.exception("job %s (%s) failed", job_id, kind)
            await pool.execute(
                "UPDATE jobs SET status = 'failed', error = $2, finished_at = now() WHERE id = $1", job_id, repr(exc)
            )
            continue
        await pool.execute("UPDATE jobs SET status = 'done', finished_at = now() WHERE id = $1", job_id)
    return ran
