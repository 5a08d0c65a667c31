"""The rows of a write travel with each column joined into one string (app/joined_text.py): the
search rows of a create and of a transaction, the events appended together and their current-state
rows; whatever the values (NULLs, empty strings, the separator characters themselves, decimals with
exponents, the extremes of the date ranges), the rows stored are the rows computed."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from uuid import UUID

import asyncpg
import pytest

from app.commands.create import decide_create
from app.events.model import RequestContext
from app.events.store import append
from app.fhirtime import now_millis
from app.joined_text import NULL_MARK, SEPARATOR, joined, joined_as, split_sql
from app.projections import custom_params
from app.projections.current_state import CurrentStateProjector
from app.projections.one_statement import append_and_project
from app.projections.search_index import COLUMNS as SIDE_COLUMNS
from app.projections.search_index import SearchIndexProjector, TypeRows, rows_of, search_table
from app.search_types.protocol import system_hash
from tests.helpers import new_id, side_rows_sql

COLUMNS = [
    ["a", "b", "c"],
    ["a", None, ""],
    [None],
    [None, None, None],  # only NULLs (a token's of-type column): one remembered string
    [None] * 70,
    ["", ""],
    [""],
    [f"x{SEPARATOR}y", "z"],
    [NULL_MARK, "z"],
    [f"{NULL_MARK}x", None],
    ["é ✓ 𝄞", "tab\tnew\nline\\back"],
]


@pytest.mark.parametrize("column", COLUMNS)
async def test_a_joined_column_splits_back_to_its_values_or_is_refused(pool: asyncpg.Pool, column: list) -> None:
    text = joined(column)
    ambiguous = column == [""] or any(v is not None and (SEPARATOR in v or NULL_MARK in v) for v in column)
    assert (text is None) == ambiguous, "refused exactly when the string could not give the values back"
    if text is not None:
        assert await pool.fetchval(f"SELECT {split_sql('$1')}", text) == column


@pytest.mark.parametrize("code", ["plain", "", f"with{SEPARATOR}separator", NULL_MARK])
async def test_token_rows_are_stored_as_computed(pool: asyncpg.Pool, code: str) -> None:
    rid = new_id()
    rows = [(rid, "code", system_hash("http://loinc.org"), code, None), (rid, "identifier", None, "v1", "MR")]
    tr = TypeRows(rows={"token": rows})
    table = search_table("Observation", "token")
    async with pool.acquire() as conn:
        transaction = conn.transaction()  # rolled back: rows of no event would differ from a replay
        await transaction.start()
        try:
            await conn.execute(  # the rows are keyed by the resource's current-state row
                "INSERT INTO cur_observation VALUES ($1, 1, false, now(), -1, -1)", rid
            )
            await SearchIndexProjector().write(conn, {"Observation": tr})
            columns = "c.id, s.param, s.system_hash, s.code, s.of_type"
            stored = await conn.fetch(side_rows_sql(table, "cur_observation", columns, "c.id = $1"), rid)
        finally:
            await transaction.rollback()
    assert {tuple(r) for r in stored} == set(rows)


@pytest.mark.parametrize("code", ["plain", "", f"with{SEPARATOR}separator", NULL_MARK])
async def test_a_one_statement_create_stores_the_rows_computed(pool: asyncpg.Pool, code: str) -> None:
    """A create is one statement (app/projections/one_statement.py) sending its text columns
    joined, or as arrays when a value holds a separator: the rows are the projector's either way."""
    rid = new_id()
    resource = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}], "text": "a code"},
        "subject": {"reference": "Patient/p-1"},
        "effectiveDateTime": "2020-01-02T03:04:05.678+02:00",
    }
    event = decide_create("Observation", rid, resource, now_millis(), RequestContext("POST", "Observation"))
    async with pool.acquire() as conn:
        await custom_params.sync(conn)
        assert await append_and_project(conn, event) is not None
    expected = rows_of(event.parsed)
    assert expected["date"] and expected["sort"]
    for kind in ("token", "reference", "date", "sort"):  # (the full-text table stores tsvectors)
        names = ", ".join(["s.param", *(c for c, _ in SIDE_COLUMNS[kind])])
        rows = await pool.fetch(
            side_rows_sql(search_table("Observation", kind), "cur_observation", names, "c.id = $1"), rid
        )
        assert sorted(map(tuple, rows), key=repr) == sorted(expected[kind], key=repr), kind


