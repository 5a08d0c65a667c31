"""capabilities: ``GET [base]/metadata`` (https://hl7.org/fhir/R4/http.html#capabilities).

Generated from the resource-type registry; it lists exactly the interactions that work."""

from __future__ import annotations

from functools import lru_cache

import orjson

from app.fhirspec.resource_types import resource_types

SOFTWARE_VERSION = "0.1.0"
TYPE_INTERACTIONS = ("read", "vread", "update", "delete", "history-instance", "history-type", "create")
SYSTEM_INTERACTIONS = ("history-system",)
RELEASE_DATE = "2026-11-25"


@lru_cache(maxsize=8)
def capability_statement(base: str) -> bytes:
    resources = [
        {
            "type": t,
            "interaction": [{"code": code} for code in TYPE_INTERACTIONS],
            "versioning": "versioned-update",
            "readHistory": True,
            "updateCreate": True,
            "conditionalDelete": "not-supported",
        }
        for t in resource_types()
    ]
    statement = {
        "resourceType": "CapabilityStatement",
        "id": "fhirledger",
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
        "rest": [
            {
                "mode": "server",
                "resource": resources,
                "interaction": [{"code": code} for code in SYSTEM_INTERACTIONS],
            }
        ],
    }
    return orjson.dumps(statement)
