"""Checks on a resource's identity (type and id) shared by commands and queries."""

from __future__ import annotations

import os
import re

from app.errors import FhirError, invalid, not_found
from app.fhirspec.resource_types import is_resource_type

ID_PATTERN = re.compile(r"[A-Za-z0-9\-\.]{1,64}")


_RANDOM_BATCH = 256
_random: list[bytes] = []  # 16-byte pieces of one os.urandom read, handed out by pop (atomic)


def _forget_random() -> None:
    _random.clear()  # a forked process must not hand out its parent's ids


os.register_at_fork(after_in_child=_forget_random)


def _random16() -> bytes:
    """16 bytes from the OS's random source, read 4 KB at a time: a ``getrandom`` system call per
    id was a few microseconds of each create (two ids: the resource's and the request's)."""
    try:
        return _random.pop()
    except IndexError:
        raw = os.urandom(16 * _RANDOM_BATCH)
        _random.extend([raw[i : i + 16] for i in range(16, len(raw), 16)])
        return raw[:16]


def new_id() -> str:
    """An id the server assigns (a random UUID): ``str(uuid.uuid4())`` without building a ``UUID``
    (its checks and integer arithmetic), 16 random bytes with the version (4) and variant
    (RFC 4122) bits set, as hex in 8-4-4-4-12."""
    raw = bytearray(_random16())
    raw[6] = raw[6] & 0x0F | 0x40
    raw[8] = raw[8] & 0x3F | 0x80
    x = raw.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


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
