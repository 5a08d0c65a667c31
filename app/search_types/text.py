"""Full-text search with PostgreSQL (https://hl7.org/fhir/R4/search.html#content, #text and the
``:text`` modifier): ``_content`` (the resource's text), ``_text`` (its narrative) and ``:text`` on
string and token parameters, all answered by the ``text`` search type.

Stored in ``sp_<type>_text (key, param, doc_id bigint)``: per resource one ``_content`` row, one
``_text`` row when it has a narrative, and one row per token parameter with text (the
Coding.display, CodeableConcept.text and Identifier.type.text it holds); a string parameter's
``:text`` searches its string rows (:mod:`app.search_types.string_text`). The projector sends the
folded text, each distinct string once (:mod:`app.search_types.text_document`); a row keeps only
the text's document id (:func:`doc_id_sql`, a 64-bit hash of the text), and the document itself is
stored once, in :data:`DOCUMENTS`, whatever the number of rows that have it.

A document is ``to_tsvector(<config>, text) || strip(to_tsvector('simple', text))``: the words
stemmed in the configured language (:mod:`app.search_types.text_config`) with their positions, for
words and phrases, and the words as written without positions (a lexeme both give is stored once),
so stop words and prefixes of unstemmed words match too. Queries: :mod:`app.search_types.text_query`.

Texts repeat across resources: on the million Synthea resources, Observation's 1.94M text rows have
315 distinct documents. Stored in every row, the tsvectors and their GIN index were a fifth of the
database, PostgreSQL parsed each text twice for every write that sent it, and the GIN build over
Observation's text rows was a replay's costliest index (1.6-2.3 s of CPU, against 0.5 s for the
btree on their ids now). :data:`DOCUMENTS` is a content-addressed store shared by every type: a
document is a pure function of its text and the configuration (both in its id), written when a write
first sends its text (:func:`documents_insert`, checked against those already stored, so a write
that sends known texts parses nothing), and kept: a document no row has any more matches nothing
(searches go from the matching documents to the rows). A rebuild computes the documents of the texts
it loads and replaces a stored one that differs (damaged, or altered by hand;
:mod:`app.projections.text_load`). Two writers that send a new text at once may both store it: the
id is not unique, so neither waits for the other, and a search's ``IN`` reads a duplicate once.

The GIN index keeps a small pending list (:data:`PENDING_LIST_KB`): PostgreSQL's default of 4 MB
per index left most of every text index's pages as free pending-list pages after ingest (about
six times the index itself at 60k resources), and a search reads the whole pending list."""

from __future__ import annotations

import hashlib
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


DOCUMENT_FORM = "text-3"
"""The form of the stored documents (part of the layout version and of the documents' ids): ``text-2``
since the distinct strings of a resource are stored once and the as-written half has no positions,
``text-3`` since the rows hold a document id and :data:`DOCUMENTS` the documents."""

DOCUMENTS = "text_document"
"""The full-text documents of every type's text rows, ``(id, doc)``: see the module docstring."""


def documents_ddl() -> str:
    """The documents' table and its indexes (the id's btree for the writers' check, the GIN for searches)."""
    return (
        f"CREATE TABLE IF NOT EXISTS {DOCUMENTS} (id bigint NOT NULL, doc tsvector NOT NULL);\n"
        f"CREATE INDEX IF NOT EXISTS {DOCUMENTS}_id ON {DOCUMENTS} (id);\n"
        f"CREATE INDEX IF NOT EXISTS {DOCUMENTS}_doc ON {DOCUMENTS} USING gin (doc)"
        f" WITH (gin_pending_list_limit = {PENDING_LIST_KB});"
    )


def id_seed() -> int:
    """The seed of the documents' ids: the document's form and the configuration, so a document
    computed under another configuration (or form) never answers for this one's."""
    digest = hashlib.blake2b(f"{DOCUMENT_FORM} {document_sql('text')}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def doc_id_sql(expr: str) -> str:
    """The document id of the text ``expr``: PostgreSQL's 64-bit ``hashtextextended`` of it. Among a
    million distinct texts, two share an id with odds of about one in 37 million; if they did, a
    search matching either text would find the rows of both."""
    return f"hashtextextended({expr}, {id_seed()})"


def documents_insert(texts: str) -> str:
    """The INSERT of the documents of the texts ``texts`` (an SQL text array) not stored yet, each
    computed once (the ``WHERE`` filters before the select list is evaluated)."""
    return (
        f"INSERT INTO {DOCUMENTS} (id, doc) SELECT n.id, {document_sql('n.x')}"
        f" FROM (SELECT t.x, {doc_id_sql('t.x')} AS id FROM (SELECT DISTINCT x FROM unnest({texts}) AS u(x)) t) n"
        f" WHERE NOT EXISTS (SELECT 1 FROM {DOCUMENTS} d WHERE d.id = n.id)"
    )


def documents_missing(texts: str) -> str:
    """The number of the texts ``texts`` (an SQL text array) whose document is not stored as their
    text gives it (the projection audit's check)."""
    return (
        f"SELECT count(*) FROM unnest({texts}) AS u(x) WHERE NOT EXISTS"
        f" (SELECT 1 FROM {DOCUMENTS} d WHERE d.id = {doc_id_sql('u.x')} AND d.doc = {document_sql('u.x')})"
    )


def layout() -> list[str]:
    """What the stored documents depend on besides the table's shape (part of the layout version)."""
    return [DOCUMENT_FORM, document_sql("text")]


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
    """The rows are sent as text and stored with their document's id, so bulk writes INSERT instead
    of COPY, and store the documents they lack beside the rows (:meth:`companion_insert`)."""

    copyable = False

    def sent_types(self) -> list[str]:
        return ["text" for _ in self.columns]

    def insert_select(self, args: list[str]) -> str:
        """Each row with its text's document id (a hash: a tenth of a microsecond)."""
        return f"SELECT u.i, u.p, {doc_id_sql('u.d')} FROM unnest({', '.join(args)}) AS u(i, p, d)"

    def companion_insert(self, columns: list[str]) -> str | None:
        return documents_insert(columns[0])

    def companion_missing(self, columns: list[str]) -> str | None:
        return documents_missing(columns[0])


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
            (("doc_id", "bigint"),),
            indexes=(("doc_id", "(doc_id)"),),
        ),
    )
    modifiers = frozenset({"missing"})

    def add_rows(self, code: str, values: list, out: Rows) -> None:
        return None  # rows come from text_document.text_rows, not from an expression's values

    def condition(self, code: str, value: str, modifier: str | None, param: SearchParam, args: Args, base: str) -> str:
        tree = parse_text_query(code, value, bare_prefix=code not in WHOLE_RESOURCE)
        param = args.add(code)
        query = tsquery_sql(tree, text_config(), args, fold)
        return f"(s.param = {param} AND s.doc_id IN (SELECT d.id FROM {DOCUMENTS} d WHERE d.doc @@ {query}))"


TEXT = TextType()
