"""Reading FHIR references without resolving them (https://hl7.org/fhir/R4/references.html).

A reference string is relative (``Patient/1``, ``Patient/1/_history/2``), absolute
(``http://server/fhir/Patient/1``), contained (``#p1``) or a URN (``urn:uuid:...``); a canonical is
``url|version``. What ``resolve()`` needs, and what the reference index stores, is the target's
type and id as far as the string (or ``Reference.type``, or the contained resource) tells them.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

from app.fhirspec.resource_types import resource_type_set

_REFERENCE = re.compile(
    r"^(?:(?P<base>.+)/)?(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})"
    r"(?:/_history/(?P<version>[A-Za-z0-9\-.]{1,64}))?$"
)


class ParsedReference(NamedTuple):
    type: str | None  # target resource type, when known
    id: str | None  # target logical id (None for contained, URN and unparseable references)
    version: str | None  # from `/_history/v` or a canonical's `|version`
    base: str | None  # the service base of an absolute URL; None when relative


_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-."


def parse_reference(text: str, root: dict | None = None) -> ParsedReference:
    """Type, id, version and base of a reference string; unknown parts are None."""
    if text.startswith("#"):
        contained = find_contained(root, text[1:]) if root is not None else None
        kind = contained.get("resourceType") if contained is not None else None
        return ParsedReference(kind if isinstance(kind, str) else None, None, None, None)
    kind, slash, rid = text.partition("/")
    if slash and 0 < len(rid) < 65 and not rid.strip(_ID_CHARS) and kind in resource_type_set():
        # ``Type/id``, what nearly every stored reference is: the regex below gives the same, at a
        # fifth of the cost, and no entry of its cache goes (a replay's references rarely repeat
        # within the cache's reach: about one lookup in three missed in bench/replay.py, 4 us a miss)
        return ParsedReference(kind, rid, None, None)
    return _parse_url(text)


@lru_cache(maxsize=4096)
def _parse_url(text: str) -> ParsedReference:
    """:func:`parse_reference` of a string that names no contained resource (a pure function of the
    string, remembered: the resources of a patient's Bundle name the same few targets)."""
    url, _, version = text.partition("|")
    m = _REFERENCE.match(url)
    if m is None or m.group("type") not in resource_type_set():
        return ParsedReference(None, None, version or None, None)
    return ParsedReference(m.group("type"), m.group("id"), m.group("version") or version or None, m.group("base"))


def find_contained(root: dict, local_id: str) -> dict | None:
    contained = root.get("contained")
    if isinstance(contained, list):
        for res in contained:
            if isinstance(res, dict) and res.get("id") == local_id:
                return res
    return None


def reference_target(value: object, root: dict | None = None) -> ParsedReference | None:
    """Target of a Reference object or a canonical/uri string; None if it names nothing usable."""
    if isinstance(value, str):
        return parse_reference(value, root)
    if not isinstance(value, dict):
        return None
    ref = value.get("reference")
    parsed = parse_reference(ref, root) if isinstance(ref, str) else ParsedReference(None, None, None, None)
    declared = value.get("type")
    if parsed.type is None and isinstance(declared, str) and declared in resource_type_set():
        parsed = parsed._replace(type=declared)
    return parsed


def resolve_stub(value: object, root: dict | None) -> dict | None:
    """What ``resolve()`` yields here: the contained resource for ``#id``, else a stub
    ``{"resourceType": T, "id": id}`` carrying the type the reference names."""
    if isinstance(value, dict) and isinstance(value.get("reference"), str) and root is not None:
        ref = value["reference"]
        if ref.startswith("#"):
            return find_contained(root, ref[1:])
    target = reference_target(value, root)
    if target is None or target.type is None:
        return None
    stub = {"resourceType": target.type}
    if target.id is not None:
        stub["id"] = target.id
    return stub
