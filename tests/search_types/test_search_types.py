# ruff: noqa: E501  (the DDL lines are kept whole)
"""The search-parameter types (app/search_types): one module per type behind one protocol, with the
side-table DDL, layout version and modifiers the server had before they were split out, so that
existing databases stay valid, and every search value bound as a parameter, never spliced into SQL."""

import pytest

from app.fhirspec.search_parameters import params_for
from app.projections.search_index import search_index_ddl
from app.projections.state import expected_version
from app.queries.search.criteria import ALL_MODIFIERS
from app.search_types.protocol import SearchType
from app.search_types.registry import KINDS, SEARCH_TYPES, search_table
from app.search_types.sql import Args

# search_index_ddl("Patient") as the migrations applied it before the types had a module each, plus
# the full-text table of migration 14
PATIENT_DDL = [
    "CREATE TABLE IF NOT EXISTS sp_patient_string (id text NOT NULL, param text NOT NULL, norm text, exact text);",
    "CREATE INDEX IF NOT EXISTS sp_patient_string_id ON sp_patient_string (id);",
    "CREATE TABLE IF NOT EXISTS sp_patient_token (id text NOT NULL, param text NOT NULL, system text, code text, text text, of_type text);",
    "CREATE INDEX IF NOT EXISTS sp_patient_token_id ON sp_patient_token (id);",
    "CREATE TABLE IF NOT EXISTS sp_patient_date (id text NOT NULL, param text NOT NULL, low timestamptz, high timestamptz);",
    "CREATE INDEX IF NOT EXISTS sp_patient_date_id ON sp_patient_date (id);",
    "CREATE TABLE IF NOT EXISTS sp_patient_number (id text NOT NULL, param text NOT NULL, value numeric);",
    "CREATE INDEX IF NOT EXISTS sp_patient_number_id ON sp_patient_number (id);",
    "CREATE TABLE IF NOT EXISTS sp_patient_quantity (id text NOT NULL, param text NOT NULL, value numeric, system text, code text, unit text);",
    "CREATE INDEX IF NOT EXISTS sp_patient_quantity_id ON sp_patient_quantity (id);",
    "CREATE TABLE IF NOT EXISTS sp_patient_reference (id text NOT NULL, param text NOT NULL, target_type text, target_id text, reference text, ident_system text, ident_value text);",
    "CREATE INDEX IF NOT EXISTS sp_patient_reference_id ON sp_patient_reference (id);",
    "CREATE TABLE IF NOT EXISTS sp_patient_uri (id text NOT NULL, param text NOT NULL, uri text);",
    "CREATE INDEX IF NOT EXISTS sp_patient_uri_id ON sp_patient_uri (id);",
    "CREATE TABLE IF NOT EXISTS sp_patient_composite (id text NOT NULL, param text NOT NULL, a_system text, a_code text, b_system text, b_code text, b_num numeric, b_low timestamptz, b_high timestamptz, b_str text, c_num numeric);",
    "CREATE INDEX IF NOT EXISTS sp_patient_composite_id ON sp_patient_composite (id);",
    "CREATE TABLE IF NOT EXISTS sp_patient_text (id text NOT NULL, param text NOT NULL, doc tsvector);",
    "CREATE INDEX IF NOT EXISTS sp_patient_text_id ON sp_patient_text (id);",
    "CREATE TABLE IF NOT EXISTS sp_patient_sort (id text NOT NULL, param text NOT NULL, d_min timestamptz, d_max timestamptz);",
    "CREATE INDEX IF NOT EXISTS sp_patient_sort_id ON sp_patient_sort (id);",
    "CREATE INDEX IF NOT EXISTS sp_patient_string_0 ON sp_patient_string (param, norm text_pattern_ops) INCLUDE (id);",
    "CREATE INDEX IF NOT EXISTS sp_patient_token_0 ON sp_patient_token (param, code, system) INCLUDE (id);",
    "CREATE INDEX IF NOT EXISTS sp_patient_date_range ON sp_patient_date USING gist (tstzrange(low, high, '[)'));",
    "CREATE INDEX IF NOT EXISTS sp_patient_number_0 ON sp_patient_number (param, value);",
    "CREATE INDEX IF NOT EXISTS sp_patient_quantity_0 ON sp_patient_quantity (param, code, value) INCLUDE (id);",
    "CREATE INDEX IF NOT EXISTS sp_patient_quantity_1 ON sp_patient_quantity (param, value) INCLUDE (id);",
    "CREATE INDEX IF NOT EXISTS sp_patient_reference_0 ON sp_patient_reference (param, target_id) INCLUDE (id);",
    "CREATE INDEX IF NOT EXISTS sp_patient_reference_1 ON sp_patient_reference (param, reference) INCLUDE (id);",
    "CREATE INDEX IF NOT EXISTS sp_patient_reference_2 ON sp_patient_reference (param, ident_value);",
    "CREATE INDEX IF NOT EXISTS sp_patient_uri_0 ON sp_patient_uri (param, uri text_pattern_ops);",
    "CREATE INDEX IF NOT EXISTS sp_patient_composite_0 ON sp_patient_composite (param, a_code, b_code);",
    "CREATE INDEX IF NOT EXISTS sp_patient_composite_1 ON sp_patient_composite (param, a_code, b_num);",
    "CREATE INDEX IF NOT EXISTS sp_patient_text_doc ON sp_patient_text USING gin (doc);",
    "CREATE INDEX IF NOT EXISTS sp_patient_sort_0 ON sp_patient_sort (param, d_min, id);",
    "CREATE INDEX IF NOT EXISTS sp_patient_sort_1 ON sp_patient_sort (param, d_max DESC, id);",
]


