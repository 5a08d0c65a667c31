"""The kick-off parameters of a bulk export (https://hl7.org/fhir/uv/bulkdata/export.html#query-parameters),
from the query string (``GET``) or a Parameters body (``POST``), checked before anything is
recorded: each fault is a 400 OperationOutcome naming the parameter.

``_outputFormat`` (ndjson in any of its spellings), ``_type``, ``_since`` (an instant),
``_typeFilter``, ``_elements`` (``element`` or ``Type.element``) and, for Patient- and Group-level
exports in a POST body, ``patient``. ``includeAssociatedData`` is not supported: a 400 under strict
handling, a warning under ``Prefer: handling=lenient`` (as is an unknown parameter).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from app.errors import FhirError, Issue, invalid
from app.fhirspec.resource_types import resource_type_set
from app.fhirtime import FhirDateError, parse_range
from app.queries.export_compartment import compartment_types
from app.queries.export_filter import parse_type_filters

NDJSON_FORMATS = frozenset({"application/fhir+ndjson", "application/ndjson", "ndjson"})
KNOWN = frozenset({"_outputFormat", "_type", "_since", "_typeFilter", "_elements", "includeAssociatedData", "patient"})
_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")
_ELEMENT = re.compile(r"^(?:([A-Z][A-Za-z]+)\.)?([a-z][A-Za-z0-9]*)$")


@dataclass
class ExportRequest:
    level: str  # system | patient | group
    types: list[str] | None = None  # as asked in _type (None: every type the caller may read)
    since: datetime | None = None
    filters: dict[str, list[str]] = field(default_factory=dict)
    elements: list[tuple[str | None, str]] = field(default_factory=list)  # (type or None, element)
    patients: list[str] | None = None
    warnings: list[Issue] = field(default_factory=list)

    def elements_by_type(self, types: list[str]) -> dict[str, list[str]]:
        """type -> the elements to keep (types without any are exported whole)."""
        out: dict[str, list[str]] = {}
        for kind in types:
            names = [name for t, name in self.elements if t is None or t == kind]
            if names:
                out[kind] = names
        return out


def _values(params: list[tuple[str, str]], name: str) -> list[str]:
    return [v for k, v in params if k == name]


def _comma_list(values: list[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def parse_export(level: str, params: list[tuple[str, str]], lenient: bool, posted: bool) -> ExportRequest:
    """The export asked by ``params`` (``(name, value)`` pairs, a name repeated for each value)."""
    out = ExportRequest(level)
    _unknown(params, lenient, out)
    formats = [f.strip().replace(" ", "+") for f in _values(params, "_outputFormat")]  # an unencoded '+'
    if len(formats) > 1 or (formats and formats[0] not in NDJSON_FORMATS):
        raise FhirError(
            400,
            "not-supported",
            f"_outputFormat '{','.join(formats)[:80]}' is not supported: this server writes "
            "application/fhir+ndjson (also accepted as application/ndjson or ndjson)",
        )
    out.types = _types(level, _comma_list(_values(params, "_type"))) if _values(params, "_type") else None
    out.since = _since(_values(params, "_since"))
    out.filters = parse_type_filters(_values(params, "_typeFilter"))
    _check_filter_types(out)
    out.elements = _elements(_comma_list(_values(params, "_elements")))
    if _values(params, "includeAssociatedData"):
        text = "includeAssociatedData is not supported: this server exports no associated Provenance or other data"
        if not lenient:
            raise FhirError(400, "not-supported", text + " (send Prefer: handling=lenient to export without it)")
        out.warnings.append(Issue("warning", "not-supported", text + "; the export goes on without it"))
    out.patients = _patients(level, _values(params, "patient"), posted)
    return out


def _unknown(params: list[tuple[str, str]], lenient: bool, out: ExportRequest) -> None:
    unknown = sorted({k for k, _ in params if k not in KNOWN})
    if not unknown:
        return
    text = (
        f"Unknown $export parameter(s): {', '.join(u[:40] for u in unknown[:10])} (known: {', '.join(sorted(KNOWN))})"
    )
    if not lenient:
        raise invalid(text)
    out.warnings.append(Issue("warning", "not-supported", text + "; ignored"))


def _types(level: str, types: list[str]) -> list[str]:
    known = resource_type_set()
    unknown = [t for t in types if t not in known]
    if unknown:
        raise invalid(f"_type names unknown resource type(s): {', '.join(t[:40] for t in unknown[:10])}")
    if level != "system":
        outside = [t for t in types if t not in set(compartment_types())]
        if outside:
            raise invalid(
                f"_type names type(s) outside the Patient compartment, which a {level}-level export does not "
                f"hold: {', '.join(outside[:10])} (use [base]/$export for them)"
            )
    return list(dict.fromkeys(types))


def _since(values: list[str]) -> datetime | None:
    if not values:
        return None
    if len(values) > 1:
        raise invalid("_since may be given only once")
    text = values[0].strip()
    if not _INSTANT.fullmatch(text):
        raise invalid(
            f"_since '{text[:60]}' is not a FHIR instant such as 2024-01-31T10:00:00Z (a time zone is needed)"
        )
    try:
        return parse_range(text)[0]
    except FhirDateError as exc:
        raise invalid(f"_since: {exc}") from None


def _check_filter_types(out: ExportRequest) -> None:
    if out.types is None:
        if out.level != "system":
            outside = [t for t in out.filters if t not in set(compartment_types())]
            if outside:
                raise invalid(f"_typeFilter names type(s) outside the Patient compartment: {', '.join(outside[:10])}")
        return
    missing = [t for t in out.filters if t not in out.types]
    if missing:
        raise invalid(f"_typeFilter names type(s) not in _type: {', '.join(missing[:10])}; add them to _type")


def _elements(names: list[str]) -> list[tuple[str | None, str]]:
    out: list[tuple[str | None, str]] = []
    for name in names:
        m = _ELEMENT.fullmatch(name)
        if m is None or (m.group(1) and m.group(1) not in resource_type_set()):
            raise invalid(f"_elements '{name[:60]}' is not an element name or [resource type].[element name]")
        out.append((m.group(1), m.group(2)))
    return out


def _patients(level: str, values: list[str], posted: bool) -> list[str] | None:
    if not values:
        return None
    if level == "system":
        raise invalid("patient is a parameter of Patient- and Group-level exports, not of [base]/$export")
    if not posted:
        raise invalid("patient is accepted only in the Parameters body of a POST kick-off")
    ids = []
    for value in values:
        kind, _, rid = value.strip().rpartition("/")
        if kind.rsplit("/", 1)[-1] != "Patient" or not rid:
            raise invalid(f"patient '{value[:80]}' is not a reference to a Patient (Patient/[id])")
        ids.append(rid)
    return ids
