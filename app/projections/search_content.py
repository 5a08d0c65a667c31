"""Whether a new version's search rows are its previous version's without extracting either: the
two resources are equal but for the stamp the server gives each version (``meta.versionId`` and
``meta.lastUpdated``, :mod:`app.commands.stamp`).

The search rows are a pure function of the resource (:func:`app.projections.search_index.rows_of`)
and read neither stamp field: ``_lastUpdated`` is answered from the current-state table, the text
rows leave ``meta`` out. A parameter whose expression may reach either field (a custom one could)
makes the type's versions always compared by their rows. An update that sends the resource as it is
(a client re-saving a form, a sync re-sending a record) then writes the log and the current-state
row and no search row: it costs no extraction of the new version and none of the previous one.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from app.events.model import EventKind, VersionEvent
from app.fhirspec.search_parameters import SearchParam, params_for
from app.search_types.row_plan import SKIPPED

STAMP = ("versionId", "lastUpdated")
_MAY_READ_STAMP = (*STAMP, "descendants(", "children(", "repeat(")
"""Words of an expression that may reach a stamp field: its name, or a walk over every child (no R4
parameter but ``_lastUpdated`` holds one)."""
_reads_stamp: dict[str, tuple[Mapping[str, SearchParam], bool]] = {}


def reads_stamp(resource_type: str) -> bool:
    """Whether some search parameter of the type (``_lastUpdated`` aside) may read a stamp field."""
    params = params_for(resource_type)
    cached = _reads_stamp.get(resource_type)
    if cached is not None and cached[0] is params:  # the registry swaps mappings on change
        return cached[1]
    expressions = [
        e
        for code, p in params.items()
        if code not in SKIPPED
        for e in (p.expression_for(resource_type), *(c.expression for c in p.components))
    ]
    reads = any(word in (e or "") for e in expressions for word in _MAY_READ_STAMP)
    _reads_stamp[resource_type] = (params, reads)
    return reads


def _unstamped(resource: dict) -> dict:
    meta = resource.get("meta")
    if not isinstance(meta, dict):
        return resource
    rest = {k: v for k, v in meta.items() if k not in STAMP}
    out = {k: v for k, v in resource.items() if k != "meta"}
    if rest:
        out["meta"] = rest
    return out


def same_search_content(event: VersionEvent, previous: bytes | None) -> bool:
    """Whether ``event`` (an update) holds the resource ``previous`` (the bytes of the version it
    follows) held, stamp aside, so that its search rows are the previous version's."""
    if event.kind is not EventKind.UPDATED or previous is None or event.resource is None:
        return False
    if reads_stamp(event.resource_type):
        return False
    new = event.parsed if event.parsed is not None else orjson.loads(event.resource)
    return _unstamped(orjson.loads(previous)) == _unstamped(new)
