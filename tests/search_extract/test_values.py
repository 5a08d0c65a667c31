"""Typed index values per parameter type (app/projections/search_values.py)."""

from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from app.fhirpath.references import _parse_url, parse_reference
from app.fhirspec.search_parameters import get_param
from app.projections.search_values import (
    DATE_MAX,
    DATE_MIN,
    ISO_4217,
    CompositeValue,
    DateValue,
    NumberValue,
    QuantityValue,
    ReferenceValue,
    StringValue,
    TokenValue,
    UriValue,
    extract_all,
    extract_values,
    normalize_string,
)


def ev(resource, code):
    return extract_values(resource, get_param(resource["resourceType"], code))


def utc(*args):
    return datetime(*args, tzinfo=UTC)


# -- string --------------------------------------------------------------------------------------
def test_normalize_string_folds_case_and_accents():
    assert normalize_string("Zoë ÅNGSTRÖM") == "zoe angstrom"
    assert normalize_string("Straße") == "strasse"
    assert normalize_string("ﬁnn") == "finn"  # NFKD compatibility ligature


def test_human_name_every_part():
    patient = {
        "resourceType": "Patient",
        "name": [
            {
                "text": "Dr. José Müller",
                "family": "Müller",
                "given": ["José", "Ana"],
                "prefix": ["Dr."],
                "suffix": ["Jr"],
            }
        ],
    }
    assert [v.exact for v in ev(patient, "name")] == ["Dr. José Müller", "Müller", "José", "Ana", "Dr.", "Jr"]
    assert StringValue("muller", "Müller") in ev(patient, "family")
    assert [v.normalized for v in ev(patient, "given")] == ["jose", "ana"]


def test_address_every_part():
    patient = {
        "resourceType": "Patient",
        "address": [
            {
                "text": "t",
                "line": ["1 Rue", "Bât B"],
                "city": "Genève",
                "district": "d",
                "state": "GE",
                "postalCode": "1200",
                "country": "CH",
                "use": "home",
            }
        ],
    }
    assert [v.exact for v in ev(patient, "address")] == ["t", "1 Rue", "Bât B", "Genève", "d", "GE", "1200", "CH"]
    assert ev(patient, "address-city") == [StringValue("geneve", "Genève")]
    assert ev(patient, "address-postalcode") == [StringValue("1200", "1200")]


# -- token ---------------------------------------------------------------------------------------
def test_codeable_concept_each_coding_plus_text():
    obs = {
        "resourceType": "Observation",
        "code": {
            "coding": [
                {"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"},
                {"system": "http://snomed.info/sct", "code": "364075005"},
            ],
            "text": "Pulse Ä",
        },
    }
    assert ev(obs, "code") == [
        TokenValue("http://loinc.org", "8867-4", "heart rate"),
        TokenValue("http://snomed.info/sct", "364075005", None),
        TokenValue(None, None, "pulse a"),
    ]


def test_coding_and_code_primitives():
    obs = {
        "resourceType": "Observation",
        "status": "final",
        "meta": {"tag": [{"system": "s", "code": "c", "display": "D"}]},
    }
    assert ev(obs, "status") == [TokenValue(None, "final")]
    assert ev(obs, "_tag") == [TokenValue("s", "c", "d")]
    assert ev({"resourceType": "Patient", "id": "x"}, "_id") == [TokenValue(None, "x")]


def test_identifier_with_type_for_of_type():
    v2 = "http://terminology.hl7.org/CodeSystem/v2-0203"
    patient = {
        "resourceType": "Patient",
        "identifier": [
            {
                "system": "urn:mrn",
                "value": "123",
                "type": {"coding": [{"system": v2, "code": "MR"}], "text": "Medical record"},
            },
            {"value": "no-system"},
        ],
    }
    assert ev(patient, "identifier") == [
        TokenValue("urn:mrn", "123", "medical record", ((v2, "MR"),)),
        TokenValue(None, "no-system"),
    ]


def test_contact_point_value_as_code_without_system():
    patient = {
        "resourceType": "Patient",
        "telecom": [{"system": "phone", "value": "+41 1", "use": "home"}, {"system": "email", "value": "a@b.ch"}],
    }
    assert ev(patient, "telecom") == [TokenValue(None, "+41 1"), TokenValue(None, "a@b.ch")]
    assert ev(patient, "phone") == [TokenValue(None, "+41 1")]
    assert ev(patient, "email") == [TokenValue(None, "a@b.ch")]


