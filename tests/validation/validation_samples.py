"""Builds valid instances from the compiled definitions: the required elements of every type,
filled with sensible values (codes from the required value sets), plus per-type additions where
an invariant asks for more than the cardinalities do; and a few realistic hand-written resources."""

from __future__ import annotations

import copy

from app.validation.compile import resolve, resource_node
from app.validation.model import PRIMITIVE, RESOURCE, Element, Node, TypeRef

PRIMITIVE_SAMPLES: dict[str, object] = {
    "boolean": True,
    "integer": 1,
    "positiveInt": 1,
    "unsignedInt": 0,
    "decimal": 1.5,
    "string": "sample text",
    "markdown": "sample *text*",
    "code": "sample",
    "id": "example",
    "uri": "http://example.org/fhir/sample",
    "url": "http://example.org/fhir/sample",
    "canonical": "http://example.org/fhir/StructureDefinition/sample",
    "oid": "urn:oid:1.2.3.4",
    "uuid": "urn:uuid:6f0e5c2a-3c8e-4f59-9a6b-1b6d2a7f3c11",
    "date": "2024-01-15",
    "dateTime": "2024-01-15T10:30:00Z",
    "instant": "2024-01-15T10:30:00.000Z",
    "time": "10:30:00",
    "base64Binary": "aGVsbG8gd29ybGQ=",
    "xhtml": '<div xmlns="http://www.w3.org/1999/xhtml">sample</div>',
}

# Datatypes whose required elements alone would leave them empty.
DATATYPE_SAMPLES: dict[str, dict] = {
    "CodeableConcept": {"text": "sample concept"},
    "Coding": {"system": "http://example.org/codes", "code": "sample"},
    "Reference": {"reference": "Patient/example"},
    "Identifier": {"system": "http://example.org/ids", "value": "12345"},
    "Quantity": {"value": 1.5, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"},
    "Period": {"start": "2024-01-15T10:30:00Z"},
    "HumanName": {"family": "Doe", "given": ["Jane"]},
    "Extension": {"url": "http://example.org/fhir/StructureDefinition/sample", "valueString": "x"},
    "Narrative": {"status": "generated", "div": PRIMITIVE_SAMPLES["xhtml"]},
    "Meta": {"lastUpdated": "2024-01-15T10:30:00Z"},
    "Attachment": {"contentType": "text/plain", "data": "aGVsbG8gd29ybGQ="},
    "ContactPoint": {"system": "phone", "value": "+1 555 0100"},
    "Range": {"low": {"value": 1}, "high": {"value": 2}},
    "Ratio": {"numerator": {"value": 1}, "denominator": {"value": 2}},
    "Money": {"value": 10, "currency": "EUR"},
    "Annotation": {"text": "a note"},
    "Address": {"city": "Springfield"},
    "Timing": {"code": {"text": "daily"}},
    "Dosage": {"text": "one tablet daily"},
    "Duration": {"value": 5, "unit": "d", "system": "http://unitsofmeasure.org", "code": "d"},
    "Age": {"value": 5, "unit": "a", "system": "http://unitsofmeasure.org", "code": "a"},
    "Count": {"value": 5, "system": "http://unitsofmeasure.org", "code": "1"},
    "Distance": {"value": 5, "unit": "m", "system": "http://unitsofmeasure.org", "code": "m"},
    "Expression": {"language": "text/fhirpath", "expression": "true"},
}

# Per-type additions so that minimal instances also satisfy their invariants.
_REF = {"reference": "Patient/example"}
_CC = {"text": "sample"}
RESOURCE_EXTRAS: dict[str, dict] = {
    "AllergyIntolerance": {
        "clinicalStatus": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active"}
            ]
        }
    },
    "Appointment": {"participant": [{"actor": _REF, "status": "accepted"}]},
    "AppointmentResponse": {"actor": _REF},
    "Bundle": {"type": "collection"},
    "CapabilityStatement": {"kind": "requirements", "description": "sample", "rest": [{"mode": "server"}]},
    "Consent": {"policyRule": _CC},
    "EventDefinition": {"trigger": [{"type": "named-event", "name": "sample"}]},
    "ImmunizationRecommendation": {"recommendation": [{"vaccineCode": [_CC], "forecastStatus": _CC}]},
    "InsurancePlan": {"name": "sample plan"},
    "Linkage": {"item": [{"type": "source", "resource": _REF}, {"type": "alternate", "resource": _REF}]},
    "Organization": {"name": "sample organization"},
    "StructureDefinition": {
        "name": "SamplePatient",
        "kind": "resource",
        "abstract": False,
        "type": "Patient",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Patient",
        "derivation": "constraint",
        "differential": {"element": [{"id": "Patient", "path": "Patient"}]},
    },
    "TerminologyCapabilities": {"kind": "requirements", "description": "sample"},
}


