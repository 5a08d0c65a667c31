"""The ``$import`` job: read the ndjson inputs the kick-off named and import them with the bulk
importer (app/bulk), then record the result the status URL answers.

``file://`` URLs were checked at kick-off to lie under ``FHIRLEDGER_IMPORT_DIR`` and are checked
again here (the directory's content may have changed). ``http(s)://`` URLs are downloaded to a
temporary file with httpx, bounded in bytes and time; an input that cannot be read is reported in
the result and the others carry on. The client may cancel (``DELETE`` on the status URL): the job
stops after the batch it is writing; what was written stays (a new ``$import`` skips it).
"""

from __future__ import annotations

import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

import asyncpg
import httpx

from app.bulk.pipeline import ImportCancelled, ImportSummary, import_executor, import_files
from app.bulk.prepare import Problem
from app.bulk.sources import Source
from app.errors import Issue
from app.events.model import RequestContext
from app.fhirtime import format_instant
from app.jobs import import_state
from app.jobs.reindex import Report
from app.projections.rebuild import custom_definitions

MAX_LISTED = 1000


class InputError(Exception):
    """An input URL that cannot be read (reported in the result)."""


def local_path(url: str, import_dir: str | None) -> Path:
    """The file a ``file://`` URL names, which must lie under ``import_dir``."""
    if not import_dir:
        raise InputError(f"{url}: file:// URLs are refused (FHIRLEDGER_IMPORT_DIR is not set on this server)")
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise InputError(f"{url}: a file:// URL must name a file of this server (no host)")
    root = Path(import_dir).resolve()
    path = Path(unquote(parts.path)).resolve()
    if not path.is_relative_to(root):
        raise InputError(f"{url}: file:// URLs must name a file under {root} (FHIRLEDGER_IMPORT_DIR)")
    if not path.is_file():
        raise InputError(f"{url}: no such file under {root}")
    return path


async def download(url: str, target: Path, max_bytes: int, timeout: float) -> Path:
    """Stream an ``http(s)://`` URL into ``target`` (at most ``max_bytes``, within ``timeout`` s)."""
    deadline = time.monotonic() + timeout
    try:
        async with httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=10.0), follow_redirects=True) as client:
            async with client.stream("GET", url, headers={"Accept": "application/fhir+ndjson"}) as response:
                if response.status_code != 200:
                    raise InputError(f"{url}: the server answered {response.status_code}")
                size = 0
                with target.open("wb") as out:
                    async for chunk in response.aiter_raw():
                        size += len(chunk)
                        if size > max_bytes:
                            raise InputError(f"{url}: larger than {max_bytes:,} bytes (FHIRLEDGER_IMPORT_MAX_BYTES)")
                        if time.monotonic() > deadline:
                            raise InputError(f"{url}: not downloaded within {timeout:.0f} s")
                        out.write(chunk)
    except httpx.HTTPError as exc:
        raise InputError(f"{url}: could not be downloaded ({type(exc).__name__}: {exc})") from None
    return target


async def _sources(params: dict, scratch: Path) -> tuple[list[Source], list[Problem]]:
    sources: list[Source] = []
    problems: list[Problem] = []
    for i, item in enumerate(params["inputs"]):
        url, resource_type = item["url"], item.get("type")
        try:
            if url.startswith("file:"):
                path = local_path(url, params.get("import_dir"))
            else:
                path = await download(url, scratch / f"input{i}", params["max_bytes"], params["timeout"])
        except InputError as exc:
            problems.append(Problem(url, (Issue("error", "not-found", str(exc)),)))
            continue
        sources.append(Source(path, url, resource_type, ndjson=True))
    return sources, problems


def _issues(problems: list[Problem], total: int) -> list[dict]:
    """The issues of the first :data:`MAX_LISTED` problems, each prefixed by where it was."""
    out = [
        {"severity": i.severity, "code": i.code, "diagnostics": f"{p.where}: {i.diagnostics}"}
        | ({"expression": list(i.expression)} if i.expression else {})
        for p in problems[:MAX_LISTED]
        for i in p.issues
    ]
    if total > min(len(problems), MAX_LISTED):
        more = total - min(len(problems), MAX_LISTED)
        out.append({"severity": "information", "code": "informational", "diagnostics": f"{more} more not listed"})
    return out or [{"severity": "information", "code": "informational", "diagnostics": "every resource imported"}]


def result_of(params: dict, summary: ImportSummary, input_problems: list[Problem], finished: str) -> dict:
    """The manifest of a finished import (what the status URL answers with 200)."""
    not_imported = summary.rejected + summary.conflicts + len(input_problems)
    issues = _issues(input_problems + summary.problems, not_imported)
    return {
        "transactionTime": finished,
        "request": params["request"],
        "requiresAccessToken": False,
        "output": [{"type": t, "count": n} for t, n in sorted(summary.by_type.items())],
        "skipped": summary.skipped,
        "error": [{"type": "OperationOutcome", "count": not_imported}],
        "outcome": {"resourceType": "OperationOutcome", "issue": issues},
    }


async def run_import_job(pool: asyncpg.Pool, job_id: int, params: dict, report: Report) -> None:
    if await import_state.is_cancelled(pool, job_id):
        return
    context = RequestContext("PUT", "", **params["context"])
    latest: list[ImportSummary] = []

    async def should_stop() -> bool:  # after each batch: the progress the status URL shows
        s = latest[-1]
        await report({"resources": s.imported, "skipped": s.skipped, "rejected": s.rejected + s.conflicts})
        return await import_state.is_cancelled(pool, job_id)

    with tempfile.TemporaryDirectory(prefix="fhirledger-import-") as scratch:
        sources, input_problems = await _sources(params, Path(scratch))
        workers = os.cpu_count() or 2
        with import_executor(await custom_definitions(pool), workers) as executor:
            try:
                summary = await import_files(
                    pool,
                    list(sources),
                    context,
                    executor=executor,
                    workers=workers,
                    progress=latest.append,
                    should_stop=should_stop,
                )
            except ImportCancelled:
                return
    finished = format_instant(datetime.now(UTC))
    await import_state.save_result(pool, job_id, result_of(params, summary, input_problems, finished))
