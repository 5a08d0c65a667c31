"""Preconditions of the write commands, as pure functions: the body's resource type, If-Match and
If-None-Match against the current version, and reading a version number from an ETag."""

from __future__ import annotations

import re

from app.errors import FhirError, invalid


def require_body_type(body: object, resource_type: str) -> dict:
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object holding a FHIR resource")
    found = body.get("resourceType")
    if found is None:
        raise invalid(f"The resource has no 'resourceType'; expected '{resource_type}'")
    if found != resource_type:
        raise invalid(
            f"The resource's resourceType '{found}' does not match the type in the URL '{resource_type}'",
            expression=("resourceType",),
        )
    return body


def check_if_match(expected: int | None, current: int | None, what: str) -> None:
    if expected is None:
        return
    if current is None:
        raise FhirError(412, "conflict", f'If-Match W/"{expected}" given, but {what} does not exist')
    if expected != current:
        raise FhirError(
            412,
            "conflict",
            f"Version conflict on {what}: If-Match asked for version {expected}, the current version is "
            f"{current}. Read the resource again and retry with its current ETag.",
        )


_ETAG = re.compile(r'^\s*(?:W/)?"?(\d{1,9})"?\s*$')


def parse_etag(raw: str) -> int | None:
    """``W/"3"``, ``"3"`` or ``3`` → 3; anything else → None."""
    m = _ETAG.match(raw)
    return int(m.group(1)) if m else None


def check_if_none_match(tags: frozenset[str], current: int | None, what: str) -> None:
    """``If-None-Match: *`` (create only, never overwrite) or ``W/"n"`` (not if the current version is
    n) on an update; ``current`` is the live version (None: absent or deleted)."""
    if current is None or not tags:
        return
    if "*" in tags:
        raise FhirError(
            412,
            "duplicate",
            f"{what} already exists (version {current}) and If-None-Match: * asks to create it only; "
            "drop If-None-Match to update it, or use If-Match with its current ETag",
        )
    if str(current) in tags:
        raise FhirError(412, "conflict", f'{what} is at version {current}, which If-None-Match: W/"{current}" excludes')
