# ruff: noqa: E501  (the DDL lines are kept whole)
"""The search-parameter types (app/search_types): one module per type behind one protocol, with the
side-table DDL, layout version and modifiers the server had before they were split out, so that
existing databases stay valid, and every search value bound as a parameter, never spliced into SQL."""

import pytest

from app.fhirspec.search_parameters import params_for
from app.projections.search_ddl import search_index_ddl
from app.projections.state import expected_version
from app.queries.search.criteria import ALL_MODIFIERS
from app.search_types.protocol import SearchType
from app.search_types.registry import KINDS, SEARCH_TYPES, search_table
from app.search_types.sql import Args

# search_index_ddl("Patient") as migrations 13 (per-parameter hashes, the date span) and 14 (full text) leave it
PATIENT_DDL = [
    "CREATE TABLE IF NOT EXISTS sp_patient_string (key bigint NOT NULL, param text NOT NULL, norm text, exact text, hash bigint GENERATED ALWAYS AS (hashtextextended(param || E'\\x1f' || left(norm, 1), 0)) STORED);",
    "CREATE INDEX IF NOT EXISTS sp_patient_string_key ON sp_patient_string (key);",
    "ALTER TABLE sp_patient_string ALTER COLUMN hash SET STATISTICS 100;",
    "CREATE TABLE IF NOT EXISTS sp_patient_token (key bigint NOT NULL, param text NOT NULL, system_hash bigint, code text, of_type text, hash bigint GENERATED ALWAYS AS (hashtextextended(param || E'\\x1f' || code, 0)) STORED);",
    "CREATE INDEX IF NOT EXISTS sp_patient_token_key ON sp_patient_token (key);",
    "ALTER TABLE sp_patient_token ALTER COLUMN hash SET STATISTICS 100;",
    "CREATE STATISTICS IF NOT EXISTS sp_patient_token_deps (dependencies) ON hash, system_hash FROM sp_patient_token;",
    "CREATE TABLE IF NOT EXISTS sp_patient_date (key bigint NOT NULL, param text NOT NULL, low timestamptz, high timestamptz);",
    "CREATE INDEX IF NOT EXISTS sp_patient_date_key ON sp_patient_date (key);",
    "CREATE TABLE IF NOT EXISTS sp_patient_number (key bigint NOT NULL, param text NOT NULL, value numeric);",
    "CREATE INDEX IF NOT EXISTS sp_patient_number_key ON sp_patient_number (key);",
    "CREATE TABLE IF NOT EXISTS sp_patient_quantity (key bigint NOT NULL, param text NOT NULL, value numeric, system_hash bigint, code text, unit text, hash bigint GENERATED ALWAYS AS (hashtextextended(param || E'\\x1f' || code, 0)) STORED);",
    "CREATE INDEX IF NOT EXISTS sp_patient_quantity_key ON sp_patient_quantity (key);",
    "ALTER TABLE sp_patient_quantity ALTER COLUMN hash SET STATISTICS 100;",
    "CREATE STATISTICS IF NOT EXISTS sp_patient_quantity_deps (dependencies) ON hash, system_hash FROM sp_patient_quantity;",
    "CREATE TABLE IF NOT EXISTS sp_patient_reference (key bigint NOT NULL, param text NOT NULL, target_type text, target_uuid uuid, target_id text, reference text, ident_system text, ident_value text, hash bigint GENERATED ALWAYS AS (hashtextextended(param || E'\\x1f' || coalesce(target_id, target_uuid::text), 0)) STORED);",
    "CREATE INDEX IF NOT EXISTS sp_patient_reference_key ON sp_patient_reference (key);",
    "ALTER TABLE sp_patient_reference ALTER COLUMN hash SET STATISTICS 100;",
    "CREATE STATISTICS IF NOT EXISTS sp_patient_reference_deps (dependencies) ON hash, target_type FROM sp_patient_reference;",
    "CREATE TABLE IF NOT EXISTS sp_patient_uri (key bigint NOT NULL, param text NOT NULL, uri text, hash bigint GENERATED ALWAYS AS (hashtextextended(param || E'\\x1f' || uri, 0)) STORED);",
    "CREATE INDEX IF NOT EXISTS sp_patient_uri_key ON sp_patient_uri (key);",
    "ALTER TABLE sp_patient_uri ALTER COLUMN hash SET STATISTICS 100;",
    "CREATE TABLE IF NOT EXISTS sp_patient_composite (key bigint NOT NULL, param text NOT NULL, a_system text, a_code text, b_system text, b_code text, b_num numeric, b_low timestamptz, b_high timestamptz, b_str text, c_num numeric, hash bigint GENERATED ALWAYS AS (hashtextextended(param || E'\\x1f' || a_code, 0)) STORED);",
    "CREATE INDEX IF NOT EXISTS sp_patient_composite_key ON sp_patient_composite (key);",
    "ALTER TABLE sp_patient_composite ALTER COLUMN hash SET STATISTICS 100;",
    "CREATE TABLE IF NOT EXISTS sp_patient_text (key bigint NOT NULL, param text NOT NULL, doc_id bigint);",
    "CREATE INDEX IF NOT EXISTS sp_patient_text_key ON sp_patient_text (key);",
    "CREATE TABLE IF NOT EXISTS sp_patient_sort (key bigint NOT NULL, param text NOT NULL, d_min timestamptz, d_max timestamptz);",
    "CREATE INDEX IF NOT EXISTS sp_patient_sort_key ON sp_patient_sort (key);",
    "CREATE INDEX IF NOT EXISTS sp_patient_string_hash_norm ON sp_patient_string (hash, norm text_pattern_ops) INCLUDE (key);",
    "CREATE INDEX IF NOT EXISTS sp_patient_string_words ON sp_patient_string USING gin ((to_tsvector('english'::regconfig, left(norm, 100000)) || strip(to_tsvector('simple'::regconfig, left(norm, 100000))))) WITH (gin_pending_list_limit = 128);",
    "CREATE INDEX IF NOT EXISTS sp_patient_token_hashes ON sp_patient_token (hash, key) INCLUDE (system_hash);",
    "CREATE INDEX IF NOT EXISTS sp_patient_date_range ON sp_patient_date USING gist ((int8range(((hashtext(param) & 65535)::bigint << 40) + CASE WHEN isfinite(low) THEN floor(extract(epoch from (low - timestamptz 'epoch')))::bigint WHEN low < timestamptz 'epoch' THEN -62135596801 ELSE 253402300801 END, ((hashtext(param) & 65535)::bigint << 40) + CASE WHEN isfinite(high) THEN ceil(extract(epoch from (high - timestamptz 'epoch')))::bigint WHEN high < timestamptz 'epoch' THEN -62135596801 ELSE 253402300801 END, '[]')));",
    "CREATE INDEX IF NOT EXISTS sp_patient_number_value ON sp_patient_number (param, value) INCLUDE (key);",
    "CREATE INDEX IF NOT EXISTS sp_patient_quantity_hash_value ON sp_patient_quantity (hash, value) INCLUDE (key);",
    "CREATE INDEX IF NOT EXISTS sp_patient_quantity_value ON sp_patient_quantity (param, value) INCLUDE (key);",
    "CREATE INDEX IF NOT EXISTS sp_patient_reference_hash ON sp_patient_reference (hash, key) INCLUDE (target_type);",
    "CREATE INDEX IF NOT EXISTS sp_patient_reference_written ON sp_patient_reference (param, reference) INCLUDE (key) WHERE reference IS NOT NULL;",
    "CREATE INDEX IF NOT EXISTS sp_patient_reference_ident_value ON sp_patient_reference (param, ident_value) WHERE ident_value IS NOT NULL;",
    "CREATE INDEX IF NOT EXISTS sp_patient_uri_hash ON sp_patient_uri (hash, key);",
    "CREATE INDEX IF NOT EXISTS sp_patient_uri_prefix ON sp_patient_uri (param, uri text_pattern_ops);",
    "CREATE INDEX IF NOT EXISTS sp_patient_composite_b_code ON sp_patient_composite (hash, b_code) INCLUDE (key);",
    "CREATE INDEX IF NOT EXISTS sp_patient_composite_b_num ON sp_patient_composite (hash, b_num) INCLUDE (key);",
    "CREATE INDEX IF NOT EXISTS sp_patient_text_doc_id ON sp_patient_text (doc_id);",
    "CREATE INDEX IF NOT EXISTS sp_patient_sort_min ON sp_patient_sort (param, d_min, key);",
    "CREATE INDEX IF NOT EXISTS sp_patient_sort_max ON sp_patient_sort (param, d_max DESC, key);",
]


def test_side_table_ddl_is_unchanged():
    assert search_index_ddl("Patient").splitlines() == PATIENT_DDL


def test_layout_version_is_unchanged_so_existing_projections_stay_ready():
    """A changed version marks every existing search projection stale and demands a rebuild (as
    migration 13's, 18's, 20's, 24's, 25's and 27's layouts did, on purpose; "rows-26": the
    parameters whose expression is another's keep no rows; "rows-27": the _content documents leave
    UUIDs out; "text-3", migration 31: the text rows hold document ids)."""
    assert expected_version("search_index", "Observation") == "sp-1-848fcc93b9de"
    assert expected_version("search_index", "Patient") == "sp-1-3362c12073eb"


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
