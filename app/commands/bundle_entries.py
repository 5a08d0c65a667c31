"""Reading a transaction or batch Bundle into entries (https://hl7.org/fhir/R4/http.html#transaction).

Structural problems are reported with the entry's index, e.g. ``Bundle.entry[3].request``."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from app.commands.cooperative import Slices
from app.commands.preconditions import parse_etag
from app.commands.references import Site
from app.errors import FhirError, Issue, invalid
from app.fhirspec.resource_types import is_resource_type
from app.identity import ID_PATTERN

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
# The order the spec gives for processing a transaction's entries.
PROCESSING_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}


@dataclass
class BundleEntry:
    index: int
    method: str
    url: str
    resource_type: str
    resource_id: str | None
    version_id: str | None
    query: str | None  # conditional criteria or search query (after '?')
    full_url: str | None
    resource: dict | None
    if_none_exist: str | None
    if_match: int | None
    warnings: list[Issue] = field(default_factory=list)  # validation warnings (lenient handling)
    sites: list[Site] | None = None  # the strings of the resource a rewrite may replace (prepare_entries)

    @property
    def where(self) -> str:
        return f"Bundle.entry[{self.index}]"


def entry_error(index: int, text: str, status: int = 400, code: str = "invalid") -> FhirError:
    return FhirError(status, code, f"Bundle.entry[{index}]: {text}", (f"Bundle.entry[{index}]",))


def _split_url(index: int, method: str, url: str) -> tuple[str, str | None, str | None, str | None]:
    """``Patient/1/_history/2?x`` → (type, id, version, query)."""
    if url.isalpha() and is_resource_type(url):  # just a type (every POST entry): nothing to split
        return url, None, None, None
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise entry_error(index, f"request.url '{url[:100]}' cannot be parsed as a URL: {exc}") from None
    path = parts.path.strip("/")
    if parts.scheme:  # an absolute URL: keep what follows the FHIR base, type first
        segments = path.split("/")
        starts = [i for i, s in enumerate(segments) if is_resource_type(s)]
        path = "/".join(segments[starts[0] :]) if starts else path
    segments = [s for s in path.split("/") if s]
    query = parts.query if "?" in url else None
    if not segments or not is_resource_type(segments[0]):
        raise entry_error(index, f"request.url '{url[:100]}' does not start with a FHIR resource type")
    resource_type = segments[0]
    resource_id = version = None
    if len(segments) >= 2:
        resource_id = segments[1]
        if not ID_PATTERN.fullmatch(resource_id):
            raise entry_error(index, f"request.url '{url[:100]}' has an invalid id '{resource_id[:70]}'")
    if len(segments) == 4 and segments[2] == "_history":
        version = segments[3]
    elif len(segments) > 2:
        raise entry_error(index, f"request.url '{url[:100]}' is not [type], [type]/[id] or [type]/[id]/_history/[vid]")
    return resource_type, resource_id, version, query


async def parse_bundle(body: object, max_entries: int) -> tuple[str, list[BundleEntry]]:
    """A Bundle whose entries must all be well-formed (a transaction): the first malformed entry
    rejects the whole Bundle."""
    bundle_type, parsed = await parse_entries_in_slices(body, max_entries)
    entries: list[BundleEntry] = []
    for item in parsed:
        if isinstance(item, FhirError):
            raise item
        entries.append(item)
    return bundle_type, entries


async def parse_entries_in_slices(body: object, max_entries: int) -> tuple[str, list[BundleEntry | FhirError]]:
    """The Bundle's type and its entries in order; a malformed entry is given as the error that
    describes it (a batch answers it on its own, http.html#brules; a transaction fails whole).
    Parsed on the event loop, other tasks running between its slices."""
    bundle_type, raw_entries = _typed_entries(body, max_entries)
    parsed, slices = _Entries(bundle_type), Slices()
    for index, raw in enumerate(raw_entries):
        parsed.add(index, raw)
        await slices.pause()
    return bundle_type, parsed.entries


def _typed_entries(body: object, max_entries: int) -> tuple[str, list]:
    """The Bundle's type and its raw entries, both checked."""
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        raise invalid("POST to the FHIR base takes a Bundle of type transaction or batch")
    bundle_type = body.get("type")
    if bundle_type not in ("transaction", "batch"):
        raise invalid(
            f"Bundle.type '{bundle_type}' cannot be processed here: send a 'transaction' or 'batch' Bundle",
            expression=("Bundle.type",),
        )
    raw_entries = body.get("entry", [])
    if not isinstance(raw_entries, list):
        raise invalid("Bundle.entry must be an array", expression=("Bundle.entry",))
    if len(raw_entries) > max_entries:
        raise FhirError(
            413,
            "too-costly",
            f"The Bundle has {len(raw_entries)} entries; the limit is {max_entries} per Bundle",
        )
    return bundle_type, raw_entries


class _Entries:
    """The entries parsed so far, and the fullUrls they hold (each entry of a transaction needs its own)."""

    def __init__(self, bundle_type: str) -> None:
        self.bundle_type = bundle_type
        self.entries: list[BundleEntry | FhirError] = []
        self._full_urls: dict[str, int] = {}

    def add(self, index: int, raw: object) -> None:
        try:
            entry = _parse_entry(index, raw, self.bundle_type)
        except FhirError as exc:
            self.entries.append(exc)
            return
        self.entries.append(entry)
        if entry.full_url is not None:
            if entry.full_url in self._full_urls and self.bundle_type == "transaction":
                self.entries[-1] = entry_error(
                    index,
                    f"fullUrl '{entry.full_url[:100]}' is also the fullUrl of entry "
                    f"{self._full_urls[entry.full_url]}; each entry needs its own",
                )
            self._full_urls[entry.full_url] = index


def _parse_entry(index: int, raw: object, bundle_type: str) -> BundleEntry:
    if not isinstance(raw, dict):
        raise entry_error(index, "an entry must be a JSON object")
    request = raw.get("request")
    if not isinstance(request, dict):
        raise entry_error(
            index, f"entry has no 'request': every entry of a {bundle_type} needs request.method and request.url"
        )
    method = request.get("method")
    url = request.get("url")
    if method not in METHODS:
        raise entry_error(index, f"request.method '{method}' is not supported (use one of {', '.join(METHODS)})")
    if not isinstance(url, str) or not url:
        raise entry_error(index, "request.url is missing")
    resource_type, resource_id, version, query = _split_url(index, method, url)
    resource = raw.get("resource")
    if resource is not None and not isinstance(resource, dict):
        raise entry_error(index, "entry.resource must be a JSON object")
    if method in ("POST", "PUT") and resource is None:
        raise entry_error(index, f"a {method} entry needs a resource")
    if method == "POST" and (resource_id is not None or query is not None):
        raise entry_error(index, f"a POST entry's request.url must be just the type, e.g. '{resource_type}'")
    if method in ("PUT", "DELETE", "PATCH") and resource_id is None and query is None:
        raise entry_error(
            index,
            f"a {method} entry's request.url needs an id or search criteria, e.g. "
            f"'{resource_type}/123' or '{resource_type}?identifier=sys|val'",
        )
    if method == "PATCH" and resource is None:
        raise entry_error(index, "a PATCH entry needs a resource (Parameters for FHIRPath Patch, or Binary)")
    if resource is not None and method in ("POST", "PUT") and resource.get("resourceType") != resource_type:
        raise entry_error(
            index,
            f"the resource's resourceType '{resource.get('resourceType')}' does not match "
            f"request.url type '{resource_type}'",
        )
    full_url = raw.get("fullUrl")
    if full_url is not None and not isinstance(full_url, str):
        raise entry_error(index, "fullUrl must be a string")
    if_match_raw = request.get("ifMatch")
    if_match = None
    if if_match_raw is not None:
        if_match = parse_etag(str(if_match_raw))
        if if_match is None:
            raise entry_error(index, f"request.ifMatch '{str(if_match_raw)[:40]}' is not a version ETag like W/\"3\"")
    return BundleEntry(
        index,
        method,
        url,
        resource_type,
        resource_id,
        version,
        query,
        full_url,
        resource,
        request.get("ifNoneExist"),
        if_match,
    )
