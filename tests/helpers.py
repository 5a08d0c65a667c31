"""Small helpers shared by tests."""

from __future__ import annotations

import copy
import shutil
import sysconfig
import uuid
from collections.abc import Callable

import asyncpg
import httpx

from app.errors import FhirError

FHIR = {"Content-Type": "application/fhir+json"}


def c_compiler() -> str | None:
    """The C compiler ``pip install`` would build :mod:`app.native` with, when this machine has it."""
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    return compiler if shutil.which(compiler) else None


def native_unbuildable(module: object) -> bool:
    """Whether a compiled module's tests have nothing to run: it is not built and cannot be (no C
    compiler). Where a compiler is at hand a module missing is a failure, never a skip."""
    return module is None and c_compiler() is None


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


TAG = "http://fhirledger.test/tag"
"""The system of the ``meta.tag`` a test gives its resources to find only its own in a search."""


async def post_tagged(client: httpx.AsyncClient, resource: dict, tag: str) -> str:
    """Create ``resource`` with the tag ``TAG|tag``; returns the id the server gave it."""
    r = await client.post(
        f"/fhir/{resource['resourceType']}", json={**resource, "meta": {"tag": [{"system": TAG, "code": tag}]}}
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def column_names(conn: asyncpg.Connection, table: str) -> set[str]:
    rows = await conn.fetch("SELECT column_name FROM information_schema.columns WHERE table_name = $1", table)
    return {r["column_name"] for r in rows}


def search_parameter(code: str, kind: str, expression: str, url: str, description: str, base: str = "Resource") -> dict:
    """An active custom SearchParameter (on every resource type unless ``base`` says one)."""
    return {
        "resourceType": "SearchParameter",
        "url": url,
        "name": code,
        "status": "active",
        "description": description,
        "code": code,
        "base": [base],
        "type": kind,
        "expression": expression,
    }


def applies_or_fails_cleanly(apply: Callable[[dict, object], dict], resource: dict, patch: object) -> None:
    """``apply(resource, patch)`` (a patch of any kind) gives a resource of the same type and id, or
    raises a FhirError of 400 or 422 that is not an unexpected failure; ``resource`` is unchanged."""
    before = copy.deepcopy(resource)
    try:
        result = apply(resource, patch)
    except FhirError as error:
        assert error.status in (400, 422)
        assert "could not be applied" not in error.diagnostics, error.diagnostics
    else:
        assert result["resourceType"] == resource["resourceType"] and result["id"] == resource["id"]
    assert resource == before
