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


def side_rows_sql(table: str, cur_table: str, columns: str, where: str) -> str:
    """A query of side-table rows ``s`` by resource id: side tables name resources by their integer
    key, so the rows are joined to the current-state rows ``c`` (``c.id``)."""
    return f"SELECT {columns} FROM {table} s JOIN {cur_table} c ON c.key = s.key WHERE {where}"
