"""transaction and batch: ``POST [base]`` with a Bundle (https://hl7.org/fhir/R4/http.html#transaction).

A transaction is one database transaction and one append: all its events share one transaction
id in the log, so it is atomic by construction. Entries are processed in the spec's order
(DELETE, POST, PUT/PATCH, GET/HEAD). First every entry is aimed: conditional criteria are locked
(all at once, in one order) and matched before any entry writes, ``fullUrl``s are mapped to the
ids the server assigns and every reference to them is rewritten, and a resource written by two
entries is refused. Then each entry runs the same write command as the HTTP interaction, with its
target, through an :class:`EntryTransaction`; the events of all entries are appended together. A
batch runs each entry as a transaction of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from app.commands.bundle_commands import at_entry, entry_command, entry_criteria
from app.commands.bundle_entries import PROCESSING_ORDER, BundleEntry, entry_error
from app.commands.conditional import Target, conditional_target, criteria_key
from app.commands.cooperative import pause
from app.commands.references import resolve_conditional_references, rewrite_sites, sites, unknown_local_references
from app.commands.result import WriteResult, written
from app.commands.unit_of_work import WriteTransaction
from app.errors import FhirError
from app.events.model import RequestContext, VersionEvent
from app.events.store import read_version
from app.identity import new_id
from app.projections.current_state import Head


@dataclass(frozen=True)
class EntryRead:
    """A read entry (``GET``/``HEAD [type]/[id]``, or a ``_history`` version), read inside the
    transaction after its writes; ``resource`` is None for a HEAD."""

    version: str
    last_updated: datetime
    resource: bytes | None


@dataclass(frozen=True)
class EntrySearch:
    """A search entry (``GET [type]?query``), answered by the read side after the transaction."""

    resource_type: str
    query: str


EntryOutcome = WriteResult | EntryRead | EntrySearch


class EntryTransaction(WriteTransaction):
    """The entries' handle on the Bundle's write transaction (one per request method and URL, as
    recorded on their events): the engine already holds the locks of every resource the Bundle
    writes and read their current versions (``heads``), so ``lock`` and ``head`` cost nothing;
    ``write`` keeps the event for the Bundle's one append."""

    def __init__(
        self,
        tx: WriteTransaction,
        context: RequestContext,
        heads: dict[tuple[str, str], Head],
        pending: list[VersionEvent],
    ) -> None:
        super().__init__(tx.conn, context)
        self.now = tx.now
        self._tx = tx
        self._heads = heads
        self._pending = pending

    async def lock(self, resource_type: str, resource_id: str) -> None:
        return None

    async def head(self, resource_type: str, resource_id: str) -> Head | None:
        return self._heads.get((resource_type, resource_id))

    async def match(self, resource_type: str, query: str) -> list[str]:
        return await self._tx.match(resource_type, query)

    async def write(self, event: VersionEvent) -> WriteResult:
        self._pending.append(event)
        return written(event)  # its position is known once the Bundle's events are appended


async def run_entries(tx: WriteTransaction, entries: list[BundleEntry]) -> list[EntryOutcome]:
    """Process the entries of one transaction inside ``tx``; outcomes in the entries' order."""
    ordered = sorted(entries, key=lambda e: (PROCESSING_ORDER[e.method], e.index))
    writes = [e for e in ordered if e.method not in ("GET", "HEAD")]
    await tx.lock_keys([criteria_key(e.resource_type, c) for e in writes if (c := entry_criteria(e)) is not None])
    targets: dict[int, Target] = {}
    for n, entry in enumerate(writes):
        await pause(n)
        try:
            targets[entry.index] = await _aim(tx, entry)
        except FhirError as exc:
            raise at_entry(entry, exc) from None
    mapping = {
        e.full_url: f"{e.resource_type}/{rid}"
        for e in writes
        if e.full_url and e.method in ("POST", "PUT") and (rid := _written_or_found(targets[e.index]))
    }
    bodies = await _bodies(tx, writes, mapping)
    identities = _identities(writes, targets)
    # a POST's new id is known to no one else and has no version yet: no lock, no head to read
    known = {e.index for e in writes if e.method != "POST" or entry_criteria(e) is not None}
    await tx.lock_keys([f"{t}/{i}" for (t, i), index in identities.items() if index in known])
    heads = await _heads(tx, [e for e in writes if e.index in known], targets)
    outcomes: dict[int, EntryOutcome] = {}
    await _write_all(tx, writes, targets, bodies, heads, outcomes)
    for entry in ordered:
        if entry.method in ("GET", "HEAD"):
            outcomes[entry.index] = await _read(tx, entry)
    return [outcomes[e.index] for e in entries]


def _written_or_found(target: Target) -> str | None:
    return target.write_id or target.existing_id


