"""Resolving references between the entries of a transaction
(https://hl7.org/fhir/R4/bundle.html#references and http.html#trules).

Every string in a resource that equals a mapped ``fullUrl`` (``urn:uuid:``, ``urn:oid:`` or an
absolute URL of a created entry) is replaced, at any depth: ``Reference.reference``,
``Attachment.url``, ``uri`` values and the rest. A ``urn:uuid:``/``urn:oid:`` reference that names
no entry is an error, as is a conditional reference (``Patient?identifier=…``) matching none or
several resources."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from app.errors import FhirError

_LOCAL = ("urn:uuid:", "urn:oid:")


def rewrite(value: object, mapping: dict[str, str]) -> object:
    """A copy of ``value`` with every string found in ``mapping`` replaced."""
    if isinstance(value, str):
        return mapping.get(value, value)
    if isinstance(value, dict):
        return {k: rewrite(v, mapping) for k, v in value.items()}
    if isinstance(value, list):
        return [rewrite(v, mapping) for v in value]
    return value


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


def unknown_local_references(resource: dict, mapping: dict[str, str]) -> list[str]:
    return [r for r in references_in(resource) if r.startswith(_LOCAL) and r not in mapping]


Matcher = Callable[[str, str], Awaitable[list[str]]]  # bound to a transaction: (type, query) -> ids
"""``(resource_type, query) -> ids of the current resources matching the search criteria``."""


async def resolve_conditional_references(resource: dict, matcher: Matcher, where: str) -> dict[str, str]:
    """Map each conditional reference ``Type?criteria`` in the resource to ``Type/id``; ``where``
    (e.g. ``Bundle.entry[2]``) prefixes the error, if any."""
    mapping: dict[str, str] = {}
    for ref in references_in(resource):
        if "?" not in ref or ref in mapping or ref.startswith(_LOCAL):
            continue
        resource_type, _, query = ref.partition("?")
        ids = await matcher(resource_type, query)
        if len(ids) != 1:
            found = "no resource" if not ids else f"{len(ids)} resources"
            text = f"the conditional reference '{ref[:120]}' matches {found}; it must match exactly one"
            raise FhirError(
                412 if ids else 404,
                "processing" if ids else "not-found",
                f"{where}: {text}" if where else text,
                (where,) if where else (),
            )
        mapping[ref] = f"{resource_type}/{ids[0]}"
    return mapping
