"""Checks on a resource's identity (type and id) shared by commands and queries."""

from __future__ import annotations

import re
import uuid

from app.errors import FhirError, invalid, not_found
from app.fhirspec.resource_types import is_resource_type

ID_PATTERN = re.compile(r"[A-Za-z0-9\-\.]{1,64}")


def new_id() -> str:
    """An id the server assigns (a random UUID)."""
    return str(uuid.uuid4())


def require_type(resource_type: str) -> None:
    if not is_resource_type(resource_type):
        raise not_found(
            f"Unknown resource type '{resource_type[:80]}': not one of the FHIR R4 resource types "
            "(names are case-sensitive, e.g. 'Patient')"
        )


def require_id(resource_id: str) -> None:
    if not ID_PATTERN.fullmatch(resource_id):
        raise invalid(
            f"Invalid resource id '{resource_id[:80]}': an id is 1-64 characters of A-Z, a-z, 0-9, '-' and '.'"
        )


MAX_VERSION_DIGITS = 9  # versions are PostgreSQL integers


def require_version_id(resource_type: str, resource_id: str, version_id: str) -> None:
    """400 unless ``version_id`` (``/_history/[vid]``) is a well-formed id this server could have
    issued: an id of another form cannot name a version (a number-like one that no version has is a
    404, answered by vread)."""
    if not ID_PATTERN.fullmatch(version_id):
        raise invalid(
            f"Invalid version id {version_id[:40]!r} for {resource_type}/{resource_id}: a version id is 1-64 "
            "characters of A-Z, a-z, 0-9, '-' and '.'; this server numbers versions 1, 2, 3, … in ASCII digits"
        )
    if version_id.isdigit() and len(version_id) > MAX_VERSION_DIGITS:
        raise invalid(
            f"Version id '{version_id}' of {resource_type}/{resource_id} is out of range: versions on this "
            f"server have at most {MAX_VERSION_DIGITS} digits; GET {resource_type}/{resource_id}/_history lists them"
        )


def gone_or_missing(resource_type: str, resource_id: str, exists: bool) -> FhirError:
    if exists:
        return FhirError(410, "deleted", f"{resource_type}/{resource_id} has been deleted")
    return not_found(f"{resource_type}/{resource_id} is not known to this server")
