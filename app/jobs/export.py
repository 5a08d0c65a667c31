"""The bulk export job (https://hl7.org/fhir/uv/bulkdata/export.html): writes the resources of one
export's snapshot (:mod:`app.events.snapshot`) to ndjson files, type after type.

For each type it streams the latest version in the snapshot of each resource, in id order, in
scans of :data:`SCAN_LIMIT` resources through a server-side cursor, and handles them in batches of
:data:`CHUNK` (memory stays bounded by a chunk, whatever the export's size): deletions are left
out; Patient/Group exports keep the resources in the compartments of their patients (judged on
the exported version); ``_typeFilter`` keeps the matches (:mod:`app.queries.export_filter`; a
resource changed after the snapshot is left out with a warning); ``_elements`` cuts each resource.

Restart-safe: a type finished is recorded in the export's progress and not written again; a type
cut short is written again from its start. Cancellation is noticed at the next chunk.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from datetime import datetime
from pathlib import Path

import asyncpg
import orjson

from app.errors import Issue, operation_outcome
from app.events.snapshot import SnapshotVersion, latest_versions, types_present, versions_at
from app.jobs.export_files import TypeWriter, remove_directory, remove_type_files
from app.jobs.export_store import ExportRecord, finish_export, save_progress, start_export
from app.queries.export_compartment import in_compartments
from app.queries.export_filter import match_filters
from app.queries.subset import subset

log = logging.getLogger("fhirledger.jobs")

SCAN_LIMIT = 10_000
CHUNK = 1000
SAVE_SECONDS = 1.0  # progress is recorded (and cancellation noticed) at most this often
MAX_LISTED_IDS = 200
Report = Callable[[dict], Awaitable[None]]


class Cancelled(Exception):
    """The export was cancelled (or expired) while the job ran."""


async def run_export(pool: asyncpg.Pool, export_id: str, report: Report) -> None:
    """Run (or resume) the export ``export_id``; a failure is recorded on the export and raised."""
    record = await start_export(pool, export_id)
    if record is None:
        return  # cancelled before it started
    try:
        await _run(pool, record, report)
    except Cancelled:
        remove_directory(record.directory)
    except Exception as exc:
        failed = await finish_export(
            pool, export_id, None, f"The export failed: {type(exc).__name__}: {str(exc)[:500]}"
        )
        remove_directory(record.directory)
        if failed:  # else it was cancelled meanwhile (its files pulled away under the writer)
            raise


async def _run(pool: asyncpg.Pool, record: ExportRecord, report: Report) -> None:
    directory = Path(record.directory)
    directory.mkdir(parents=True, exist_ok=True)
    progress = dict(record.progress)
    done: dict[str, dict] = progress.setdefault("done", {})
    patients, notes = await _patients(pool, record)
    types: list[str] = record.params["types"]
    present = await types_present(pool)
    for kind in types:
        if kind not in present:  # never written: nothing to scan
            done.setdefault(kind, {"files": [], "changed": [], "changed_count": 0})
        if kind in done:
            continue
        remove_type_files(directory, kind)
        progress.update(current=kind, types=len(types), types_done=len(done))
        done[kind] = await _export_type(pool, record, kind, patients, progress)
        await _save(pool, record.id, progress)
        await report({"types": len(types), "types_done": len(done), "resources": _total(done)})
    output = _manifest_output(directory, done, notes)
    if not await finish_export(pool, record.id, output):
        raise Cancelled()


def _total(done: dict[str, dict]) -> int:
    return sum(n for entry in done.values() for _, n in entry["files"])


async def _save(pool: asyncpg.Pool, export_id: str, progress: dict) -> None:
    if not await save_progress(pool, export_id, progress):
        raise Cancelled()


async def _patients(pool: asyncpg.Pool, record: ExportRecord) -> tuple[frozenset[str] | None, list[Issue]]:
    """The patients whose compartments a Patient/Group export covers (None: every patient), and
    notes about group members that are not patients."""
    params = record.params
    if params["level"] == "patient":
        given = params.get("patients")
        return (frozenset(given) if given is not None else None), []
    if params["level"] != "group":
        return None, []
    found = (await versions_at(pool, "Group", [params["group"]], record.snapshot)).get(params["group"])
    if found is None or found.resource is None:
        raise ValueError(f"Group/{params['group']} is not in the export's snapshot")
    members, notes = group_members(orjson.loads(found.resource))
    given = params.get("patients")
    return (members if given is None else members & frozenset(given)), notes


def group_members(group: dict) -> tuple[frozenset[str], list[Issue]]:
    """The active Patient members of a Group (``member.entity``), and notes about the others."""
    ids: set[str] = set()
    others: list[str] = []
    for member in group.get("member") or []:
        if not isinstance(member, dict) or member.get("inactive") is True:
            continue
        reference = str((member.get("entity") or {}).get("reference") or "")
        parts = reference.split("/")
        if len(parts) >= 2 and parts[-2] == "Patient" and parts[-1]:
            ids.add(parts[-1])
        elif len(parts) >= 4 and parts[-4] == "Patient" and parts[-2] == "_history":
            ids.add(parts[-3])
        else:
            others.append(reference[:100] or "(no reference)")
    notes = []
    if others:
        listed = ", ".join(others[:MAX_LISTED_IDS])
        text = f"{len(others)} member(s) of the Group are not Patient references and were not followed: {listed}"
        notes.append(Issue("warning", "not-supported", text))
    return frozenset(ids), notes


async def _export_type(
    pool: asyncpg.Pool, record: ExportRecord, kind: str, patients: frozenset[str] | None, progress: dict
) -> dict:
    """Write one type's files; returns ``{"files": [[name, count], ...], "changed": [...], "changed_count": n}``."""
    run = _TypeExport(pool, record, kind, patients, progress)
    try:
        after: str | None = None
        while True:
            async with pool.acquire() as conn:
                scanned, after = await run.scan(conn, after)
            if scanned < SCAN_LIMIT:
                break
            await _save(pool, record.id, run.progress())
    finally:
        run.writer.close()
    return {"files": [list(f) for f in run.writer.files], "changed": run.changed, "changed_count": run.changed_count}


