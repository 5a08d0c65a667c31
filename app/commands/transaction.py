"""transaction and batch: ``POST [base]`` with a Bundle (https://hl7.org/fhir/R4/http.html#transaction).

A transaction is one database transaction and one append: all its events share one transaction
id in the log, so it is atomic by construction. Entries are processed in the spec's order
(DELETE, POST, PUT/PATCH, GET/HEAD); ``fullUrl``s are mapped to the ids the server assigns and
every reference to them is rewritten; conditional create/update/delete and conditional references
are resolved under advisory locks on their criteria, so concurrent identical conditional creates
make exactly one resource. A batch runs each entry as a transaction of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from app.commands.bundle_entries import PROCESSING_ORDER, BundleEntry, entry_error
from app.commands.conditional import conditional_target, criteria_key, strip_if_none_exist
from app.commands.cooperative import pause
from app.commands.create import decide_create, new_id
from app.commands.delete import decide_delete
from app.commands.patch import patched_resource
from app.commands.references import resolve_conditional_references, rewrite, unknown_local_references
from app.commands.result import WriteResult, WriteStatus, written
from app.commands.unit_of_work import WriteTransaction
from app.commands.update import decide_update
from app.commands.validate import check_resource
from app.errors import FhirError, Issue
from app.events.model import VersionEvent
from app.events.store import read_version
from app.projections.current_state import Head


@dataclass
class EntryResult:
    index: int
    status: int  # the entry's HTTP status code; the API adds the reason phrase
    location: str | None = None
    etag: str | None = None
    last_modified: datetime | None = None
    resource: bytes | None = None
    outcome: list[Issue] | None = None
    search: tuple[str, str] | None = None  # (type, query) of a search entry, answered by the caller


def prepare_entries(entries: list[BundleEntry], lenient: bool) -> None:
    """Validate every resource to be written before the transaction opens."""
    for entry in entries:
        if entry.method in ("POST", "PUT") and entry.resource is not None:
            resource = entry.resource
            if entry.method == "PUT" and entry.resource_id is not None:
                body_id = resource.get("id")
                if body_id is not None and body_id != entry.resource_id:
                    raise entry_error(
                        entry.index, f"the resource's id '{body_id}' does not match request.url '{entry.url}'"
                    )
            try:
                entry.warnings = check_resource(resource, lenient=lenient)
            except FhirError as exc:
                raise _at(entry, exc) from None


def _in_entry(entry: BundleEntry, expression: str) -> str:
    """``Patient.name[0]`` of an entry's resource → ``Bundle.entry[3].resource.name[0]``."""
    head, dot, rest = expression.partition(".")
    if head != entry.resource_type:
        return expression
    return f"{entry.where}.resource{dot}{rest}"


def _entry_paths(entry: BundleEntry, issue: Issue) -> tuple[str, ...]:
    return tuple(_in_entry(entry, e) for e in issue.expression)


def _at(entry: BundleEntry, exc: FhirError) -> FhirError:
    """The same error, naming the entry it came from."""
    prefix = f"{entry.where} ({entry.method} {entry.url[:80]})"
    if exc.diagnostics.startswith("Bundle.entry["):
        return exc
    issues = [
        replace(i, diagnostics=f"{prefix}: {i.diagnostics}", expression=_entry_paths(entry, i)) for i in exc.issues
    ]
    return FhirError(
        exc.status, exc.code, f"{prefix}: {exc.diagnostics}", exc.expression or (entry.where,), issues, exc.headers
    )


async def _bodies(tx: WriteTransaction, ordered: list[BundleEntry], mapping: dict[str, str]) -> dict[int, dict]:
    """entry index -> the resource it writes, its references to entries and conditional references
    resolved (the entries themselves stay as sent: run_write may run this again after contention)."""
    bodies: dict[int, dict] = {}
    for n, entry in enumerate(ordered):
        await pause(n)
        if entry.resource is None or entry.method not in ("POST", "PUT", "PATCH"):
            continue
        try:
            conditional = await resolve_conditional_references(entry.resource, tx.match, entry.where)
            body: dict = rewrite(entry.resource, {**mapping, **conditional})  # type: ignore[assignment]
            bodies[entry.index] = body
            unknown = unknown_local_references(body, mapping)
        except FhirError as exc:
            raise _at(entry, exc) from None
        if unknown:
            raise entry_error(
                entry.index,
                f"the reference '{unknown[0][:100]}' names no entry of this transaction (no entry has that fullUrl)",
            )
    return bodies


