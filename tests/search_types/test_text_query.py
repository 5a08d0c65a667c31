"""The full-text query language (app/search_types/text_query.py): how odd input is read, prefixes
under ``:text``, limits, and every word bound as a parameter, never spliced into SQL or tsquery
syntax (PostgreSQL runs these values in tests/queries/test_text_search.py)."""

from __future__ import annotations

import pytest

from app.errors import FhirError
from app.search_types.sql import Args
from app.search_types.text import TEXT
from app.search_types.text_document import fold
from app.search_types.text_query import describe, parse_text_query, tsquery_sql


@pytest.mark.parametrize(
    ("query", "tree"),
    [
        ("heart attack", "(heart attack)"),
        ('"heart attack"', '"heart attack"'),
        ("cancer OR tumour", "(cancer | tumour)"),
        ("cancer | tumour heart", "(cancer | (tumour heart))"),
        ("heart -worms", "(heart -worms)"),
        ("heart AND NOT worms", "(heart -worms)"),
        ("(a | b) c", "((a | b) c)"),
        ("metast*", "metast*"),
        ('"unclosed phrase', '"unclosed phrase"'),
        ("((chest", "chest"),
        ("chest)", "chest"),
        ("chest | |", "chest"),
        ("- chest", "chest"),
        ("x-ray o'hara", "(x-ray o'hara)"),
        ("a\\|b", "a|b"),
        ("or and not", "(or and not)"),  # lower-case words are words
    ],
)
def test_queries_parse_forgivingly(query: str, tree: str) -> None:
    assert describe(parse_text_query("_content", query, bare_prefix=False)) == tree


def test_bare_words_are_prefixes_under_text_only() -> None:
    assert describe(parse_text_query("code", "blood pres", bare_prefix=True)) == "(blood* pres*)"
    assert describe(parse_text_query("code", "blood | pres", bare_prefix=True)) == "(blood | pres)"
    assert describe(parse_text_query("code", '"blood pres"', bare_prefix=True)) == '"blood pres"'
    assert describe(parse_text_query("_content", "blood pres", bare_prefix=False)) == "(blood pres)"


@pytest.mark.parametrize("query", ["", "()", "-", '""', "| + -", "!!! ..."])
def test_a_query_without_words_is_a_400(query: str) -> None:
    with pytest.raises(FhirError) as caught:
        parse_text_query("_content", query, bare_prefix=False)
    assert caught.value.status == 400 and "no word" in caught.value.diagnostics


def test_too_many_words_or_tokens_is_a_400() -> None:
    with pytest.raises(FhirError, match="at most 32 words"):
        parse_text_query("_content", " ".join(["w"] * 33), bare_prefix=False)
    with pytest.raises(FhirError, match="at most 200"):
        parse_text_query("_content", "(" * 500 + "w", bare_prefix=False)


HOSTILE = "x') OR 1=1; DROP TABLE event_log; -- ' & ! <-> :* \\"


@pytest.mark.parametrize("code", ["_content", "_text", "name", "code"])
def test_words_are_bound_never_spliced(code: str) -> None:
    args = Args()
    sql = TEXT.condition(code, f'{HOSTILE} "{HOSTILE}" {HOSTILE}*', None, None, args, "http://server/fhir")  # type: ignore[arg-type]
    assert "drop" not in sql.lower() and "1=1" not in sql and "<->" not in sql
    assert any("drop table" in str(v).lower() for v in args.values)
    assert sql.startswith("(s.param = $1 AND s.doc_id IN (SELECT d.id FROM text_document d WHERE d.doc @@ ")


def test_prefixes_are_quoted_tsquery_operands() -> None:
    args = Args()
    tree = parse_text_query("name", "O'Hara\\\\*", bare_prefix=False)
    tsquery_sql(tree, "english", args, fold)
    assert args.values == ["'o''hara\\\\':*"]
    args = Args()
    tsquery_sql(parse_text_query("name", "runs", bare_prefix=False), "simple", args, fold)
    assert args.values == ["runs"]
