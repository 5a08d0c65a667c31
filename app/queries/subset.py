"""``_summary`` and ``_elements``: the subsetted form of a stored resource, shared by search, read
and vread (https://hl7.org/fhir/R4/search.html#summary, #elements). A subsetted resource carries
the ``SUBSETTED`` meta tag, except under ``_summary=data``."""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from app.fhirspec.summary import keeps

SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}


def subset(resource: bytes, resource_type: str, summary: str | None, elements: Sequence[str] | None) -> bytes:
    """``resource`` as stored, cut down to ``elements`` (when given) or to ``summary``'s elements
    (``true``, ``text``, ``data``; None keeps everything)."""
    if summary is None and elements is None:
        return resource
    data = orjson.loads(resource)
    if elements is not None:
        wanted = set(elements) | {"resourceType", "id", "meta"}
        kept = {k: v for k, v in data.items() if k in wanted or k.lstrip("_") in wanted}
    else:
        kept = {k: v for k, v in data.items() if keeps(resource_type, k, summary or "true")}
    if summary != "data":
        meta = dict(kept.get("meta") or {})
        meta["tag"] = [*meta.get("tag", []), SUBSETTED]
        kept["meta"] = meta
    return orjson.dumps(kept)
