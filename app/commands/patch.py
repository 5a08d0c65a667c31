"""patch: ``PATCH [base]/[type]/[id]`` with JSON Patch, JSON Merge Patch or FHIRPath Patch
(https://hl7.org/fhir/R4/http.html#patch), and conditional patch ``PATCH [type]?criteria`` (the
rules of conditional update: no match is a 404, several a 412). The patched result is validated
like any update."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import ClassVar

import orjson

from app.commands.conditional import Target, aim, request_path, speaking_of
from app.commands.patching import apply_fhirpath_patch, apply_json_patch, apply_merge_patch
from app.commands.preconditions import check_if_match
from app.commands.result import WriteResult
from app.commands.unit_of_work import WriteTransaction
from app.commands.update import decide_update
from app.commands.validate import check_resource
from app.errors import FhirError, invalid
from app.identity import gone_or_missing, require_id, require_type

BINARY_PATCH_KINDS = {"application/json-patch+json": "json-patch", "application/merge-patch+json": "merge-patch"}


def patch_document(patch: object) -> tuple[str, object]:
    """The kind and document of a patch given as a FHIR resource (a transaction entry's resource):
    Parameters (FHIRPath Patch) or a Binary holding a JSON Patch or JSON Merge Patch document."""
    if isinstance(patch, dict) and patch.get("resourceType") == "Binary":
        content_type = str(patch.get("contentType", "")).split(";")[0].strip()
        kind = BINARY_PATCH_KINDS.get(content_type)
        if kind is None:
            raise invalid(
                f"A Binary patch's contentType '{content_type[:60]}' is not a patch format: use "
                "application/json-patch+json or application/merge-patch+json"
            )
        try:
            return kind, orjson.loads(base64.b64decode(str(patch.get("data", "")), validate=True))
        except (binascii.Error, ValueError, orjson.JSONDecodeError):
            raise invalid("The Binary patch's data is not base64-encoded JSON") from None
    if isinstance(patch, dict) and patch.get("resourceType") == "Parameters":
        return "fhirpath", patch
    raise invalid("A patch is a FHIRPath Patch (Parameters) or a JSON Patch (application/json-patch+json)")


def _keep_identity(result: dict, resource_type: str, resource_id: str) -> dict:
    if result.get("resourceType") != resource_type or result.get("id") != resource_id:
        raise FhirError(422, "processing", "A PATCH cannot change the resource's type or id")
    return result


def apply_patch(current: bytes, kind: str, patch: object, resource_type: str, resource_id: str) -> dict:
    """``kind`` is ``json-patch`` (a JSON Patch document), ``merge-patch`` (a JSON Merge Patch
    object) or ``fhirpath`` (Parameters)."""
    resource = orjson.loads(current)
    if kind == "json-patch":
        return _keep_identity(apply_json_patch(resource, patch), resource_type, resource_id)
    if kind == "merge-patch":
        return _keep_identity(apply_merge_patch(resource, patch), resource_type, resource_id)
    if not isinstance(patch, dict) or patch.get("resourceType") != "Parameters":
        raise invalid("A FHIRPath Patch body must be a Parameters resource")
    return _keep_identity(apply_fhirpath_patch(resource, patch), resource_type, resource_id)


async def patch(
    tx: WriteTransaction,
    resource_type: str,
    resource_id: str | None,
    kind: str,
    document: object,
    if_match: int | None = None,
    criteria: str | None = None,
    target: Target | None = None,
) -> WriteResult:
    """Patch the current version inside ``tx``; the result is validated like any update.
    ``criteria`` (and no id): a conditional patch (no match is a 404, several a 412), aimed here
    unless a transaction Bundle gives its ``target``."""
    if target is None and criteria is not None:
        with speaking_of("PATCH", resource_type, criteria):
            target = await aim(tx, "PATCH", resource_type, criteria)
            return await _patch_at(tx, resource_type, target, kind, document, if_match)
    return await _patch_at(tx, resource_type, target or Target(resource_id), kind, document, if_match)


async def _patch_at(
    tx: WriteTransaction, resource_type: str, target: Target, kind: str, document: object, if_match: int | None
) -> WriteResult:
    rid = target.write_id
    assert rid is not None
    await tx.lock(resource_type, rid)
    head = await tx.head(resource_type, rid)
    if head is None or head.deleted or head.resource is None:
        raise gone_or_missing(resource_type, rid, head is not None)
    check_if_match(if_match, head.version, f"{resource_type}/{rid}")
    resource = apply_patch(head.resource, kind, document, resource_type, rid)
    check_resource(resource)
    return await tx.write(decide_update(head, resource_type, rid, resource, None, tx.recorded_at(head), tx.context))


@dataclass(frozen=True)
class Patch:
    """``PATCH [type]/[id]``, or ``PATCH [type]?criteria`` (``resource_id`` None); ``kind`` is
    ``json-patch``, ``merge-patch`` or ``fhirpath``."""

    resource_type: str
    resource_id: str | None
    kind: str
    document: object
    if_match: int | None = None
    criteria: str | None = None
    method: ClassVar[str] = "PATCH"

    @property
    def url(self) -> str:
        return request_path(self.resource_type, self.resource_id, self.criteria)

    async def __call__(self, tx: WriteTransaction, target: Target | None = None) -> WriteResult:
        return await patch(
            tx, self.resource_type, self.resource_id, self.kind, self.document, self.if_match, self.criteria, target
        )


def prepare_patch(
    resource_type: str,
    resource_id: str | None,
    kind: str,
    document: object,
    if_match: int | None = None,
    criteria: str | None = None,
) -> Patch:
    require_type(resource_type)
    if resource_id is not None:
        require_id(resource_id)
    return Patch(resource_type, resource_id, kind, document, if_match, criteria)
