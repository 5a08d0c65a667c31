"""DDL of the search-index side tables ``sp_<type>_<kind>`` (:mod:`app.projections.search_index`):
each kind's table, its key index and its lookup indexes, as defined in :mod:`app.search_types`."""

from __future__ import annotations

from app.fhirspec.resource_types import resource_types
from app.search_types.registry import TABLES, search_table
from app.search_types.text import documents_ddl


def search_index_ddl(resource_type: str, suffix: str = "", lookup_indexes: bool = True) -> str:
    """Tables with their ``id`` index; the lookup indexes too unless a bulk load builds them
    afterwards (:func:`lookup_index_ddl`)."""
    out = []
    for kind, table in TABLES.items():
        out += table.create_ddl(search_table(resource_type, kind) + suffix)
    if lookup_indexes:
        out.append(lookup_index_ddl(resource_type, suffix))
    return "\n".join(out)


def lookup_index_ddl(resource_type: str, suffix: str = "") -> str:
    out = []
    for kind, table in TABLES.items():
        out += table.lookup_ddl(search_table(resource_type, kind) + suffix)
    return "\n".join(out)


def all_search_index_ddl() -> str:
    """Every type's side tables, and the full-text documents their text rows refer to."""
    return "\n".join([documents_ddl(), *(search_index_ddl(t) for t in resource_types())])