class _TypeExport:
    """The state of one type's export: its writer, and the resources left out as changed."""

    def __init__(
        self, pool: asyncpg.Pool, record: ExportRecord, kind: str, patients: frozenset[str] | None, progress: dict
    ) -> None:
        self.pool, self.record, self.kind, self.patients, self.base_progress = pool, record, kind, patients, progress
        self.writer = TypeWriter(Path(record.directory), kind)
        self.changed: list[str] = []
        self.changed_count = 0
        self.saved = time.monotonic()
        since = record.params.get("since")
        self.since = datetime.fromisoformat(since) if since else None

    def progress(self) -> dict:
        return {**self.base_progress, "resources": self.writer.count}

    async def scan(self, conn: asyncpg.Connection, after: str | None) -> tuple[int, str | None]:
        """One scan of up to SCAN_LIMIT resources after ``after``; (resources scanned, last id)."""
        scanned = 0
        batches = latest_versions(conn, self.kind, self.record.snapshot, after, SCAN_LIMIT, self.since, CHUNK)
        async with aclosing(batches):  # closed (its transaction ended) even when cancelled
            async for batch in batches:
                scanned += len(batch)
                after = batch[-1].resource_id
                await self.flush(conn, [v for v in batch if not v.deleted])
                if time.monotonic() - self.saved > SAVE_SECONDS:
                    await _save(self.pool, self.record.id, self.progress())
                    self.saved = time.monotonic()
        return scanned, after

    async def flush(self, conn: asyncpg.Connection, chunk: list[SnapshotVersion]) -> None:
        params, kind = self.record.params, self.kind
        if params["level"] != "system":
            chunk = [v for v in chunk if in_compartments(orjson.loads(v.resource or b"{}"), self.patients)]
        filters = params["filters"].get(kind)
        if filters and chunk:
            result = await match_filters(conn, kind, filters, {v.resource_id: v.version for v in chunk}, params["base"])
            chunk = [v for v in chunk if v.resource_id in result.matched]
            self.changed_count += len(result.changed)
            self.changed.extend(result.changed[: max(0, MAX_LISTED_IDS - len(self.changed))])
        elements = (params.get("elements") or {}).get(kind)
        if elements:
            self.writer.write_all([subset(v.resource, kind, None, elements) for v in chunk if v.resource])
        else:
            self.writer.write_all([v.resource for v in chunk if v.resource])


def _changed_note(kind: str, entry: dict) -> Issue | None:
    count = entry.get("changed_count", 0)
    if not count:
        return None
    listed = ", ".join(entry["changed"]) + (" …" if count > len(entry["changed"]) else "")
    text = (
        f"{count} {kind} resource(s) changed after the export's snapshot, so _typeFilter could not be "
        f"evaluated on the version in the snapshot; they were left out: {listed}"
    )
    return Issue("warning", "incomplete", text)


def _manifest_output(directory: Path, done: dict[str, dict], notes: list[Issue]) -> dict:
    """The manifest's ``output`` and ``error`` entries (file names; the status route adds URLs);
    writes ``errors.ndjson`` when there is anything to say."""
    output = [
        {"type": kind, "file": name, "count": count}
        for kind, entry in done.items()
        for name, count in entry["files"]
        if count
    ]
    issues = [*notes, *(n for kind, entry in done.items() if (n := _changed_note(kind, entry)))]
    errors = []
    if issues:
        lines = b"".join(orjson.dumps(operation_outcome([issue])) + b"\n" for issue in issues)
        (directory / "errors.ndjson").write_bytes(lines)
        errors.append({"type": "OperationOutcome", "file": "errors.ndjson", "count": len(issues)})
    return {"output": output, "error": errors}