def test_boolean_tokens():
    assert ev({"resourceType": "Patient", "active": True}, "active") == [TokenValue(None, "true")]
    assert ev({"resourceType": "Patient", "active": False}, "active") == [TokenValue(None, "false")]
    assert ev({"resourceType": "Patient", "deceasedDateTime": "2020"}, "deceased") == [TokenValue(None, "true")]
    assert ev({"resourceType": "Patient"}, "deceased") == [TokenValue(None, "false")]


# -- date ----------------------------------------------------------------------------------------
def test_date_precision_ranges():
    assert ev({"resourceType": "Patient", "birthDate": "1970"}, "birthdate") == [
        DateValue(utc(1970, 1, 1), utc(1971, 1, 1))
    ]
    assert ev({"resourceType": "Patient", "birthDate": "1970-02-03"}, "birthdate") == [
        DateValue(utc(1970, 2, 3), utc(1970, 2, 4))
    ]
    obs = {"resourceType": "Observation", "effectiveDateTime": "2020-03-04T10:00:00+02:00"}
    assert ev(obs, "date") == [DateValue(utc(2020, 3, 4, 8), utc(2020, 3, 4, 8, 0, 1))]
    instant = {"resourceType": "Observation", "effectiveInstant": "2020-03-04T10:00:00.123Z"}
    assert ev(instant, "date")[0].low == datetime(2020, 3, 4, 10, 0, 0, 123000, tzinfo=UTC)


def test_period_open_ends():
    enc = {"resourceType": "Encounter", "period": {"start": "2020-01-01", "end": "2020-01-05"}}
    assert ev(enc, "date") == [DateValue(utc(2020, 1, 1), utc(2020, 1, 6))]
    open_end = {"resourceType": "Encounter", "period": {"start": "2020-01-01T10:00:00Z"}}
    assert ev(open_end, "date") == [DateValue(utc(2020, 1, 1, 10), DATE_MAX)]
    open_start = {"resourceType": "Encounter", "period": {"end": "2020"}}
    assert ev(open_start, "date") == [DateValue(DATE_MIN, utc(2021, 1, 1))]
    assert ev({"resourceType": "Encounter", "period": {}}, "date") == []


def test_timing_events_span_else_bounds():
    sr = {"resourceType": "ServiceRequest", "occurrenceTiming": {"event": ["2020-05-01", "2020-03-01T10:00:00Z"]}}
    assert ev(sr, "occurrence") == [DateValue(utc(2020, 3, 1, 10), utc(2020, 5, 2))]
    bounded = {"resourceType": "ServiceRequest", "occurrenceTiming": {"repeat": {"boundsPeriod": {"start": "2021"}}}}
    assert ev(bounded, "occurrence") == [DateValue(utc(2021, 1, 1), DATE_MAX)]
    assert ev({"resourceType": "ServiceRequest", "occurrenceTiming": {"repeat": {"count": 2}}}, "occurrence") == []


def test_string_typed_dates_and_invalid_dates():
    imm = {"resourceType": "Immunization", "occurrenceString": "2019-06"}
    assert ev(imm, "date") == [DateValue(utc(2019, 6, 1), utc(2019, 7, 1))]
    assert ev({"resourceType": "Immunization", "occurrenceString": "last summer"}, "date") == []
    assert ev({"resourceType": "Patient", "birthDate": "1970-13-01"}, "birthdate") == []
    assert ev({"resourceType": "Procedure", "performedAge": {"value": 3}}, "date") == []


# -- number, quantity ----------------------------------------------------------------------------
def test_numbers():
    ci = {"resourceType": "ChargeItem", "factorOverride": 0.8}
    assert ev(ci, "factor-override") == [NumberValue(Decimal("0.8"))]
    ra = {
        "resourceType": "RiskAssessment",
        "prediction": [{"probabilityDecimal": 0.25}, {"probabilityRange": {"low": {"value": 1}, "high": {"value": 2}}}],
    }
    assert ev(ra, "probability") == [NumberValue(Decimal("0.25")), NumberValue(Decimal(1)), NumberValue(Decimal(2))]


