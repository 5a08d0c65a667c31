"""The search-parameter types by name, and the side tables they store values in.

:data:`SEARCH_TYPES` maps each R4 type name to its :class:`SearchType`; :data:`TABLES` lists the
side tables in DDL order (each type's own table, then derived ones: the date sort keys);
:data:`COLUMNS` / :data:`INDEXES` describe them by kind (the written columns; the lookup indexes
and the columns PostgreSQL generates), part of the search projection's layout version
(:func:`app.projections.state.expected_version`)."""

from __future__ import annotations

from app.fhirspec.resource_types import table_suffix
from app.search_types.composite import COMPOSITE
from app.search_types.date import DATE
from app.search_types.number import NUMBER
from app.search_types.protocol import SearchType, SideTable
from app.search_types.quantity import QUANTITY
from app.search_types.reference import REFERENCE
from app.search_types.special import SPECIAL
from app.search_types.string import STRING
from app.search_types.text import TEXT
from app.search_types.token import TOKEN
from app.search_types.uri import URI

SEARCH_TYPES: dict[str, SearchType] = {
    t.name: t for t in (STRING, TOKEN, DATE, NUMBER, QUANTITY, REFERENCE, URI, COMPOSITE, SPECIAL, TEXT)
}
TABLES: dict[str, SideTable] = {t.tables[0].kind: t.tables[0] for t in SEARCH_TYPES.values() if t.tables}
TABLES.update({table.kind: table for t in SEARCH_TYPES.values() for table in t.tables[1:]})
KINDS = tuple(TABLES)
COLUMNS: dict[str, list[tuple[str, str]]] = {kind: list(table.columns) for kind, table in TABLES.items()}
INDEXES: dict[str, list[list[str]]] = {
    kind: [list(index) for index in table.indexes] + [list(column) for column in table.generated_columns()]
    for kind, table in TABLES.items()
}
_BY_VALUE: dict[type, SearchType] = {t.value_class: t for t in SEARCH_TYPES.values() if t.value_class is not None}


def search_type(name: str) -> SearchType:
    """The type called ``name`` (``KeyError`` for a name that is not an R4 search-parameter type)."""
    return SEARCH_TYPES[name]


def type_of_value(value: object) -> SearchType:
    """The type an extracted value belongs to."""
    return _BY_VALUE[type(value)]


def search_table(resource_type: str, kind: str) -> str:
    """``sp_<type>_<kind>``: the side table of ``kind`` (a type name or ``sort``) for a resource type."""
    if kind not in TABLES:
        raise ValueError(kind)
    return f"sp_{table_suffix(resource_type)}_{kind}"