async def _aim(tx: WriteTransaction, entry: BundleEntry) -> Target:
    """The entry's target, from its id or its criteria (matched now, before any entry writes)."""
    criteria = entry_criteria(entry)
    if criteria is None:
        return Target(new_id() if entry.method == "POST" else entry.resource_id)
    ids = await tx.match(entry.resource_type, criteria)
    body_id = entry.resource.get("id") if entry.resource and entry.method == "PUT" else None
    return conditional_target(entry.method, entry.resource_type, criteria, ids, body_id)


async def _bodies(tx: WriteTransaction, writes: list[BundleEntry], mapping: dict[str, str]) -> dict[int, dict]:
    """entry index -> the resource it writes, its references to entries and conditional references
    resolved (the entries themselves stay as sent: run_write may run this again after contention)."""
    bodies: dict[int, dict] = {}
    for n, entry in enumerate(writes):
        await pause(n)
        if entry.resource is None:
            continue
        found = entry.sites if entry.sites is not None else sites(entry.resource, mapping.keys())
        try:
            conditional = await resolve_conditional_references(entry.resource, tx.match, entry.where, found)
        except FhirError as exc:
            raise at_entry(entry, exc) from None
        unknown = unknown_local_references(found, mapping)
        if unknown:
            raise entry_error(
                entry.index,
                f"the reference '{unknown[0][:100]}' names no entry of this transaction (no entry has that fullUrl)",
            )
        bodies[entry.index] = rewrite_sites(
            entry.resource, found, {**mapping, **conditional} if conditional else mapping
        )  # type: ignore[assignment]
    return bodies


def _identities(writes: list[BundleEntry], targets: dict[int, Target]) -> dict[tuple[str, str], int]:
    """(type, id) -> index of the entry that writes it; a resource written twice is refused."""
    identities: dict[tuple[str, str], int] = {}
    for entry in writes:
        rid = targets[entry.index].write_id
        if rid is None:
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
    tx: WriteTransaction, writes: list[BundleEntry], targets: dict[int, Target]
) -> dict[tuple[str, str], Head]:
    """The current versions of the resources written and of those conditional creates matched."""
    by_type: dict[str, list[str]] = {}
    for entry in writes:
        if rid := _written_or_found(targets[entry.index]):
            by_type.setdefault(entry.resource_type, []).append(rid)
    heads: dict[tuple[str, str], Head] = {}
    for t, ids in by_type.items():
        for rid, head in (await tx.heads(t, ids)).items():
            heads[(t, rid)] = head
    return heads


async def _write_all(
    tx: WriteTransaction,
    writes: list[BundleEntry],
    targets: dict[int, Target],
    bodies: dict[int, dict],
    heads: dict[tuple[str, str], Head],
    outcomes: dict[int, EntryOutcome],
) -> None:
    """Run each write entry's command, then append all their events at once."""
    pending: list[VersionEvent] = []
    results: dict[int, WriteResult] = {}
    wrote: list[int] = []  # the entry index of each pending event
    handles: dict[tuple[str, str], EntryTransaction] = {}  # entries of one method and URL share one
    for n, entry in enumerate(writes):
        await pause(n)
        handle = handles.get((entry.method, entry.url))
        if handle is None:
            context = replace(tx.context, method=entry.method, url=entry.url)
            handle = handles[(entry.method, entry.url)] = EntryTransaction(tx, context, heads, pending)
        try:
            command = entry_command(entry, bodies.get(entry.index))
            results[entry.index] = await command(handle, targets[entry.index])
        except FhirError as exc:
            raise at_entry(entry, exc) from None
        wrote.extend([entry.index] * (len(pending) - len(wrote)))
    if pending:
        positions = await tx.record(pending)
        for index, position in zip(wrote, positions, strict=True):
            results[index] = results[index].at(position)
    outcomes.update(results)


async def _read(tx: WriteTransaction, entry: BundleEntry) -> EntryRead | EntrySearch:
    t, rid = entry.resource_type, entry.resource_id
    if rid is None:  # a search: the read side answers it (after the writes, as the spec orders)
        return EntrySearch(t, entry.query or "")
    if entry.version_id is not None:
        version = int(entry.version_id) if entry.version_id.isdigit() else -1
        stored = await read_version(tx.conn, t, rid, version) if 0 < version < 2**31 else None
        if stored is None or stored.resource is None:
            raise entry_error(entry.index, f"{t}/{rid}/_history/{entry.version_id} not found", 404, "not-found")
        return EntryRead(entry.version_id, stored.recorded_at, stored.resource if entry.method == "GET" else None)
    head = (await tx.heads(t, [rid])).get(rid)
    if head is None or head.deleted:
        status = 404 if head is None else 410
        raise entry_error(
            entry.index, f"{t}/{rid} {'is not known' if head is None else 'has been deleted'}", status, "not-found"
        )
    return EntryRead(str(head.version), head.last_updated, head.resource if entry.method == "GET" else None)
