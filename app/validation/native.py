"""Constraints checked in Python: cheap sufficient conditions for the hottest datatype
constraints (``SHORTCUTS``: when one returns True the constraint holds and fhirpathpy is not
called), and full evaluators for constraints over the whole resource that fhirpathpy makes
slow or quadratic (``NATIVE_EVALUATORS``: ref-1, dom-3, que-2), with the same meaning as their
FHIRPath.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import orjson


def _get(data: object, key: str) -> object:
    return data.get(key) if isinstance(data, dict) else None


def _contained_lack(data: object, *paths: tuple[str, ...]) -> bool:
    """True when no contained resource has a value at any of the paths (dom-2, dom-4, dom-5)."""
    contained = _get(data, "contained")
    if not isinstance(contained, list):
        return True
    for item in contained:
        for path in paths:
            value = item
            for step in path:
                value = _get(value, step)
            if value is not None:
                return False
    return True


def _same_form_in_order(data: object) -> bool:
    """per-1 holds when start and end are written alike (same length, same offset or none) and the
    start sorts first: then the text order is the time order (fhirpathpy's path is slow)."""
    start, end = _get(data, "start"), _get(data, "end")
    if not isinstance(start, str) or not isinstance(end, str) or len(start) != len(end):
        return False
    if "T" in start:
        zone_s, zone_e = start[-6:], end[-6:]
        alike = (start[-1] == end[-1] == "Z") or (zone_s == zone_e and zone_s[0] in "+-")
        if not alike:
            return False
    return start <= end


SHORTCUTS: dict[str, Callable[[object], bool]] = {
    "dom-2": lambda d: _contained_lack(d, ("contained",)),
    "dom-4": lambda d: _contained_lack(d, ("meta", "versionId"), ("meta", "lastUpdated")),
    "dom-5": lambda d: _contained_lack(d, ("meta", "security")),
    "ref-1": lambda d: not str(_get(d, "reference") or "").startswith("#"),
    "cpt-2": lambda d: _get(d, "value") is None or _get(d, "system") is not None,
    "per-1": lambda d: _get(d, "start") is None or _get(d, "end") is None or _same_form_in_order(d),
    "qty-3": lambda d: _get(d, "code") is None or _get(d, "system") is not None,
    "dom-6": lambda d: _get(_get(d, "text"), "div") is not None,
}


def _ref_1(data: object, resource: object, root: object, memo: dict) -> bool:
    """ref-1: a local reference '#id' must name a resource contained in the root resource."""
    reference = _get(data, "reference")
    if not isinstance(reference, str) or not reference.startswith("#"):
        return True
    ids = memo.get(("ids", id(root)))
    if ids is None:
        contained = _get(root, "contained")
        ids = {_get(c, "id") for c in contained} if isinstance(contained, list) else set()
        memo[("ids", id(root))] = ids
    return reference[1:] in ids


def _local_refs(value: object, out: set[str]) -> set[str]:
    if isinstance(value, str):
        if value.startswith("#"):
            out.add(value)
    elif isinstance(value, dict):
        for item in value.values():
            _local_refs(item, out)
    elif isinstance(value, list):
        for item in value:
            _local_refs(item, out)
    return out


# A JSON string from its opening quote (escapes included), and the ':' that follows a key's.
_STRING = re.compile(rb'"((?:[^"\\]|\\.)*)"(:?)')


def _all_local_refs(value: object) -> set[str]:
    """Every string starting with '#' at any depth of ``value`` (:func:`_local_refs`, read from its
    JSON text: a large resource is one C pass instead of a Python call per node). In orjson's
    compact text, a '"#' after a backslash is a quote inside a string, any other opens a string
    starting with '#': a value's, or a key's when a ':' follows."""
    try:
        text = orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        return _local_refs(value, set())
    out: set[str] = set()
    at = text.find(b'"#')
    while at >= 0:
        found = _STRING.match(text, at) if at == 0 or text[at - 1] != 0x5C else None  # 0x5C: backslash
        if found is not None and not found.group(2):
            out.add(orjson.loads(found.group(0)))
        at = text.find(b'"#', at + 1)
    return out


def _dom_3(data: object, resource: object, root: object, memo: dict) -> bool:
    """dom-3: every contained resource is referenced from the container ('#id'), or refers to
    the container ('#'). Any '#...' string counts (references, canonicals, uris)."""
    contained = _get(data, "contained")
    if not isinstance(contained, list):
        return True
    refs = _all_local_refs(data)  # the container's and every contained resource's
    for item in contained:
        if f"#{_get(item, 'id')}" not in refs and "#" not in _local_refs(item, set()):
            return False
    return True


def _link_ids(value: object, out: list) -> list:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "linkId":
                out.append(item)
            else:
                _link_ids(item, out)
    elif isinstance(value, list):
        for item in value:
            _link_ids(item, out)
    return out


def _que_2(data: object, resource: object, root: object, memo: dict) -> bool:
    """que-2: every linkId in the Questionnaire is unique (descendants().linkId.isDistinct())."""
    ids = [repr(v) for v in _link_ids(data, [])]
    return len(ids) == len(set(ids))


NATIVE_EVALUATORS: dict[str, Callable[[object, object, object, dict], bool]] = {
    "ref-1": _ref_1,
    "dom-3": _dom_3,
    "que-2": _que_2,
}