def _primitive(element: Element, ref: TypeRef) -> object:
    if ref.code == "code" and element.binding is not None:
        return element.binding.ordered[0]
    return PRIMITIVE_SAMPLES[ref.code]


def _complex(element: Element, ref: TypeRef, depth: int) -> dict:
    if element.binding is not None and ref.code in ("Coding", "CodeableConcept"):
        system, codes = next(iter(element.binding.by_system.items()))
        coding = {"system": system, "code": sorted(codes)[0]}
        return coding if ref.code == "Coding" else {"coding": [coding]}
    base = DATATYPE_SAMPLES.get(ref.code) if ref.kind != "backbone" else None
    out = copy.deepcopy(base) if base is not None else {}
    node = resolve(ref)
    out.update({k: v for k, v in _required(node, depth + 1).items() if k not in out})
    if not out:
        out = _first_content(node, depth + 1)
    return out


def _first_content(node: Node, depth: int) -> dict:
    for element in node.elements:
        if element.name in ("id", "extension", "modifierExtension"):
            continue
        ref = element.types[0]
        if ref.kind == PRIMITIVE:
            return {_key(element, ref): _wrap(element, _primitive(element, ref))}
    return {"extension": [copy.deepcopy(DATATYPE_SAMPLES["Extension"])]}


def _key(element: Element, ref: TypeRef) -> str:
    return element.name + ref.code[:1].upper() + ref.code[1:] if element.choice else element.name


def _wrap(element: Element, value: object) -> object:
    return [value] if element.array else value


def _value(element: Element, depth: int) -> tuple[str, object]:
    ref = element.types[0]
    if element.choice:
        ref = next((t for t in element.types if t.code == "string"), ref)
    if ref.kind == PRIMITIVE:
        value: object = _primitive(element, ref)
    elif ref.kind == RESOURCE:
        value = minimal(ref.resource_type or "Basic")
    else:
        value = _complex(element, ref, depth)
    return _key(element, ref), _wrap(element, value)


def _required(node: Node, depth: int) -> dict:
    if depth > 12:
        return {}
    out: dict = {}
    for element in node.required:
        key, value = _value(element, depth)
        if element.array and element.min > 1:
            value = value * element.min
        out[key] = value
    return out


def minimal(resource_type: str) -> dict:
    """A valid instance of a resource type with its required elements (and invariant needs)."""
    node = resource_node(resource_type)
    assert node is not None, resource_type
    out: dict = {"resourceType": resource_type, "id": "example"}
    if "text" in node.keys:
        out["text"] = copy.deepcopy(DATATYPE_SAMPLES["Narrative"])
    out.update(_required(node, 0))
    out.update(copy.deepcopy(RESOURCE_EXTRAS.get(resource_type, {})))
    return out


