"""Resolving references between the entries of a transaction
(https://hl7.org/fhir/R4/bundle.html#references and http.html#trules).

Every string in a resource that equals a mapped ``fullUrl`` (``urn:uuid:``, ``urn:oid:`` or an
absolute URL of a created entry) is replaced, at any depth: ``Reference.reference``,
``Attachment.url``, ``uri`` values and the rest. A ``urn:uuid:``/``urn:oid:`` reference that names
no entry is an error, as is a conditional reference (``Patient?identifier=…``) matching none or
several resources.

One walk over a resource (:func:`sites`, before the transaction opens) finds every string that may
be rewritten; the rewrite (:func:`rewrite_sites`) then copies only the objects and arrays on the way
to those strings and shares the rest with the resource as sent, which stays unchanged (a write
retried after contention rewrites it again, to other ids)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from typing import NamedTuple

from app.errors import FhirError
from app.native import bodywalk

_LOCAL = ("urn:uuid:", "urn:oid:")

Step = str | int
"""One step of a path into a JSON value: a key of an object or an index in an array."""


class Site(NamedTuple):
    """A string of a resource that a rewrite may replace: where it is, what it says, and whether it
    is a ``reference`` (a ``Reference.reference``, checked for local and conditional targets). A
    tuple: the compiled walk makes one without running Python code."""

    path: tuple[Step, ...]
    value: str
    reference: bool

    @property
    def local(self) -> bool:
        return self.value.startswith(_LOCAL)

    @property
    def conditional(self) -> bool:
        return self.reference and "?" in self.value and not self.value.startswith(_LOCAL)


def sites(value: object, urls: Collection[str]) -> list[Site]:
    """Every string of ``value`` (at any depth, in document order) that equals one of ``urls``, is
    local (``urn:…``) or holds a ``?`` (a conditional reference, or a string that may equal one):
    by the compiled walk (:mod:`app.native`), or :func:`python_sites` where it is not built."""
    if bodywalk is None:
        return python_sites(value, urls)
    return bodywalk.sites(value, urls, Site)


def python_sites(value: object, urls: Collection[str]) -> list[Site]:
    """:func:`sites` in Python (the compiled walk's reference)."""
    out: list[Site] = []
    _walk(value, [], out, urls)
    return out


def _walk(value: object, trail: list[Step], out: list[Site], urls: Collection[str]) -> None:
    if type(value) is dict:
        for key, item in value.items():
            kind = type(item)
            if kind is str:
                if item in urls or item.startswith("urn:") or "?" in item:
                    out.append(Site((*trail, key), item, key == "reference"))
            elif kind is dict or kind is list:
                trail.append(key)
                _walk(item, trail, out, urls)
                trail.pop()
    elif type(value) is list:
        for index, item in enumerate(value):
            kind = type(item)
            if kind is str:
                if item in urls or item.startswith("urn:") or "?" in item:
                    out.append(Site((*trail, index), item, False))
            elif kind is dict or kind is list:
                trail.append(index)
                _walk(item, trail, out, urls)
                trail.pop()


class _Leaf:
    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value


def rewrite_sites(value: object, found: list[Site], mapping: dict[str, str]) -> object:
    """``value`` with the strings of ``found`` that ``mapping`` names replaced: the objects and
    arrays holding them are copies, everything else is shared with ``value``."""
    tree: dict = {}
    for site in found:
        new = mapping.get(site.value)
        if new is None:
            continue
        if not site.path:
            return new
        node = tree
        for step in site.path[:-1]:
            node = node.setdefault(step, {})
        node[site.path[-1]] = _Leaf(new)
    return _copy_along(value, tree) if tree else value


def _copy_along(value: object, tree: dict) -> object:
    out: dict | list = dict(value) if isinstance(value, dict) else list(value)  # type: ignore[call-overload]
    for step, sub in tree.items():
        out[step] = sub.value if isinstance(sub, _Leaf) else _copy_along(value[step], sub)  # type: ignore[index]
    return out


def rewrite(value: object, mapping: dict[str, str]) -> object:
    """``value`` with every string found in ``mapping`` replaced (a copy where anything changed)."""
    if isinstance(value, str):
        return mapping.get(value, value)
    return rewrite_sites(value, sites(value, mapping.keys()), mapping) if mapping else value


def references_in(value: object, out: list[str] | None = None) -> list[str]:
    """Every ``reference`` string in a resource, at any depth."""
    out = [] if out is None else out
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "reference" and isinstance(v, str):
                out.append(v)
            else:
                references_in(v, out)
    elif isinstance(value, list):
        for v in value:
            references_in(v, out)
    return out


def unknown_local_references(found: list[Site], mapping: dict[str, str]) -> list[str]:
    """The local (``urn:``) references among ``found`` that name no entry of ``mapping``."""
    return [s.value for s in found if s.reference and s.local and s.value not in mapping]


Matcher = Callable[[str, str], Awaitable[list[str]]]  # bound to a transaction: (type, query) -> ids
"""``(resource_type, query) -> ids of the current resources matching the search criteria``."""


async def resolve_conditional_references(
    resource: dict, matcher: Matcher, where: str, found: list[Site] | None = None
) -> dict[str, str]:
    """Map each conditional reference ``Type?criteria`` in the resource to ``Type/id``; ``where``
    (e.g. ``Bundle.entry[2]``) prefixes the error, if any; ``found``: the resource's :func:`sites`,
    when already known."""
    mapping: dict[str, str] = {}
    for site in sites(resource, ()) if found is None else found:
        ref = site.value
        if not site.conditional or ref in mapping:
            continue
        resource_type, _, query = ref.partition("?")
        ids = await matcher(resource_type, query)
        if len(ids) != 1:
            found_text = "no resource" if not ids else f"{len(ids)} resources"
            text = f"the conditional reference '{ref[:120]}' matches {found_text}; it must match exactly one"
            raise FhirError(
                412 if ids else 404,
                "processing" if ids else "not-found",
                f"{where}: {text}" if where else text,
                (where,) if where else (),
            )
        mapping[ref] = f"{resource_type}/{ids[0]}"
    return mapping
