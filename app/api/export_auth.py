"""Who may run a bulk export and fetch its results (SMART Backend Services,
https://hl7.org/fhir/uv/bulkdata/authorization.html).

- ``[base]/$export`` needs an unrestricted ``system/`` read scope (``r``) on every exported type;
- ``Patient/$export`` and ``Group/[id]/$export`` need a ``user/`` or ``system/`` read scope on each
  type (and on Group for a Group export).
A scope with a query (``system/Observation.rs?category=laboratory``) does not count: an export
cannot apply it. Types asked in ``_type`` must all be allowed (else 403 naming the scope); without
``_type`` the export covers the types the token may read, and 403 if there are none.

The status URL, its cancellation and the files answer only the token's client and subject that
kicked the export off (and only while they may still read the file's type).
"""

from __future__ import annotations

from fastapi import Request

from app.api.write_auth import principal_of
from app.auth import Principal
from app.auth.outcomes import challenge
from app.errors import FhirError

LEVELS = {"system": ("system",), "patient": ("user", "system"), "group": ("user", "system")}


def may_read(principal: Principal, resource_type: str, level: str) -> bool:
    if principal.is_open:
        return True
    return any(principal.allows(resource_type, "read", lvl).unrestricted for lvl in LEVELS[level])


def _refusal(types: list[str], level: str) -> FhirError:
    needed = " or ".join(f"{lvl}/{types[0]}.r" for lvl in LEVELS[level])
    what = ", ".join(types[:10])
    text = (
        f"The token's scopes do not allow a {level}-level export of {what}: needs scope {needed}"
        f"{' (and likewise for the other types)' if len(types) > 1 else ''}, without a query restriction"
    )
    scopes = " ".join(needed.split(" or "))
    header = challenge("insufficient_scope", f"needs scope {needed}", scopes)
    return FhirError(403, "forbidden", text, headers={"WWW-Authenticate": header})


def authorize_export(request: Request, level: str, asked: list[str] | None, candidates: list[str]) -> list[str]:
    """The types to export: ``asked`` (each allowed, else 403), or the ``candidates`` the token may
    read (403 if none)."""
    principal = principal_of(request)
    if level == "group" and not may_read(principal, "Group", level):
        raise _refusal(["Group"], level)
    if asked is not None:
        refused = [t for t in asked if not may_read(principal, t, level)]
        if refused:
            raise _refusal(refused, level)
        return asked
    allowed = [t for t in candidates if may_read(principal, t, level)]
    if not allowed:
        raise _refusal(["*"], level)
    return allowed


def owner_of(request: Request) -> dict:
    principal = principal_of(request)
    return {"sub": principal.sub, "client": principal.client_id}


def check_owner(request: Request, owner: dict, requires_token: bool) -> None:
    """403 unless the caller is the client (and subject) that kicked the export off."""
    if not requires_token:
        return
    principal = principal_of(request)
    if principal.is_open:
        return
    if principal.sub != owner.get("sub") or principal.client_id != owner.get("client"):
        raise FhirError(
            403,
            "forbidden",
            "This bulk export was kicked off by another client or user; only the token's client and "
            "subject that requested it may poll, cancel or download it",
        )


def check_file_type(request: Request, resource_type: str, level: str) -> None:
    """403 unless the caller may still read ``resource_type`` at the export's level."""
    if resource_type != "OperationOutcome" and not may_read(principal_of(request), resource_type, level):
        raise _refusal([resource_type], level)
