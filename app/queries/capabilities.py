"""capabilities: ``GET [base]/metadata`` (https://hl7.org/fhir/R4/http.html#capabilities).

Generated from the resource-type and search-parameter registries; it lists exactly the
interactions, parameters and operations that work."""

from __future__ import annotations

from collections import defaultdict

import orjson

from app.fhirspec.compartments import compartments, definition_url
from app.fhirspec.resource_types import resource_types
from app.fhirspec.search_parameters import PREFIXES, SearchParam, params_for
from app.queries.everything import FOCAL_TYPES
from app.queries.search.parse import ALL_MODIFIERS
from app.search_types.text import TEXT_MODIFIED, text_documentation
from app.search_types.text_document import WHOLE_RESOURCE

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
REINDEX = {
    "name": "reindex",
    "definition": "http://fhirledger.org/fhir/OperationDefinition/reindex",
    "documentation": "POST [base]/$reindex or [base]/[type]/$reindex: schedules a rebuild of the projections "
    "(current state and search index) from the event log; answers 202 with the job in Content-Location",
}
IMPORT = {
    "name": "import",
    "definition": "http://fhirledger.org/fhir/OperationDefinition/import",
    "documentation": "POST [base]/$import with Prefer: respond-async and Parameters (inputFormat "
    "application/fhir+ndjson, input with type and url: file:// under FHIRLEDGER_IMPORT_DIR, http(s)://): a "
    "background bulk import; answers 202 with the status URL in Content-Location",
}
OPERATIONS = [VALIDATE, REINDEX]
EVERYTHING = {  # [base]/Patient/[id]/$everything, [base]/Encounter/[id]/$everything (app/queries/everything.py)
    t: [{"name": "everything", "definition": f"http://hl7.org/fhir/OperationDefinition/{t}-everything"}]
    for t in FOCAL_TYPES
}
BULK_DATA = "http://hl7.org/fhir/uv/bulkdata"
EXPORT_DOC = "Bulk Data export (Prefer: respond-async; a consistent snapshot of the event log)"
SYSTEM_EXPORT = {"name": "export", "definition": f"{BULK_DATA}/OperationDefinition/export", "documentation": EXPORT_DOC}
TYPE_OPERATIONS = {
    "Patient": [{"name": "export", "definition": f"{BULK_DATA}/OperationDefinition/patient-export"}],
    "Group": [{"name": "export", "definition": f"{BULK_DATA}/OperationDefinition/group-export"}],
}
SYSTEM_OPERATIONS = [*OPERATIONS, SYSTEM_EXPORT, IMPORT]
PREFIXED = ("number", "date", "quantity")
COMMON = ("_id", "_lastUpdated", "_tag", "_profile", "_security", "_source", "_content")


def _served(resource_type: str, building: frozenset[str] = frozenset()) -> list[tuple[str, SearchParam]]:
    """The parameters of ``resource_type`` that searches take (a custom one once its index is ready)."""
    return [
        (code, param)
        for code, param in sorted(params_for(resource_type).items())
        if param.type not in UNSEARCHABLE
        and (param.expression or code in ("_id", "_lastUpdated") or code in WHOLE_RESOURCE)
        and param.url not in building
    ]


def _documentation(code: str, param: SearchParam) -> str:
    if code in WHOLE_RESOURCE:
        return text_documentation() + " Modifiers: :missing."
    modifiers = ["missing", "not"] if code == "_id" else sorted(ALL_MODIFIERS.get(param.type, ()))
    if param.type == "reference" and param.target:
        modifiers.append("[type]")
    parts = [f"Modifiers: {', '.join(':' + m for m in modifiers)}." if modifiers else "No modifiers."]
    if param.type in PREFIXED:
        parts.append(f"Prefixes: {', '.join(PREFIXES)}.")
    if param.type == "reference":
        parts.append("Chains ([param].[target param]=) and reverse chains (_has:) are supported.")
    if param.type == "composite":
        parts.append("Values are the components joined with '$'.")
    if param.type in TEXT_MODIFIED:
        of = "values" if param.type == "string" else "texts (display, text)"
        parts.append(f":text is a full-text search of the {of}.")
    return " ".join(parts)


def _search_params(resource_type: str, building: frozenset[str] = frozenset()) -> list[dict]:
    return [
        {"name": code, "definition": param.url, "type": param.type, "documentation": _documentation(code, param)}
        for code, param in _served(resource_type, building)
    ]


def _includes(resource_type: str, building: frozenset[str]) -> list[str]:
    refs = [f"{resource_type}:{code}" for code, param in _served(resource_type, building) if param.type == "reference"]
    return [*refs, f"{resource_type}:*"]


def _rev_includes(building: frozenset[str]) -> dict[str, list[str]]:
    """target type -> the ``[source type]:[param]`` whose references can point at it, plus ``*``."""
    out: dict[str, list[str]] = defaultdict(list)
    for source in resource_types():
        for code, param in _served(source, building):
            if param.type == "reference":
                for target in sorted(set(param.target)):
                    out[target].append(f"{source}:{code}")
    return {t: [*sorted(v), "*"] for t, v in out.items()}


def _resource(resource_type: str, building: frozenset[str], rev: dict[str, list[str]]) -> dict:
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
        "searchInclude": _includes(resource_type, building),
        "searchRevInclude": rev.get(resource_type, ["*"]),
        "searchParam": _search_params(resource_type, building),
        "operation": OPERATIONS + EVERYTHING.get(resource_type, []) + TYPE_OPERATIONS.get(resource_type, []),
    }


def capability_statement(base: str, building: frozenset[str] = frozenset(), security: dict | None = None) -> bytes:
    """The CapabilityStatement; ``security`` is ``rest[0].security`` (SMART on FHIR, when authorization is on)."""
    rev = _rev_includes(building)
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
        "instantiates": [f"{BULK_DATA}/CapabilityStatement/bulk-data"],
        "software": {"name": "fhirledger", "version": SOFTWARE_VERSION},
        "implementation": {"description": "fhirledger: an event-sourced FHIR R4 server", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "patchFormat": ["application/json-patch+json", "application/merge-patch+json", "application/fhir+json"],
        "rest": [
            {
                "mode": "server",
                "documentation": "Every FHIR R4 resource type, stored as an event log; reads and searches are "
                "served from projections of it. Search Bundle.total: counted with _total=accurate, _summary=count "
                "or _count=0, or when the first page holds every match; _total=estimate gives the database's "
                "estimate (said so in an information issue); otherwise it is left out",
                "resource": [_resource(t, building, rev) for t in resource_types()],
                "interaction": [{"code": code} for code in SYSTEM_INTERACTIONS],
                "searchParam": [p for p in _search_params("Patient") if p["name"] in COMMON],
                "operation": SYSTEM_OPERATIONS,
                "compartment": [definition_url(c) for c in compartments()],
            }
        ],
    }
    if security is not None:
        statement["rest"][0]["security"] = security
    return orjson.dumps(statement)