def test_quantity_and_profiles():
    ucum = "http://unitsofmeasure.org"
    obs = {
        "resourceType": "Observation",
        "valueQuantity": {"value": 5.40, "unit": "mmol/L", "system": ucum, "code": "mmol/L"},
    }
    assert ev(obs, "value-quantity") == [QuantityValue(Decimal("5.4"), ucum, "mmol/L", "mmol/L")]
    cond = {"resourceType": "Condition", "onsetAge": {"value": 40, "unit": "yr", "system": ucum, "code": "a"}}
    assert ev(cond, "onset-age") == [QuantityValue(Decimal(40), ucum, "a", "yr")]
    sampled = {
        "resourceType": "Observation",
        "valueSampledData": {"origin": {"value": 2, "code": "mV"}, "dimensions": 1},
    }
    assert ev(sampled, "value-quantity") == [QuantityValue(Decimal(2), None, "mV", None)]
    assert ev({"resourceType": "Observation", "valueQuantity": {"unit": "mg"}}, "value-quantity") == []


def test_money_and_range():
    inv = {"resourceType": "Invoice", "totalNet": {"value": 12.5, "currency": "EUR"}}
    assert ev(inv, "totalnet") == [QuantityValue(Decimal("12.5"), ISO_4217, "EUR", None)]
    lib = {
        "resourceType": "Library",
        "useContext": [{"code": {"code": "age"}, "valueRange": {"low": {"value": 18}, "high": {"value": 65}}}],
    }
    assert ev(lib, "context-quantity") == [
        QuantityValue(Decimal(18), None, None, None),
        QuantityValue(Decimal(65), None, None, None),
    ]


# -- reference, uri ------------------------------------------------------------------------------
def test_reference_forms():
    obs = {
        "resourceType": "Observation",
        "contained": [{"resourceType": "Device", "id": "d1"}],
        "performer": [
            {"reference": "Practitioner/1"},
            {"reference": "http://other.org/fhir/Organization/2/_history/3"},
            {"reference": "urn:uuid:9d2f0a44-6a2e-4b5b-9f3c-0a7b3f3f3f3f"},
            {"reference": "Patient/p/_history/7"},
            {"identifier": {"system": "urn:npi", "value": "42"}, "type": "Practitioner"},
            {"display": "nobody"},
        ],
        "device": {"reference": "#d1"},
    }
    assert ev(obs, "performer") == [
        ReferenceValue("Practitioner", "1", "Practitioner/1"),
        ReferenceValue("Organization", "2", "http://other.org/fhir/Organization/2/_history/3", "3"),
        ReferenceValue(None, None, "urn:uuid:9d2f0a44-6a2e-4b5b-9f3c-0a7b3f3f3f3f"),
        ReferenceValue("Patient", "p", "Patient/p/_history/7", "7"),
        ReferenceValue("Practitioner", None, None, None, "urn:npi", "42"),
    ]
    assert ev(obs, "device") == [ReferenceValue("Device", None, "#d1")]


def test_resolve_is_patient_filters_reference_targets():
    group = {"resourceType": "Observation", "subject": {"reference": "Group/g"}}
    assert ev(group, "patient") == []
    assert ev(group, "subject") == [ReferenceValue("Group", "g", "Group/g")]
    patient = {"resourceType": "Observation", "subject": {"reference": "http://x.org/fhir/Patient/p"}}
    assert ev(patient, "patient") == [ReferenceValue("Patient", "p", "http://x.org/fhir/Patient/p")]
    contained = {
        "resourceType": "Observation",
        "contained": [{"resourceType": "Patient", "id": "c"}],
        "subject": {"reference": "#c"},
    }
    assert ev(contained, "patient") == [ReferenceValue("Patient", None, "#c")]
    appt = {
        "resourceType": "Appointment",
        "participant": [{"actor": {"reference": "Practitioner/1"}}, {"actor": {"reference": "Patient/2"}}],
    }
    assert ev(appt, "patient") == [ReferenceValue("Patient", "2", "Patient/2")]
    assert ev(appt, "practitioner") == [ReferenceValue("Practitioner", "1", "Practitioner/1")]


def test_canonical_references_and_resources():
    qr = {"resourceType": "QuestionnaireResponse", "questionnaire": "http://example.org/fhir/Questionnaire/q1|2.0"}
    assert ev(qr, "questionnaire") == [
        ReferenceValue("Questionnaire", "q1", "http://example.org/fhir/Questionnaire/q1", "2.0")
    ]
    bundle = {
        "resourceType": "Bundle",
        "type": "document",
        "entry": [{"resource": {"resourceType": "Composition", "id": "c1"}}],
    }
    assert ev(bundle, "composition") == [ReferenceValue("Composition", "c1", "Composition/c1")]


def test_uri_values():
    vs = {"resourceType": "ValueSet", "url": "http://example.org/ValueSet/x"}
    assert ev(vs, "url") == [UriValue("http://example.org/ValueSet/x")]
    profiled = {"resourceType": "Patient", "meta": {"profile": ["http://example.org/StructureDefinition/p|1"]}}
    assert ev(profiled, "_profile") == [UriValue("http://example.org/StructureDefinition/p|1")]  # raw, version kept


