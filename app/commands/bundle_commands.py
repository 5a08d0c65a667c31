"""The write command of each transaction or batch Bundle entry, and the checks made on the entries
before the transaction opens (validation); errors name the entry they come from, e.g.
``Bundle.entry[3] (PUT Patient/1): ...`` with expressions inside ``Bundle.entry[3].resource``."""

from __future__ import annotations

from dataclasses import replace

from app.commands.bundle_entries import BundleEntry, entry_error
from app.commands.conditional import strip_if_none_exist
from app.commands.cooperative import Slices
from app.commands.create import Create
from app.commands.delete import Delete
from app.commands.patch import Patch, patch_document
from app.commands.references import sites
from app.commands.update import Update
from app.commands.validate import check_resource
from app.commands.write import WriteCommand
from app.errors import FhirError, Issue


def prepare_entries(entries: list[BundleEntry], lenient: bool) -> None:
    """Validate every resource to be written before the transaction opens, and find the strings of
    each resource that name other entries (or a conditional reference) for the rewrite."""
    full_urls = _remote_full_urls(entries)
    for entry in entries:
        _prepare(entry, full_urls, lenient)


async def prepare_entries_in_slices(entries: list[BundleEntry], lenient: bool) -> None:
    """:func:`prepare_entries` on the event loop, other tasks running between its slices (a
    worker thread would contend with the loop for the GIL for as long: measured dearer)."""
    full_urls = _remote_full_urls(entries)
    slices = Slices()
    for entry in entries:
        _prepare(entry, full_urls, lenient)
        await slices.pause()


def _remote_full_urls(entries: list[BundleEntry]) -> set[str]:
    # a local fullUrl (urn:uuid:, urn:oid:) is a site as any "urn:" string is: only the others are
    # looked up (none in a Synthea Bundle: no string of its resources is then hashed for it)
    return {e.full_url for e in entries if e.full_url and not e.full_url.startswith("urn:")}


def _prepare(entry: BundleEntry, full_urls: set[str], lenient: bool) -> None:
    if entry.method in ("POST", "PUT") and entry.resource is not None:
        resource = entry.resource
        if entry.method == "PUT" and entry.resource_id is not None:
            body_id = resource.get("id")
            if body_id is not None and body_id != entry.resource_id:
                text = f"the resource's id '{body_id}' does not match request.url '{entry.url}'"
                raise entry_error(entry.index, text)
        try:
            entry.warnings = check_resource(resource, lenient=lenient)
        except FhirError as exc:
            raise at_entry(entry, exc) from None
    if entry.resource is not None:
        entry.sites = sites(entry.resource, full_urls)


def entry_criteria(entry: BundleEntry) -> str | None:
    """The conditional criteria of a write entry (``ifNoneExist``, or the query of a PUT, PATCH or
    DELETE without an id)."""
    if entry.method == "POST":
        return strip_if_none_exist(entry.if_none_exist) if entry.if_none_exist else None
    if entry.method in ("PUT", "DELETE", "PATCH") and entry.resource_id is None:
        return entry.query
    return None


def entry_command(entry: BundleEntry, body: dict | None) -> WriteCommand:
    """The command of a write entry; ``body``: its resource with references to other entries and
    conditional references resolved."""
    t, rid, criteria = entry.resource_type, entry.resource_id, entry_criteria(entry)
    if entry.method == "POST":
        return Create(t, body or {}, criteria)
    if entry.method == "PUT":
        return Update(t, rid, body or {}, entry.if_match, criteria=criteria)
    if entry.method == "PATCH":
        kind, document = patch_document(body)
        return Patch(t, rid, kind, document, entry.if_match, criteria)
    return Delete(t, rid, entry.if_match, criteria)


def _in_entry(entry: BundleEntry, expression: str) -> str:
    """``Patient.name[0]`` of an entry's resource → ``Bundle.entry[3].resource.name[0]``."""
    head, dot, rest = expression.partition(".")
    if head != entry.resource_type:
        return expression
    return f"{entry.where}.resource{dot}{rest}"


def _entry_paths(entry: BundleEntry, issue: Issue) -> tuple[str, ...]:
    return tuple(_in_entry(entry, e) for e in issue.expression)


def at_entry(entry: BundleEntry, exc: FhirError) -> FhirError:
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
