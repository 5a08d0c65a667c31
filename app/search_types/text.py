"""Full-text search with PostgreSQL (https://hl7.org/fhir/R4/search.html#content, #text and the
``:text`` modifier): ``_content`` (the resource's text), ``_text`` (its narrative) and ``:text`` on
string and token parameters, all answered by the ``text`` search type.

Stored in ``sp_<type>_text (key, param, doc tsvector)`` with a GIN index on ``doc``: per resource
one ``_content`` row, one ``_text`` row when it has a narrative, and one row per token parameter
with text (the Coding.display, CodeableConcept.text and Identifier.type.text it holds); a string
parameter's ``:text`` searches its string rows (:mod:`app.search_types.string_text`). The
projector sends the folded text, each distinct string once (:mod:`app.search_types.text_document`);
PostgreSQL stores
``to_tsvector(<config>, text) || strip(to_tsvector('simple', text))``: the words stemmed in the
configured language (:mod:`app.search_types.text_config`) with their positions, for words and
phrases, and the words as written without positions (a lexeme both give is stored once), so stop
words and prefixes of unstemmed words match too. Queries: :mod:`app.search_types.text_query`.

The GIN index keeps a small pending list (:data:`PENDING_LIST_KB`): PostgreSQL's default of 4 MB
per index left most of every text index's pages as free pending-list pages after ingest (about
six times the index itself at 60k resources), and a search reads the whole pending list."""

from __future__ import annotations

from dataclasses import replace

from app.fhirspec.search_parameters import SearchParam
from app.search_types.protocol import Rows, SearchType, SideTable
from app.search_types.sql import Args
from app.search_types.text_config import SIMPLE, regconfig, text_config
from app.search_types.text_document import WHOLE_RESOURCE, fold
from app.search_types.text_query import parse_text_query, tsquery_sql

TEXT_MODIFIED = ("string", "token")
"""The parameter types whose ``:text`` searches are full-text searches (a string parameter's in its
own rows: :mod:`app.search_types.string_text`)."""


PENDING_LIST_KB = 128
"""``gin_pending_list_limit`` of the text indexes (PostgreSQL's smallest is 64)."""


def document_sql(expr: str) -> str:
    """The tsvector PostgreSQL stores for the text ``expr``: positions only on the configured
    language's lexemes (phrases are matched in the configured language only)."""
    config = text_config()
    if config == SIMPLE:
        return f"to_tsvector({regconfig(config)}, {expr})"
    return f"to_tsvector({regconfig(config)}, {expr}) || strip(to_tsvector({regconfig(SIMPLE)}, {expr}))"


def layout() -> list[str]:
    """What the stored documents depend on besides the table's shape (part of the layout version):
    ``text-2`` since the distinct strings are stored once and the as-written half has no positions."""
    return ["text-2", document_sql("text")]


def text_documentation() -> str:
    """The query language, for the CapabilityStatement."""
    return (
        f"Full-text search (PostgreSQL text search, configuration '{text_config()}'): a word matches its "
        'forms the language stems alike, word* matches as a prefix, "quoted words" match as a phrase '
        "(a phrase of stop words only matches when its words occur anywhere); "
        "words side by side must all match, OR (or |) between them lets either match, -word (or NOT word) "
        "excludes, ( ) groups."
    )


class TextTable(SideTable):
    """The rows are sent as text and stored as tsvectors, so bulk writes INSERT instead of COPY."""

    copyable = False

    def sent_types(self) -> list[str]:
        return ["text" for _ in self.columns]

    def insert_select(self, args: list[str]) -> str:
        """Each distinct text's document computed once: the texts of a write repeat (a code's display
        in every Observation of a patient, a token's text in two parameters); a Synthea patient's
        Bundle holds 4.4 times as many text rows as distinct texts, and a document costs PostgreSQL
        5-7 us of CPU for each of its two parses of a short text. Grouped, then expanded: no
        join for the planner to misjudge (the rows' order is not kept; a table has none)."""
        grouped = (
            f"SELECT d, array_agg(i) AS ids, array_agg(p) AS ps FROM unnest({', '.join(args)}) AS u(i, p, d) GROUP BY d"
        )
        # OFFSET 0 keeps the subquery a subquery: pulled up, its document would be computed per row
        documents = f"SELECT {document_sql('g.d')} AS doc, g.ids, g.ps FROM ({grouped}) g OFFSET 0"
        return f"SELECT u.i, u.p, t.doc FROM ({documents}) t, LATERAL unnest(t.ids, t.ps) AS u(i, p)"


def as_text_search(param: SearchParam, modifier: str | None) -> tuple[SearchParam, str | None]:
    """The parameter and modifier a search runs with: ``_content``, ``_text`` and ``:text`` on a
    token parameter become searches of the ``text`` type (``:text`` then dropped); a string
    parameter's ``:text`` stays a string search (:func:`is_string_text`)."""
    if param.code in WHOLE_RESOURCE and not param.expression:
        return replace(param, type=TextType.name), modifier
    if modifier == "text" and param.type == "token":
        return replace(param, type=TextType.name), None
    return param, modifier


def is_string_text(param: SearchParam, modifier: str | None) -> bool:
    """Whether a criterion is ``:text`` on a string parameter (searched in the string table)."""
    return modifier == "text" and param.type == "string"


class TextType(SearchType):
    """Not an R4 parameter type: the criteria :func:`as_text_search` rewrites use it."""

    name = "text"
    tables = (
        TextTable(
            "text",
            (("doc", "tsvector"),),
            indexes=(("doc", f"USING gin (doc) WITH (gin_pending_list_limit = {PENDING_LIST_KB})"),),
        ),
    )
    modifiers = frozenset({"missing"})

    def add_rows(self, code: str, values: list, out: Rows) -> None:
        return None  # rows come from text_document.text_rows, not from an expression's values

    def condition(self, code: str, value: str, modifier: str | None, param: SearchParam, args: Args, base: str) -> str:
        tree = parse_text_query(code, value, bare_prefix=code not in WHOLE_RESOURCE)
        return f"(s.param = {args.add(code)} AND s.doc @@ {tsquery_sql(tree, text_config(), args, fold)})"


TEXT = TextType()