# -- composite, special --------------------------------------------------------------------------
def test_composite_code_value_quantity_combinations():
    loinc = "http://loinc.org"
    obs = {
        "resourceType": "Observation",
        "code": {"coding": [{"system": loinc, "code": "85354-9"}, {"system": "urn:local", "code": "bp"}], "text": "BP"},
        "valueQuantity": {"value": 1, "code": "x"},
        "component": [
            {
                "code": {"coding": [{"system": loinc, "code": "8480-6"}]},
                "valueQuantity": {"value": 120, "code": "mm[Hg]"},
            },
            {
                "code": {"coding": [{"system": loinc, "code": "8462-4"}]},
                "valueQuantity": {"value": 80, "code": "mm[Hg]"},
            },
        ],
    }
    q1 = QuantityValue(Decimal(1), None, "x", None)
    assert ev(obs, "code-value-quantity") == [
        CompositeValue((TokenValue(loinc, "85354-9"), q1)),
        CompositeValue((TokenValue("urn:local", "bp"), q1)),
    ]
    systolic = CompositeValue((TokenValue(loinc, "8480-6"), QuantityValue(Decimal(120), None, "mm[Hg]", None)))
    diastolic = CompositeValue((TokenValue(loinc, "8462-4"), QuantityValue(Decimal(80), None, "mm[Hg]", None)))
    assert ev(obs, "component-code-value-quantity") == [systolic, diastolic]  # never 8480-6 with 80
    assert len(ev(obs, "combo-code-value-quantity")) == 4
    assert ev({"resourceType": "Observation", "code": obs["code"]}, "code-value-quantity") == []


def test_composite_other_shapes():
    obs = {"resourceType": "Observation", "code": {"coding": [{"code": "c"}]}, "valueDateTime": "2020"}
    assert ev(obs, "code-value-date") == [
        CompositeValue((TokenValue(None, "c"), DateValue(utc(2020, 1, 1), utc(2021, 1, 1))))
    ]
    group = {
        "resourceType": "Group",
        "characteristic": [{"code": {"coding": [{"code": "gender"}]}, "valueBoolean": True}],
    }
    assert ev(group, "characteristic-value") == [CompositeValue((TokenValue(None, "gender"), TokenValue(None, "true")))]


def test_special_is_empty():
    assert ev({"resourceType": "Location", "position": {"latitude": 1, "longitude": 2}}, "near") == []


# -- robustness ----------------------------------------------------------------------------------
def test_malformed_input_is_skipped_not_raised():
    patient = {
        "resourceType": "Patient",
        "name": ["Doe", {"family": 3, "given": "Jane"}],
        "telecom": {"system": "phone", "value": 5},
        "birthDate": 1970,
        "identifier": [{"system": 1, "value": "v", "type": "MR"}],
        "gender": {"code": "male"},
        "generalPractitioner": [{"reference": 7}, "Practitioner/1"],
        "address": [{"line": "1 Main", "city": ["x"]}],
    }
    out = extract_all(patient)
    assert out["given"] == [StringValue("jane", "Jane")]
    assert "birthdate" not in out and "phone" not in out
    assert out["identifier"] == [TokenValue(None, "v")]
    assert out["address-city"] == [StringValue("x", "x")]
    assert "general-practitioner" not in out  # neither {"reference": 7} nor a bare string is a Reference
    assert "gender" not in out  # an object where a code belongs
    obs = {"resourceType": "Observation", "valueQuantity": {"value": "5"}, "effectivePeriod": {"start": "garbage"}}
    assert extract_all(obs) == {}
    assert extract_all({"resourceType": "NotAType"}) == {}
    assert extract_all({}) == {}


_PIECES = st.sampled_from(
    ["Patient", "Observation", "patient", "Foo", "/", "|", "_history", "1", "a-b.c", "x_y", "é", ""]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_PIECES, max_size=6).map("".join), st.integers(0, 70))
def test_the_type_and_id_shortcut_reads_references_as_the_pattern_does(text: str, padding: int):
    """``parse_reference`` answers ``Type/id`` without the reference pattern: the same answer for
    any string, ids of 64 characters and more among them."""
    for candidate in (text, text + "a" * padding, f"Patient/{text}", f"Patient/{'a' * padding}"):
        assert parse_reference(candidate) == _parse_url.__wrapped__(candidate), candidate