def _identities(ordered: list[BundleEntry], targets: dict[int, str | None]) -> dict[tuple[str, str], int]:
    """(type, id) -> index of the entry that writes it; a resource written twice is refused."""
    identities: dict[tuple[str, str], int] = {}
    for entry in ordered:
        rid = targets.get(entry.index)
        if rid is None or entry.method in ("GET", "HEAD"):
            continue
        key = (entry.resource_type, rid)
        if key in identities:
            raise entry_error(
                entry.index,
                f"{key[0]}/{key[1]} is also written by entry {identities[key]}; a "
                "transaction may touch each resource only once",
            )
        identities[key] = entry.index
    return identities


async def _heads(
    tx: WriteTransaction,
    identities: dict[tuple[str, str], int],
    entries: list[BundleEntry],
    existing: dict[int, str],
) -> dict[tuple[str, str], Head]:
    """The current versions of the resources written and of those conditional creates matched."""
    by_type: dict[str, list[str]] = {}
    for t, i in identities:
        by_type.setdefault(t, []).append(i)
    for entry in entries:
        if entry.index in existing:
            by_type.setdefault(entry.resource_type, []).append(existing[entry.index])
    heads: dict[tuple[str, str], Head] = {}
    for t, ids in by_type.items():
        for rid, head in (await tx.heads(t, ids)).items():
            heads[(t, rid)] = head
    return heads


async def run_entries(tx: WriteTransaction, entries: list[BundleEntry], representation: bool) -> list[EntryResult]:
    """Process the entries of one transaction inside ``tx``; results in the entries' order."""
    ordered = sorted(entries, key=lambda e: (PROCESSING_ORDER[e.method], e.index))
    targets: dict[int, str | None] = {}  # entry index -> resource id it writes (None: nothing to do)
    existing: dict[int, str] = {}  # conditional creates that matched
    criteria = [criteria_key(e.resource_type, _criteria(e)) for e in ordered if _criteria(e) is not None]
    await tx.lock_keys(criteria)
    for n, entry in enumerate(ordered):
        await pause(n)
        try:
            await _resolve_target(tx, entry, targets, existing)
        except FhirError as exc:
            raise _at(entry, exc) from None
    mapping = {
        e.full_url: f"{e.resource_type}/{targets[e.index] or existing.get(e.index)}"
        for e in entries
        if e.full_url and e.method in ("POST", "PUT") and (targets.get(e.index) or existing.get(e.index))
    }
    bodies = await _bodies(tx, ordered, mapping)
    identities = _identities(ordered, targets)
    await tx.lock_keys([f"{t}/{i}" for t, i in identities])
    heads = await _heads(tx, identities, entries, existing)
    events: list[VersionEvent] = []
    results: dict[int, EntryResult] = {}
    for n, entry in enumerate(ordered):
        await pause(n)
        if entry.method in ("GET", "HEAD"):
            continue
        try:
            event, result = _decide(
                tx, entry, bodies.get(entry.index, {}), targets.get(entry.index), existing.get(entry.index), heads
            )
        except FhirError as exc:
            raise _at(entry, exc) from None
        if event is not None:
            events.append(event)
        results[entry.index] = result
    if events:
        await tx.record(events)
    for entry in ordered:
        if entry.method in ("GET", "HEAD"):
            results[entry.index] = await _read(tx, entry)
    if not representation:
        for entry in entries:
            if entry.method not in ("GET", "HEAD"):
                results[entry.index].resource = None
    return [results[e.index] for e in entries]


def _criteria(entry: BundleEntry) -> str | None:
    if entry.method == "POST":
        return strip_if_none_exist(entry.if_none_exist) if entry.if_none_exist else None
    if entry.method in ("PUT", "DELETE", "PATCH") and entry.resource_id is None:
        return entry.query
    return None


