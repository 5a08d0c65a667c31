"""The protocol every search-parameter type implements, and the side tables its values live in."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

from app.fhirpath.model import type_model
from app.fhirspec.search_parameters import SearchParam
from app.search_types.sql import Args

Rows = dict[str, list[tuple]]
"""side-table kind -> rows ``(param, ...columns)`` (the resource id is prepended by the projector)"""
Nodes = list[tuple[str | None, Any]]
"""(FHIR type or None when unknown, JSON value) of each node an expression selected"""
NO_COMPONENT = (None, None, None, None, None, None)


@dataclass(frozen=True)
class SideTable:
    """One side table per resource type, ``sp_<type>_<kind>``: ``(id, param, *columns)``, an index
    on ``id``, B-tree lookup indexes ``<table>_<n>`` on ``indexes`` (each the text between the
    parentheses of ``ON table (...)``) and ``extra`` indexes ``<table>_<name> ON table <body>``."""

    kind: str
    columns: tuple[tuple[str, str], ...]
    indexes: tuple[str, ...] = ()
    extra: tuple[tuple[str, str], ...] = ()

    def create_ddl(self, table: str) -> list[str]:
        columns = ", ".join(f"{c} {t}" for c, t in self.columns)
        return [
            f"CREATE TABLE IF NOT EXISTS {table} (id text NOT NULL, param text NOT NULL, {columns});",
            f"CREATE INDEX IF NOT EXISTS {table}_id ON {table} (id);",
        ]

    copyable: ClassVar[bool] = True
    """Whether bulk writes may COPY rows in as sent (else they INSERT through :meth:`insert_select`)."""

    def sent_types(self) -> list[str]:
        """The SQL types of the column values the projector sends (the columns' own, by default)."""
        return [t for _, t in self.columns]

    def insert_select(self, args: list[str]) -> str:
        """The SELECT an INSERT takes its rows from: the arrays ``args`` (id, param, columns) unnested."""
        return f"SELECT * FROM unnest({', '.join(args)})"

    def lookup_ddl(self, table: str) -> list[str]:
        out = [f"CREATE INDEX IF NOT EXISTS {table}_{i} ON {table} ({spec});" for i, spec in enumerate(self.indexes)]
        out += [f"CREATE INDEX IF NOT EXISTS {table}_{name} ON {table} {body};" for name, body in self.extra]
        return out


class SortColumns(NamedTuple):
    """The side-table columns ``_sort`` orders by: min(ascending) or max(descending), and their SQL type."""

    ascending: str
    descending: str
    cast: str


class SearchType(ABC):
    """One search-parameter type. ``tables[0]`` is the type's own table (kind = ``name``); further
    tables hold derived rows (the date sort keys). ``modifiers`` lists what a search may add after
    ``:`` (``:missing`` and ``:not`` are applied around :meth:`condition` by the query layer)."""

    name: ClassVar[str]
    value_class: ClassVar[type | None] = None
    tables: ClassVar[tuple[SideTable, ...]] = ()
    modifiers: ClassVar[frozenset[str]] = frozenset({"missing"})
    sort_columns: ClassVar[SortColumns | None] = None
    searchable: ClassVar[bool] = True

    def convert(self, typ: str | None, value: Any, root: dict) -> Iterable[Any]:
        """The values of one node (``typ`` None: a fallback result of unknown type)."""
        return ()

    def extract(self, param: SearchParam, nodes: Nodes, root: dict) -> list[Any]:
        """The values of the nodes an expression selected, malformed nodes skipped (an object
        where a primitive belongs, or the other way round)."""
        primitives = type_model().primitives
        out: list[Any] = []
        for typ, value in nodes:
            if typ is not None and (typ in primitives) == isinstance(value, dict):
                continue
            out.extend(self.convert(typ, value, root))
        return out

    def add_rows(self, code: str, values: list[Any], out: Rows) -> None:
        """Append the side-table rows of one parameter's values (all of this type) to ``out``."""
        return None  # a type without side tables stores nothing

    def component(self, value: Any) -> tuple:
        """(system, code, num, low, high, str) of a value used as a composite's component."""
        return NO_COMPONENT

    @abstractmethod
    def condition(self, code: str, value: str, modifier: str | None, param: SearchParam, args: Args, base: str) -> str:
        """The SQL condition on side-table row ``s`` of one search value (``modifier`` None for
        none or ``:not``); values go through ``args``, never into the SQL text."""
