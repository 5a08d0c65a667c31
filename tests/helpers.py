"""Small helpers shared by tests."""

from __future__ import annotations

import uuid

FHIR = {"Content-Type": "application/fhir+json"}


def new_id(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def patient(pid: str | None = None, family: str = "Doe", **extra: object) -> dict:
    body: dict = {"resourceType": "Patient", "name": [{"family": family, "given": ["Jo"]}], **extra}
    if pid is not None:
        body["id"] = pid
    return body