INSTANT = datetime(2020, 1, 2, 1, 4, 5, 678000, tzinfo=UTC)
TYPED_COLUMNS = [
    ("bigint", [system_hash("http://loinc.org"), None, -(2**63), 2**63 - 1, 0]),
    ("bigint", [None]),
    ("timestamptz", [INSTANT, None, datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)]),
    ("timestamptz", [datetime(1974, 12, 25, tzinfo=UTC), INSTANT.replace(microsecond=1)]),
    ("timestamptz", [None]),
    ("int", [1, None, -(2**31), 2**31 - 1]),
    ("numeric", [Decimal("1.50"), Decimal("1E+2"), Decimal("0E-7"), Decimal("-0"), 7, None, Decimal("-123.4567e-3")]),
    ("boolean", [True, False, None]),
    ("uuid", ["0b7e4f0c-5a8b-4a61-9c3e-1f2d3c4b5a69", None]),
]


@pytest.mark.parametrize(("sql_type", "column"), TYPED_COLUMNS)
async def test_a_joined_typed_column_gives_the_values_of_its_array(
    pool: asyncpg.Pool, sql_type: str, column: list
) -> None:
    """PostgreSQL reads back exactly the values the array parameter gives, in their text too (a
    decimal's scale, the extremes of the date ranges)."""
    text = joined_as(column, sql_type)
    assert text is not None
    async with pool.acquire() as conn:
        await conn.execute("SET TimeZone = 'America/New_York'")  # the offset in the text decides, not this
        try:
            split = await conn.fetchval(f"SELECT {split_sql('$1', sql_type)}", text)
            as_array = await conn.fetchval(f"SELECT $1::{sql_type}[]", column)
            text_of = "SELECT array_agg(v::text) FROM unnest({}) v"  # infinity reads back as Python's extremes
            assert await conn.fetchval(text_of.format(split_sql("$1", sql_type)), text) == await conn.fetchval(
                text_of.format(f"$1::{sql_type}[]"), column
            )
        finally:
            await conn.execute("RESET TimeZone")
    assert split == as_array


@pytest.mark.parametrize(
    ("sql_type", "column"),
    [
        ("bigint", [1, True]),
        ("bigint", [2**63]),
        ("bigint", ["1"]),
        ("timestamptz", [INSTANT.replace(tzinfo=None)]),
        ("timestamptz", [INSTANT.astimezone(timezone(timedelta(hours=2)))]),
        ("timestamptz", [date(2020, 1, 2)]),
        ("int", [2**31]),
        ("int", [False]),
        ("numeric", [1.5]),
        ("numeric", [True]),
        ("numeric", [Decimal("NaN")]),
        ("numeric", [Decimal("Infinity")]),
        ("boolean", [1]),
        ("uuid", [UUID("0b7e4f0c-5a8b-4a61-9c3e-1f2d3c4b5a69")]),
        ("bytea", [b"x"]),
    ],
)
def test_a_value_not_of_the_column_type_sends_the_array(sql_type: str, column: list) -> None:
    assert joined_as(column, sql_type) is None


@pytest.mark.parametrize("url", ["Observation", f"Obs{SEPARATOR}ervation", NULL_MARK, ""])
async def test_events_appended_together_store_the_values_they_hold(pool: asyncpg.Pool, url: str) -> None:
    """A transaction's events are appended by one statement (their columns joined, or arrays when a
    value holds a separator) and their current-state rows upserted by another: the log and the
    current-state table hold each event's own values either way."""
    at = now_millis()
    events = [
        decide_create("Basic", new_id(), {"resourceType": "Basic", "code": {"text": "x"}}, at, context)
        for context in (
            RequestContext("POST", url, actor="someone", client_addr=None),
            RequestContext("POST", "Basic", actor=None, client_addr="127.0.0.1"),
        )
    ]
    async with pool.acquire() as conn, conn.transaction():
        positions = await append(conn, events)
        await CurrentStateProjector().write(conn, CurrentStateProjector().rows(events, positions))
        logged = await conn.fetch(
            "SELECT position, resource_id, version, recorded_at, method, url, actor, client_addr"
            " FROM event_log WHERE position = ANY($1) ORDER BY position",
            positions,
        )
        current = await conn.fetch(
            "SELECT id, version, deleted, last_updated, position FROM cur_basic WHERE id = ANY($1) ORDER BY position",
            [e.resource_id for e in events],
        )
    assert [tuple(r) for r in logged] == [
        (p, e.resource_id, 1, at, "POST", e.context.url, e.context.actor, e.context.client_addr)
        for p, e in zip(positions, events, strict=True)
    ]
    assert [tuple(r) for r in current] == [
        (e.resource_id, 1, False, at, p) for p, e in zip(positions, events, strict=True)
    ]
