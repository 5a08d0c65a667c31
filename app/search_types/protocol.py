"""The protocol every search-parameter type implements, and the side tables its values live in."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar, NamedTuple

from app.fhirpath.model import type_model
from app.fhirspec.search_parameters import SearchParam
from app.search_types.sql import Args

Rows = dict[str, list[tuple]]
"""side-table kind -> rows ``(param, ...columns)`` (the resource id is prepended by the projector,
and replaced by the resource's key when the rows are written)"""
Nodes = list[tuple[str | None, Any]]
"""(FHIR type or None when unknown, JSON value) of each node an expression selected"""
NO_COMPONENT = (None, None, None, None, None, None)


HASH_STATISTICS = 100
"""The statistics target of the hash columns: the 100 most common parameter-and-value pairs of a
side table are counted, from a sample of 30,000 rows (ANALYZE samples 300 rows per unit of the
highest target of the columns it analyzes; the other columns have PostgreSQL's default, 100, too).
It was 1,000 (300,000 rows) until migration 29, then 300 (90,000 rows) until migration 30. An
ANALYZE of the Observation token table at 3.1M rows cost 1.1 s of CPU at 1,000 and 0.35 s at 300.
While an ingest grows the side tables, autovacuum analyzes each about once a minute: from 188,028
to 1,002,816 resources its CPU per resource fell from 0.046 ms at 300 to 0.025 at 100 (the same
session, 2,946 and 3,207 resources/s), and the search mix at a million resources kept its targets
(slowest template p50 6.6 ms, one at a time p99 7.5 ms; 7.7 and 9.1 ms at 300; README)."""


def param_hash(param_sql: str, value_sql: str) -> str:
    """The SQL of a parameter-and-value hash: PostgreSQL's ``hashtextextended`` of ``param``, a unit
    separator and the value (immutable, so over constants the planner folds it to the constant
    its statistics are looked up with; NULL when the value is NULL)."""
    return f"hashtextextended({param_sql} || E'\\x1f' || {value_sql}, 0)"


def hash_condition(code: str, value: str, args: Args, column: str = "s.hash") -> str:
    """``column`` equals the hash of parameter ``code`` with ``value`` (both bound, never spliced)."""
    return f"{column} = {param_hash(args.add(code, 'text'), args.add(value, 'text'))}"


@lru_cache(maxsize=65536)
def system_hash(system: str | None) -> int | None:
    """The stored hash of a code system (None without one; the token and quantity tables keep it
    instead of the system's text, and test the parameter with the code's hash or ``param``): the
    first 8 bytes of the system's BLAKE2b digest, as a signed bigint. The projector computes it
    (so rows are copied in as sent), a search binds it."""
    if system is None:
        return None
    return int.from_bytes(hashlib.blake2b(system.encode(), digest_size=8).digest(), "big", signed=True)


def stored_name(name: str) -> str:
    """The name PostgreSQL keeps for an object named ``name``: cut to 63 bytes (NAMEDATALEN - 1;
    these names are ASCII), as long types' names are (``sp_medicinal_product_undesirable_effect_
    reference__s_ident_value``, a shadow table's index, is stored without its last letter)."""
    return name[:63]


@dataclass(frozen=True)
class SideTable:
    """One side table per resource type, ``sp_<type>_<kind>``: ``(key, param, *columns)`` (``key``
    the resource's integer key, :mod:`app.projections.current_state`), an index on ``key``, and
    lookup indexes.

    ``indexes``: (name, body) of the lookup indexes ``<table>_<name> ON <table> <body>``.
    ``hash`` (an SQL expression over the row's columns) adds the generated column ``hash``: the
    :func:`param_hash` of the row's parameter and that value, so that one column's statistics
    count each parameter's values apart (``code`` and ``component-code`` of Observation share the
    token table; two correlated columns ``param`` and ``code`` made the planner multiply their
    selectivities). PostgreSQL computes it, so writers never send it. ``depends``: columns whose
    value the hash all but decides (a code's system), for which the table gets functional
    dependency statistics (``CREATE STATISTICS … (dependencies)``, object ``<table>_deps``), so the
    planner does not multiply ``hash = … AND system = …`` as if they were independent."""

    kind: str
    columns: tuple[tuple[str, str], ...]
    indexes: tuple[tuple[str, str], ...] = ()
    hash: str | None = None
    generated: tuple[tuple[str, str, str], ...] = ()
    depends: tuple[str, ...] = ()

    def create_ddl(self, table: str) -> list[str]:
        columns = ", ".join(f"{c} {t}" for c, t in self.columns) + self._generated_sql()
        out = [
            f"CREATE TABLE IF NOT EXISTS {table} (key bigint NOT NULL, param text NOT NULL, {columns});",
            f"CREATE INDEX IF NOT EXISTS {table}_key ON {table} (key);",
        ]
        if self.hash is not None:
            out.append(f"ALTER TABLE {table} ALTER COLUMN hash SET STATISTICS {HASH_STATISTICS};")
        return out + self.statistics_ddl(table)

    def statistics_ddl(self, table: str) -> list[str]:
        if not self.depends:
            return []
        columns = ", ".join(("hash", *self.depends))
        return [f"CREATE STATISTICS IF NOT EXISTS {table}_deps (dependencies) ON {columns} FROM {table};"]

    def generated_columns(self) -> list[tuple[str, str, str]]:
        """(name, SQL type, expression) of the columns PostgreSQL computes."""
        out = [("hash", "bigint", param_hash("param", self.hash))] if self.hash is not None else []
        return out + list(self.generated)

    def _generated_sql(self) -> str:
        return "".join(f", {n} {t} GENERATED ALWAYS AS ({e}) STORED" for n, t, e in self.generated_columns())

    def add_generated_ddl(self, table: str) -> list[str]:
        """Bringing a table of the layout before the hash column up to date (empty it first: the
        column is computed for every row by rewriting the table, and the projection is rebuilt)."""
        out = [
            f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {n} {t} GENERATED ALWAYS AS ({e}) STORED;"
            for n, t, e in self.generated_columns()
        ]
        if self.hash is not None:
            out.append(f"ALTER TABLE {table} ALTER COLUMN hash SET STATISTICS {HASH_STATISTICS};")
        return out

    @property
    def generated_names(self) -> tuple[str, ...]:
        return tuple(n for n, _, _ in self.generated_columns())

    def index_names(self, table: str) -> list[str]:
        return [f"{table}_{name}" for name, _ in self.indexes]

    def object_names(self, table: str) -> list[str]:
        """The names of the table's indexes and statistics objects as PostgreSQL stores them."""
        names = [*self.index_names(table), f"{table}_key"] + ([f"{table}_deps"] if self.depends else [])
        return [stored_name(n) for n in names]

    copyable: ClassVar[bool] = True
    """Whether bulk writes may COPY rows in as sent (else they INSERT through :meth:`insert_select`)."""

    def sent_types(self) -> list[str]:
        """The SQL types of the column values the projector sends (the columns' own, by default)."""
        return [t for _, t in self.columns]

    def insert_select(self, args: list[str]) -> str:
        """The SELECT an INSERT takes its rows from: the arrays ``args`` (the resources' ids or keys,
        param, columns) unnested."""
        return f"SELECT * FROM unnest({', '.join(args)})"

    def companion_insert(self, columns: list[str]) -> str | None:
        """An INSERT that must run with every INSERT of rows whose own columns come from the arrays
        ``columns`` (after the ids or keys and ``param``): into another table the rows refer to (the
        full-text documents), or None."""
        return None

    def companion_missing(self, columns: list[str]) -> str | None:
        """A SELECT of the number of rows whose own columns come from the arrays ``columns`` and whose
        companion rows (:meth:`companion_insert`) are missing or differ from what they give, or None."""
        return None

    def lookup_ddl(self, table: str) -> list[str]:
        return [f"CREATE INDEX IF NOT EXISTS {table}_{name} ON {table} {body};" for name, body in self.indexes]


class SortColumns(NamedTuple):
    """The side-table values ``_sort`` orders by: min(ascending) or max(descending), and their SQL
    type. Each is a column of the side-table row ``s`` or an SQL expression over ``s.<column>``."""

    ascending: str
    descending: str
    cast: str

    def sql(self, descending: bool) -> str:
        """The value over row ``s`` a sort in that direction takes the min or max of."""
        value = self.descending if descending else self.ascending
        return f"s.{value}" if value.isidentifier() else value


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
        """The SQL condition on side-table row ``s`` that it is a row of parameter ``code`` matching
        one search value (``modifier`` None for none or ``:not``): the type's :func:`hash_condition`
        where its table has one and the value allows it, else ``s.param`` and the value's columns.
        Values go through ``args``, never into the SQL text."""