def test_side_table_ddl_is_unchanged():
    assert search_index_ddl("Patient").splitlines() == PATIENT_DDL


def test_layout_version_is_unchanged_so_existing_projections_stay_ready():
    """A changed version would mark every existing search projection stale and demand a rebuild (the
    full-text tables changed it once: sp-1-8b67e4e27f3f and sp-1-84bbf593f5a8 before)."""
    assert expected_version("search_index", "Observation") == "sp-1-53d51d12793c"
    assert expected_version("search_index", "Patient") == "sp-1-39e7daec2f8a"


def test_one_type_per_r4_search_parameter_type_each_with_its_own_table():
    assert list(SEARCH_TYPES) == [
        "string",
        "token",
        "date",
        "number",
        "quantity",
        "reference",
        "uri",
        "composite",
        "special",
        "text",  # full-text search: not an R4 type, the one _content, _text and :text searches use
    ]
    assert KINDS == ("string", "token", "date", "number", "quantity", "reference", "uri", "composite", "text", "sort")
    for name, kind in SEARCH_TYPES.items():
        assert isinstance(kind, SearchType)
        assert kind.__module__ == f"app.search_types.{name}"
        if kind.tables:
            assert kind.tables[0].kind == name
    assert search_table("MedicationRequest", "token") == "sp_medication_request_token"
    with pytest.raises(ValueError):
        search_table("Patient", "special")


def test_modifiers_come_from_the_type_modules():
    assert ALL_MODIFIERS == {
        "string": {"exact", "contains", "missing", "text"},
        "token": {"missing", "not", "text", "of-type"},
        "date": {"missing"},
        "number": {"missing"},
        "quantity": {"missing"},
        "reference": {"missing", "identifier"},
        "uri": {"missing", "below", "above"},
        "composite": {"missing"},
        "special": {"missing"},
        "text": {"missing"},
    }


HOSTILE = "x') OR 1=1; DROP TABLE event_log; --"


@pytest.mark.parametrize(
    ("resource_type", "code", "modifier", "value"),
    [
        ("Patient", "name", None, HOSTILE),
        ("Patient", "name", "exact", HOSTILE),
        ("Patient", "name", "contains", HOSTILE),
        ("Patient", "identifier", None, HOSTILE + "|" + HOSTILE),
        ("Patient", "identifier", "text", HOSTILE),
        ("Patient", "identifier", "of-type", HOSTILE + "|MR|" + HOSTILE),
        ("Observation", "subject", None, "http://e.org/" + HOSTILE),
        ("Observation", "subject", "identifier", HOSTILE + "|" + HOSTILE),
        ("Observation", "subject", "Patient", HOSTILE),
        ("Observation", "value-quantity", None, "5|" + HOSTILE + "|" + HOSTILE),
        ("ValueSet", "url", "below", HOSTILE),
        ("ValueSet", "url", "above", HOSTILE),
        ("Observation", "code-value-string", None, HOSTILE + "$" + HOSTILE),
    ],
)
def test_search_values_are_bound_never_spliced(resource_type, code, modifier, value):
    param = params_for(resource_type)[code]
    args = Args()
    sql = SEARCH_TYPES[param.type].condition(code, value, modifier, param, args, "http://server/fhir")
    assert "drop" not in sql.lower() and "1=1" not in sql
    assert any("drop table" in str(v).lower() for v in args.values)
    assert sql.count("$") >= len(args.values)
