"""The compiled COPY encoder (app/native/copyrows.c) writes the bytes the Python encoders write, for
every column type, escapes and NULs included, and refuses rows it cannot encode."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app import native
from app.projections import copy_text
from app.projections.copy_text import encode_keyed, encode_typed, python_encode_keyed, python_encode_typed
from tests.helpers import native_unbuildable

pytestmark = pytest.mark.skipif(native_unbuildable(native.copyrows), reason="no C compiler: nothing compiled to test")

TYPES = ("text", "bigint", "numeric", "boolean", "timestamptz", "uuid", "integer")
_SPECIALS = st.sampled_from(["a\\b", "t\tab", "new\nline", "cr\r", "é€😀"])
_TEXT = st.one_of(st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=8), _SPECIALS)
_INSTANTS = st.one_of(
    st.datetimes(timezones=st.just(UTC)),
    st.datetimes(timezones=st.sampled_from([timezone(timedelta(hours=2)), timezone(timedelta(hours=-5))])),
    st.sampled_from([datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC), datetime(2020, 1, 1)]),
)
_ROW = st.tuples(
    st.none() | _TEXT,
    st.none() | st.integers(min_value=-(2**70), max_value=2**70),
    st.none() | st.decimals(allow_nan=False, allow_infinity=False) | st.floats(allow_nan=False) | st.integers(),
    st.none() | st.booleans(),
    st.none() | _INSTANTS,
    st.none() | _TEXT,
    st.none() | st.integers(min_value=-(2**31), max_value=2**31),
)


@given(st.lists(_ROW, max_size=6), st.booleans())
@settings(max_examples=500, deadline=None)
def test_the_compiled_encoder_writes_the_python_encoders_bytes(rows: list[tuple], remembered: bool) -> None:
    if not remembered:
        copy_text._STAMPS.clear()
    assert encode_typed(rows, TYPES) == python_encode_typed(rows, TYPES)
    keyed = [(str(i), rows[i : i + 2]) for i in range(0, len(rows), 2)]
    assert encode_keyed(keyed, TYPES) == python_encode_keyed(keyed, TYPES)


def test_every_column_type_as_postgresql_reads_it() -> None:
    t = datetime(2021, 3, 4, 5, 6, 7, 120, tzinfo=UTC)
    row = ("a\tb\\", 2**62, Decimal("1.50"), False, t, "x\ny", -7)
    expected = b"a\\tb\\\\\t4611686018427387904\t1.50\tf\t2021-03-04T05:06:07.000120+00:00\tx\\ny\t-7\n"
    assert encode_typed([row], TYPES) == expected
    nulls = (None,) * len(TYPES)
    assert encode_keyed([("12", [nulls, row[:1] + nulls[1:]])], TYPES) == (
        b"12\t" + b"\t".join([b"\\N"] * 7) + b"\n12\ta\\tb\\\\\t" + b"\t".join([b"\\N"] * 6) + b"\n"
    )


def test_a_row_of_the_wrong_width_is_refused() -> None:
    with pytest.raises(ValueError, match="3 values for 7 columns"):
        encode_typed([("a", 1, 2)], TYPES)
    with pytest.raises(TypeError, match="key text, rows"):
        encode_keyed([(12, [("a",) * 7])], TYPES)


def test_a_nul_is_refused() -> None:
    """No PostgreSQL text holds U+0000 (validation refuses it in every resource): an error, not a
    changed value."""
    with pytest.raises(ValueError, match="NUL character"):
        encode_typed([("a\x00b", None, None, None, None, None, None)], TYPES)


def test_a_value_without_a_copy_form_is_refused() -> None:
    with pytest.raises(TypeError, match="no COPY text form for object"):
        encode_typed([(None, None, None, None, None, object(), None)], TYPES)
