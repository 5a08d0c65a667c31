"""capabilities: ``GET [base]/metadata`` (https://hl7.org/fhir/R4/http.html#capabilities).

Generated from the resource-type and search-parameter registries; it lists exactly the
interactions, parameters and operations that work."""

from __future__ import annotations

import orjson

from app.fhirspec.resource_types import resource_types
from app.fhirspec.search_parameters import params_for

SOFTWARE_VERSION = "0.1.0"
RELEASE_DATE = "2026-11-25"
TYPE_INTERACTIONS = (
    "read",
    "vread",
    "update",
    "patch",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
)
SYSTEM_INTERACTIONS = ("transaction", "batch", "search-system", "history-system")
UNSEARCHABLE = ("special",)
VALIDATE = {"name": "validate", "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate"}
COMMON = ("_id", "_lastUpdated", "_tag", "_profile", "_security", "_source")


def _search_params(resource_type: str, building: frozenset[str] = frozenset()) -> list[dict]:
    out = []
    for code, param in sorted(params_for(resource_type).items()):
        if param.type in UNSEARCHABLE or (not param.expression and code not in ("_id", "_lastUpdated")):
            continue
        if param.url in building:
            continue  # listed once its index is ready
        out.append({"name": code, "definition": param.url, "type": param.type})
    return out


def _resource(resource_type: str, building: frozenset[str]) -> dict:
    return {
        "type": resource_type,
        "profile": f"http://hl7.org/fhir/StructureDefinition/{resource_type}",
        "interaction": [{"code": code} for code in TYPE_INTERACTIONS],
        "versioning": "versioned-update",
        "readHistory": True,
        "updateCreate": True,
        "conditionalCreate": True,
        "conditionalRead": "not-supported",
        "conditionalUpdate": True,
        "conditionalDelete": "single",
        "searchParam": _search_params(resource_type, building),
        "operation": [VALIDATE],
    }


def capability_statement(base: str, building: frozenset[str] = frozenset()) -> bytes:
    statement = {
        "resourceType": "CapabilityStatement",
        "id": "fhirledger",
        "url": f"{base}/metadata",
        "version": SOFTWARE_VERSION,
        "name": "FhirledgerCapabilityStatement",
        "title": "fhirledger FHIR R4 server",
        "status": "active",
        "experimental": False,
        "date": RELEASE_DATE,
        "publisher": "fhirledger",
        "kind": "instance",
        "software": {"name": "fhirledger", "version": SOFTWARE_VERSION},
        "implementation": {"description": "fhirledger: an event-sourced FHIR R4 server", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "patchFormat": ["application/json-patch+json", "application/fhir+json"],
        "rest": [
            {
                "mode": "server",
                "resource": [_resource(t, building) for t in resource_types()],
                "interaction": [{"code": code} for code in SYSTEM_INTERACTIONS],
                "searchParam": [p for p in _search_params("Patient") if p["name"] in COMMON],
                "operation": [VALIDATE],
            }
        ],
    }
    return orjson.dumps(statement)