async def _resolve_target(
    tx: WriteTransaction, entry: BundleEntry, targets: dict[int, str | None], existing: dict[int, str]
) -> None:
    criteria = _criteria(entry)
    if entry.method in ("GET", "HEAD"):
        targets[entry.index] = entry.resource_id
        return
    if criteria is None:
        targets[entry.index] = new_id() if entry.method == "POST" else entry.resource_id
        return
    ids = await tx.match(entry.resource_type, criteria)
    body_id = entry.resource.get("id") if entry.resource and entry.method == "PUT" else None
    target = conditional_target(entry.method, entry.resource_type, criteria, ids, body_id)
    targets[entry.index] = target.write_id
    if target.existing_id is not None:
        existing[entry.index] = target.existing_id


def _decide(
    tx: WriteTransaction,
    entry: BundleEntry,
    body: dict,
    rid: str | None,
    existing_id: str | None,
    heads: dict[tuple[str, str], Head],
) -> tuple[VersionEvent | None, EntryResult]:
    context = replace(tx.context, method=entry.method, url=entry.url)
    t = entry.resource_type
    if entry.method == "POST" and existing_id is not None:
        head = heads.get((t, existing_id))
        assert head is not None  # it matched, so it is current
        found = WriteResult(WriteStatus.EXISTING, t, existing_id, head.version, head.last_updated, head.resource)
        return None, _entry_result(entry.index, found)
    if rid is None:  # conditional delete matching nothing
        return None, _entry_result(entry.index, WriteResult(WriteStatus.UNCHANGED, t, "", None, None, None))
    head = heads.get((t, rid))
    if entry.method == "POST":
        event = decide_create(t, rid, body, tx.recorded_at(None), context)
    elif entry.method == "PUT":
        resource = {**body, "id": rid}
        event = decide_update(head, t, rid, resource, entry.if_match, tx.recorded_at(head), context)
    elif entry.method == "PATCH":
        if head is None or head.deleted or head.resource is None:
            raise FhirError(404 if head is None else 410, "not-found", f"{t}/{rid} does not exist to be patched")
        resource = patched_resource(head.resource, body, t, rid)
        check_resource(resource)
        event = decide_update(head, t, rid, resource, entry.if_match, tx.recorded_at(head), context)
    else:  # DELETE
        deletion = decide_delete(head, t, rid, entry.if_match, tx.recorded_at(head), context)
        if deletion is None:
            return None, _entry_result(entry.index, WriteResult(WriteStatus.UNCHANGED, t, rid, None, None, None))
        event = deletion
    return event, _entry_result(entry.index, written(event))


def _entry_result(index: int, out: WriteResult) -> EntryResult:
    """A write entry's response: 201 for a creation, 204 for a deletion (or nothing to delete), else 200."""
    if out.status in (WriteStatus.DELETED, WriteStatus.UNCHANGED):
        etag = f'W/"{out.version}"' if out.status is WriteStatus.DELETED else None
        return EntryResult(index, 204, etag=etag, last_modified=out.last_updated)
    code = 201 if out.status is WriteStatus.CREATED else 200
    return EntryResult(
        index,
        code,
        f"{out.resource_type}/{out.resource_id}/_history/{out.version}",
        f'W/"{out.version}"',
        out.last_updated,
        out.resource,
    )


async def _read(tx: WriteTransaction, entry: BundleEntry) -> EntryResult:
    t, rid = entry.resource_type, entry.resource_id
    if rid is None:  # a search: the read side answers it (after the writes, as the spec orders)
        return EntryResult(entry.index, 200, search=(t, entry.query or ""))
    heads = await tx.heads(t, [rid])
    head = heads.get(rid)
    if entry.version_id is not None:
        version = int(entry.version_id) if entry.version_id.isdigit() else -1
        stored = await read_version(tx.conn, t, rid, version) if 0 < version < 2**31 else None
        if stored is None or stored.resource is None:
            raise entry_error(entry.index, f"{t}/{rid}/_history/{entry.version_id} not found", 404, "not-found")
        return EntryResult(
            entry.index,
            200,
            None,
            f'W/"{entry.version_id}"',
            stored.recorded_at,
            stored.resource if entry.method == "GET" else None,
        )
    if head is None or head.deleted:
        status = 404 if head is None else 410
        raise entry_error(
            entry.index, f"{t}/{rid} {'is not known' if head is None else 'has been deleted'}", status, "not-found"
        )
    return EntryResult(
        entry.index,
        200,
        None,
        f'W/"{head.version}"',
        head.last_updated,
        head.resource if entry.method == "GET" else None,
    )
