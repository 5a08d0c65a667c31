"""Replay's bulk load of the full-text rows: each distinct text sent once.

The ``text`` side table's rows hold the id of their text's document, and the documents are stored
once (:mod:`app.search_types.text`). The texts repeat across resources (a code's display, a status,
the same few words of ``_content``), so a batch's rows are grouped by text (:func:`grouped`, in the
worker processes) and sent as one element per distinct text with the keys and parameters of its
rows; PostgreSQL computes each text's id and document once (two ``to_tsvector`` parses; row by row,
they were once the largest single cost of a replay, about 28 us of PostgreSQL CPU per Observation),
stores the documents it does not have yet and expands the rows. The rows stored are the same as row
by row (same text, same function), in another physical order."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

import asyncpg

from app.joined_text import NULL_MARK, SEPARATOR, split_sql
from app.projections.copy_text import KeyedRows
from app.search_types.text import DOCUMENTS, doc_id_sql, document_sql

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


class CheckedTexts:
    """The texts whose documents a rebuild has already checked (stored as their text gives them), so
    a later batch of the same rebuild does not compute them again: a batch of 5,000 Observations of
    the million holds ~250 distinct texts, the whole type ~300 (computing a document costs about 20 us
    of PostgreSQL CPU, a third of the text rows' load when every batch computed all of its own). Up
    to :data:`BUDGET` characters of texts are remembered; past that, batches check the others
    themselves (as they did). Each rebuild has its own: one resumed after a crash checks anew."""

    BUDGET = 8_000_000

    def __init__(self) -> None:
        self.texts: set[str] = set()
        self.chars = 0

    def unchecked(self, texts: list[str]) -> list[str]:
        """Those of ``texts`` not checked yet, from now on taken as checked (their batch checks them)."""
        new = [t for t in texts if t not in self.texts]
        for text in new:
            if self.chars + len(text) <= self.BUDGET:
                self.texts.add(text)
                self.chars += len(text)
        return new


@cache
def _insert_sql(table: str) -> str:
    # each text's document still to check ($4) computed once, and checked against the stored one:
    # a document that differs (damaged, or altered by hand: the projection audit reports it) is
    # replaced, so a rebuild repairs the documents its rows refer to as it does the rows;
    # data-modifying CTEs share one snapshot, so the INSERT still sees a document the DELETE
    # removes, and adds the right one; a text may come twice (in the groups of two workers), its
    # document is stored once
    return (
        f"WITH m AS MATERIALIZED (SELECT c.x, {doc_id_sql('c.x')} AS id, {document_sql('c.x')} AS doc"
        " FROM unnest($4::text[]) AS c(x)),"
        f" bad AS (DELETE FROM {DOCUMENTS} d USING m WHERE d.id = m.id AND d.doc <> m.doc),"
        f" c AS (INSERT INTO {DOCUMENTS} (id, doc) SELECT DISTINCT ON (m.id) m.id, m.doc FROM m"
        f" WHERE NOT EXISTS (SELECT 1 FROM {DOCUMENTS} d WHERE d.id = m.id AND d.doc = m.doc))"
        f" INSERT INTO {table} (key, param, doc_id) SELECT r.k, r.p, n.id FROM"
        f" (SELECT {doc_id_sql('v.x')} AS id, v.ks, v.ps"
        " FROM unnest($1::text[], $2::text[], $3::text[]) AS v(x, ks, ps)) n,"
        f" LATERAL unnest(string_to_array(n.ks, ' ')::bigint[], {split_sql('n.ps')}) AS r(k, p)"
    )


async def load_groups(
    conn: asyncpg.Connection, table: str, groups: TextGroups, checked: CheckedTexts | None = None
) -> None:
    """Insert the grouped rows into the text side table ``table``, and check the documents of their
    texts (only those ``checked`` has not met yet, when given)."""
    if groups.texts:
        unchecked = groups.texts if checked is None else checked.unchecked(groups.texts)
        await conn.execute(_insert_sql(table), groups.texts, groups.keys, groups.params, unchecked)