NARRATIVE = {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">Peter Chalmers</div>'}


def patient() -> dict:
    return {
        "resourceType": "Patient",
        "id": "example",
        "meta": {"versionId": "1", "lastUpdated": "2024-01-15T10:30:00Z"},
        "text": copy.deepcopy(NARRATIVE),
        "identifier": [
            {
                "use": "usual",
                "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
                "system": "urn:oid:1.2.36.146.595.217.0.1",
                "value": "12345",
                "period": {"start": "2001-05-06"},
                "assigner": {"display": "Acme Healthcare"},
            }
        ],
        "active": True,
        "name": [
            {"use": "official", "family": "Chalmers", "given": ["Peter", "James"]},
            {"use": "maiden", "family": "Windsor", "given": ["Peter"], "period": {"end": "2002"}},
        ],
        "telecom": [
            {"use": "home"},
            {"system": "phone", "value": "(03) 5555 6473", "use": "work", "rank": 1},
        ],
        "gender": "male",
        "birthDate": "1974-12-25",
        "_birthDate": {
            "extension": [
                {
                    "url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime",
                    "valueDateTime": "1974-12-25T14:35:45-05:00",
                }
            ]
        },
        "deceasedBoolean": False,
        "address": [
            {
                "use": "home",
                "type": "both",
                "text": "534 Erewhon St PeasantVille, Rainbow, Vic  3999",
                "line": ["534 Erewhon St"],
                "city": "PleasantVille",
                "postalCode": "3999",
                "period": {"start": "1974-12-25"},
            }
        ],
        "contact": [
            {
                "relationship": [
                    {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0131", "code": "N"}]}
                ],
                "name": {
                    "family": "du Marché",
                    "_family": {
                        "extension": [
                            {
                                "url": "http://hl7.org/fhir/StructureDefinition/humanname-own-prefix",
                                "valueString": "VV",
                            }
                        ]
                    },
                    "given": ["Bénédicte", None],
                    "_given": [None, {"extension": [{"url": "http://example.org/nick", "valueString": "B"}]}],
                },
                "telecom": [{"system": "phone", "value": "+33 (237) 998327"}],
                "gender": "female",
            }
        ],
        "managingOrganization": {"reference": "Organization/1"},
    }


def observation() -> dict:
    return {
        "resourceType": "Observation",
        "id": "glucose",
        "text": copy.deepcopy(NARRATIVE),
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": "15074-8", "display": "Glucose [Moles/volume]"}]},
        "subject": {"reference": "Patient/example"},
        "effectivePeriod": {"start": "2013-04-02T09:30:10+01:00"},
        "issued": "2013-04-03T15:30:10.000+01:00",
        "valueQuantity": {"value": 6.3, "unit": "mmol/l", "system": "http://unitsofmeasure.org", "code": "mmol/L"},
        "interpretation": [
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": "H"}]}
        ],
        "referenceRange": [
            {
                "low": {"value": 3.1, "unit": "mmol/l", "system": "http://unitsofmeasure.org", "code": "mmol/L"},
                "high": {"value": 6.2, "unit": "mmol/l", "system": "http://unitsofmeasure.org", "code": "mmol/L"},
            }
        ],
    }


def questionnaire(depth: int = 3, width: int = 3) -> dict:
    def items(prefix: str, level: int) -> list[dict]:
        out = []
        for i in range(width):
            link = f"{prefix}.{i + 1}" if prefix else str(i + 1)
            if level < depth:
                out.append({"linkId": link, "text": f"Group {link}", "type": "group", "item": items(link, level + 1)})
            else:
                out.append(
                    {
                        "linkId": link,
                        "text": f"Question {link}",
                        "type": "choice",
                        "required": True,
                        "answerOption": [{"valueCoding": {"system": "http://example.org/a", "code": "y"}}],
                    }
                )
        return out

    return {
        "resourceType": "Questionnaire",
        "id": "intake",
        "text": copy.deepcopy(NARRATIVE),
        "url": "http://example.org/Questionnaire/intake",
        "name": "Intake",
        "status": "active",
        "subjectType": ["Patient"],
        "item": items("", 1),
    }


def bundle() -> dict:
    return {
        "resourceType": "Bundle",
        "id": "b1",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:6f0e5c2a-3c8e-4f59-9a6b-1b6d2a7f3c11",
                "resource": patient(),
                "request": {"method": "POST", "url": "Patient"},
            },
            {"resource": observation(), "request": {"method": "PUT", "url": "Observation/glucose"}},
        ],
    }


def diagnostic_report(results: int = 200) -> dict:
    contained = []
    for i in range(results):
        obs = observation()
        obs["id"] = f"r{i}"
        del obs["text"]
        obs["subject"] = {"reference": "Patient/example"}
        contained.append(obs)
    return {
        "resourceType": "DiagnosticReport",
        "id": "panel",
        "text": copy.deepcopy(NARRATIVE),
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "24323-8"}]},
        "subject": {"reference": "Patient/example"},
        "issued": "2024-01-15T10:30:00.000Z",
        "contained": contained,
        "result": [{"reference": f"#r{i}"} for i in range(results)],
    }


def rich_samples() -> dict[str, dict]:
    return {
        "patient": patient(),
        "observation": observation(),
        "questionnaire": questionnaire(),
        "bundle": bundle(),
        "diagnostic_report": diagnostic_report(20),
    }
