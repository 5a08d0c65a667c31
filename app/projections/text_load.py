"""Replay's bulk load of the full-text rows: the document of each distinct text computed once.

The ``text`` side table stores what PostgreSQL computes from the folded text (two ``to_tsvector``
parses, :func:`app.search_types.text.document_sql`): row by row that was the largest single cost of
a replay (about 28 us of PostgreSQL CPU per Observation, a third of the server's share). The texts
repeat across resources (a code's display, a status, the same few words of ``_content``), so a
batch's rows are grouped by text (:func:`grouped`, in the worker processes) and sent as one element
per distinct text with the keys and parameters of its rows; PostgreSQL computes each document once
and expands the rows. The rows stored are the same as row by row (same text, same function), in
another physical order."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

import asyncpg

from app.joined_text import NULL_MARK, SEPARATOR, split_sql
from app.projections.copy_text import KeyedRows
from app.search_types.text import document_sql

KIND = "text"


@dataclass(slots=True)
class TextGroups:
    """Rows ``(key, param, text)`` grouped by text: the distinct ``texts``, and for each the keys of
    its rows (decimal, space separated) and their parameters (:data:`SEPARATOR` separated)."""

    texts: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    params: list[str] = field(default_factory=list)

    def __add__(self, other: TextGroups) -> TextGroups:
        """Groups of disjoint resources, as one (a text in both is then computed twice)."""
        return TextGroups(self.texts + other.texts, self.keys + other.keys, self.params + other.params)


def as_rows(data: TextGroups | list[tuple]) -> list[tuple]:
    """Grouped rows as rows ``(key, param, text)`` again (a list stays as it is)."""
    if not isinstance(data, TextGroups):
        return data
    out: list[tuple] = []
    for text, keys, params in zip(data.texts, data.keys, data.params, strict=True):
        out += [(int(k), p, text) for k, p in zip(keys.split(" "), params.split(SEPARATOR), strict=True)]
    return out


def grouped(data: KeyedRows) -> TextGroups | None:
    """Rows ``(param, text)`` by resource key (:data:`KeyedRows`) grouped by text, or None when a
    parameter holds a separator (the rows then go one by one)."""
    groups: dict[str, tuple[list[str], list[str]]] = {}
    for key, rows in data:
        for param, text in rows:
            group = groups.get(text)
            if group is None:
                groups[text] = group = ([], [])
            group[0].append(key)
            group[1].append(param)
    codes = "".join(set().union(*(params for _, params in groups.values())))
    if SEPARATOR in codes or NULL_MARK in codes:
        return None
    values = groups.values()
    return TextGroups(list(groups), [" ".join(k) for k, _ in values], [SEPARATOR.join(p) for _, p in values])


@cache
def _insert_sql(table: str) -> str:
    # OFFSET 0 keeps the subquery a subquery: pulled up, its document would be computed per row
    return (
        f"INSERT INTO {table} (key, param, doc) SELECT r.k, r.p, d.doc FROM"
        f" (SELECT {document_sql('v.x')} AS doc, v.ks, v.ps"
        " FROM unnest($1::text[], $2::text[], $3::text[]) AS v(x, ks, ps) OFFSET 0) d,"
        f" LATERAL unnest(string_to_array(d.ks, ' ')::bigint[], {split_sql('d.ps')}) AS r(k, p)"
    )


async def load_groups(conn: asyncpg.Connection, table: str, groups: TextGroups) -> None:
    """Insert the grouped rows into the text side table ``table``."""
    if groups.texts:
        await conn.execute(_insert_sql(table), groups.texts, groups.keys, groups.params)
