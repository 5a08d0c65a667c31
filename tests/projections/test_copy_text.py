"""COPY text data of rows: the generated encoders give what the reference encoder (one value at a
time) gives, and PostgreSQL reads back the values that went in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import asyncpg

from app.projections import copy_text
from app.projections.copy_text import encode, encode_keyed, encode_typed

TYPES = ("text", "timestamptz", "timestamptz", "numeric", "boolean", "bigint")
PLUS_TWO = timezone(timedelta(hours=2))


def _rows() -> list[tuple]:
    t = datetime(2021, 3, 4, 5, 6, 7, 123000, tzinfo=UTC)
    return [
        ("a", t, t + timedelta(seconds=1), Decimal("1.50"), True, 1),
        ("b", t, None, None, False, None),  # the same datetime again (remembered)
        ("c", datetime(2021, 3, 4, 9, 6, 7, 123000, tzinfo=PLUS_TWO), datetime(2020, 1, 1), Decimal("-0"), None, 3),
        ("d\tx", datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC), Decimal("1E+3"), True, -2),
        (None, datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC), t, Decimal("0.001"), False, 2**62),
    ]


def test_generated_encoders_match_the_reference() -> None:
    for clear in (True, False):
        if clear:
            copy_text._STAMPS.clear()
        rows = _rows()
        clean = [r for r in rows if "\t" not in (r[0] or "")]
        assert encode_typed(clean, TYPES) == encode(clean)
        assert encode_typed(rows, TYPES) == encode(rows)  # escaped: the reference's own output
        keyed = [("7", clean[:2]), ("8", clean[2:])]
        assert encode_keyed(keyed, TYPES) == encode([("7", *r) for r in clean[:2]] + [("8", *r) for r in clean[2:]])


async def test_postgres_reads_back_the_values(pool: asyncpg.Pool) -> None:
    """The instants (a datetime of another offset equal to a remembered UTC one included) and the
    other values, as PostgreSQL stores them; and as asyncpg's binary arrays (a write's statement)
    store them: the first and last instants Python has, the open ends of date ranges, are
    ``-infinity`` and ``infinity`` both ways (COPY stored them as finite instants: a replay's date
    rows differed from the writes')."""
    rows = _rows()
    offset = datetime(2021, 3, 4, 7, 6, 7, 123000, tzinfo=PLUS_TWO)
    rows.append(("e", offset, offset, Decimal(2), True, 4))
    data = encode_typed(rows, TYPES)
    columns = "(s text, a timestamptz, b timestamptz, n numeric, f boolean, i bigint)"
    async with pool.acquire() as conn:
        await conn.execute(f"CREATE TEMP TABLE copied {columns}; CREATE TEMP TABLE bound {columns}")
        try:
            await conn.copy_to_table("copied", source=memoryview(data), format="text")
            back = [tuple(r) for r in await conn.fetch("SELECT * FROM copied")]
            await conn.executemany("INSERT INTO bound VALUES ($1, $2, $3, $4, $5, $6)", rows)
            finite = "a::text NOT IN ('infinity', '-infinity') AND b::text NOT IN ('infinity', '-infinity')"
            assert await conn.fetchval(f"SELECT count(*) FROM copied WHERE NOT ({finite})") == 1
            assert await conn.fetch("SELECT *, a::text, b::text FROM copied") == await conn.fetch(
                "SELECT *, a::text, b::text FROM bound"
            )
        finally:
            await conn.execute("DROP TABLE copied; DROP TABLE bound")
    extreme = next(i for i, r in enumerate(rows) if r[0] == "d\tx")
    rows, back = rows[:extreme] + rows[extreme + 1 :], back[:extreme] + back[extreme + 1 :]

    def same(a: tuple, b: tuple) -> bool:
        naive = [v.replace(tzinfo=UTC) if isinstance(v, datetime) and v.tzinfo is None else v for v in a]
        return all(x == y for x, y in zip(naive, b, strict=True))

    assert len(back) == len(rows)
    assert all(same(a, b) for a, b in zip(rows, back, strict=True))


def test_instant_text_of_utc_is_isoformat_and_the_extremes_are_infinities() -> None:
    """:func:`copy_text.instant_text` puts a UTC datetime's text together from its fields: the same
    text as ``isoformat`` (with and without a fraction, at the four-digit years' bounds)."""
    start = datetime(1000, 1, 1, tzinfo=UTC)
    step = timedelta(days=3652, seconds=3607, microseconds=123457)
    values = [start + step * i for i in range(0, 900)]
    values += [v.replace(microsecond=0) for v in values]
    values += [datetime(9998, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), datetime(999, 12, 31, 23, 59, 59, tzinfo=UTC)]
    values += [datetime(9999, 1, 1, tzinfo=UTC), datetime(2021, 3, 4, 5, 6, 7, tzinfo=PLUS_TWO)]
    for value in values:
        assert copy_text.instant_text(value) == value.isoformat()
    assert copy_text.instant_text(datetime.min.replace(tzinfo=UTC)) == "-infinity"
    assert copy_text.instant_text(datetime.max.replace(tzinfo=UTC)) == "infinity"
