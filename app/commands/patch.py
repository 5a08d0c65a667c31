"""patch: ``PATCH [base]/[type]/[id]`` with JSON Patch, JSON Merge Patch or FHIRPath Patch
(https://hl7.org/fhir/R4/http.html#patch). The patched result is validated like any update."""

from __future__ import annotations

import base64
import binascii

import orjson

from app.commands.patching import apply_fhirpath_patch, apply_json_patch, apply_merge_patch
from app.commands.preconditions import check_if_match
from app.commands.result import WriteResult, WriteStatus
from app.commands.unit_of_work import WriteTransaction
from app.commands.update import decide_update
from app.commands.validate import check_resource
from app.errors import FhirError, invalid
from app.identity import gone_or_missing, require_id, require_type

BINARY_PATCH_KINDS = {"application/json-patch+json": "json-patch", "application/merge-patch+json": "merge-patch"}


def patched_resource(current: bytes, patch: object, resource_type: str, resource_id: str) -> dict:
    """Apply a patch given as a FHIR resource (inside a Bundle): Parameters (FHIRPath Patch) or a
    Binary holding a JSON Patch document."""
    if isinstance(patch, dict) and patch.get("resourceType") == "Binary":
        content_type = str(patch.get("contentType", "")).split(";")[0].strip()
        kind = BINARY_PATCH_KINDS.get(content_type)
        if kind is None:
            raise invalid(
                f"A Binary patch's contentType '{content_type[:60]}' is not a patch format: use "
                "application/json-patch+json or application/merge-patch+json"
            )
        try:
            document = orjson.loads(base64.b64decode(str(patch.get("data", "")), validate=True))
        except (binascii.Error, ValueError, orjson.JSONDecodeError):
            raise invalid("The Binary patch's data is not base64-encoded JSON") from None
        return apply_patch(current, kind, document, resource_type, resource_id)
    if isinstance(patch, dict) and patch.get("resourceType") == "Parameters":
        return apply_patch(current, "fhirpath", patch, resource_type, resource_id)
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


def prepare_patch(resource_type: str, resource_id: str) -> None:
    require_type(resource_type)
    require_id(resource_id)


async def patch(
    tx: WriteTransaction, resource_type: str, resource_id: str, kind: str, document: object, if_match: int | None
) -> WriteResult:
    await tx.lock(resource_type, resource_id)
    head = await tx.head(resource_type, resource_id)
    if head is None or head.deleted or head.resource is None:
        raise gone_or_missing(resource_type, resource_id, head is not None)
    check_if_match(if_match, head.version, f"{resource_type}/{resource_id}")
    resource = apply_patch(head.resource, kind, document, resource_type, resource_id)
    check_resource(resource)
    event = decide_update(head, resource_type, resource_id, resource, None, tx.recorded_at(head), tx.context)
    (position,) = await tx.record([event])
    return WriteResult(
        WriteStatus.UPDATED, resource_type, resource_id, event.version, event.recorded_at, event.resource, position
    )
