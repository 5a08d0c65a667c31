"""``:text`` on a string parameter, answered from the string side table (no rows of its own):
the parameter's values together are the document, joined in the order they were written by
:data:`SEPARATOR`, and are matched by the full-text query (:mod:`app.search_types.text_query`) in the
configured language (:mod:`app.search_types.text_config`).

The string table has a GIN index over each value's words (:func:`value_document_sql`, the same
tsvector the full-text table stores for a text); a search first finds, through it, the values
matching a relaxation of the query that one value of every matching resource matches
(:func:`app.search_types.text_query.row_relaxation`: ``james chal`` probes ``james*``), then
tests the resource's values of the parameter together (``chalmers`` may be another value).
A query word whose own parts (``o'hara``: ``o`` and ``hara``) lie in different values is not found
(the full-text table's one document per parameter found it)."""

from __future__ import annotations

from app.search_types.sql import Args
from app.search_types.text import PENDING_LIST_KB, document_sql
from app.search_types.text_config import text_config
from app.search_types.text_document import MAX_CHARS, fold
from app.search_types.text_query import parse_text_query, row_relaxation, tsquery_sql

SEPARATOR = "E'\\n\\x01\\n'"
"""What joins the values (an SQL literal): a line break, and a control character that makes no word
and ends what PostgreSQL's parser takes for an XML tag, so a ``<`` in one value (``<b``) and a ``>``
in a later one (``z>``) no longer read as one tag that swallows the words of the values between
them (each value's own words, as the index holds them, are all in the document). A quoted attribute
or a ``<!--`` comment left open in one value still runs on into the next (the parser ends them
only at their closing quote or ``-->``)."""

WORDS_INDEX = "words"
"""The name suffix of the string tables' index of the values' words (``<table>_words``)."""


def value_document_sql(column: str) -> str:
    """The tsvector of one value (the index's expression, so a search's probe uses the index)."""
    return document_sql(f"left({column}, {MAX_CHARS})")


def words_index_body() -> str:
    """The index definition (the configuration as configured when the table is created: changing
    it changes the layout version, and the rebuild creates the tables and their indexes anew)."""
    return f"USING gin (({value_document_sql('norm')})) WITH (gin_pending_list_limit = {PENDING_LIST_KB})"


def string_text_condition(code: str, value: str, table: str, args: Args) -> str:
    """The condition, on row ``s`` of the string table ``table``, of ``code:text=value``."""
    tree = parse_text_query(code, value, bare_prefix=True)
    config = text_config()
    joined = f"left(string_agg(t.norm, {SEPARATOR} ORDER BY t.ctid), {MAX_CHARS})"  # the values in written order
    together = f"(SELECT {document_sql(joined)} FROM {table} t WHERE t.key = s.key AND t.param = s.param)"
    relaxed = row_relaxation(tree)
    probe = (
        "" if relaxed is None else f" AND {value_document_sql('s.norm')} @@ {tsquery_sql(relaxed, config, args, fold)}"
    )
    return f"(s.param = {args.add(code)}{probe} AND {together} @@ {tsquery_sql(tree, config, args, fold)})"
