"""Invariants compare dates and times as moments: time zones, partial precision (FHIRPath N1 6.1.1)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.validation import invariants, validate_resource
from app.validation.temporal import compare, parse_moment


def period_errors(start: str, end: str) -> list[str]:
    encounter = {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"code": "AMB"},
        "period": {"start": start, "end": end},
    }
    return [i.diagnostics for i in validate_resource(encounter) if i.severity == "error"]


def test_synthea_period_across_daylight_saving_change_is_valid() -> None:
    # start 05:46:40Z, end 06:31:40Z: 45 minutes later although the text sorts before it
    assert period_errors("2020-10-29T01:46:40-04:00", "2020-10-29T01:31:40-05:00") == []


def test_period_ending_before_it_starts_in_another_zone_is_rejected() -> None:
    errors = period_errors("2020-10-29T01:46:40-04:00", "2020-10-29T00:31:40-05:00")
    assert len(errors) == 1 and "per-1" in errors[0]


@pytest.mark.parametrize(
    ("start", "end", "valid"),
    [
        ("2020-10", "2020-10-29T01:00:00Z", True),  # month vs seconds, same month: unknown, passes
        ("2020-11", "2020-10-29T01:00:00Z", False),  # a later month is later whatever the day
        ("2020", "2019-12-31T23:00:00-05:00", False),  # compared on the local year (no time on the left)
        ("2020-10-29", "2020-10-29", True),
        ("2020-10-30", "2020-10-29", False),
        ("2020-10-29", "2020-10-29T23:00:00-05:00", True),  # same day, unknown order
        ("2020-10-29T10:00:00Z", "2020-10-29T10:00:00.000Z", True),  # seconds and fraction: one precision
        ("2020-10-29T10:00:00.5Z", "2020-10-29T10:00:00.25Z", False),
        ("2020-10-29T23:30:00-02:00", "2020-10-30T01:00:00Z", False),  # 01:30Z then 01:00Z: start later
        ("2020-10-30T01:00:00Z", "2020-10-29T23:30:00-02:00", True),
    ],
)
def test_partial_precision_and_zones(start: str, end: str, valid: bool) -> None:
    assert (period_errors(start, end) == []) is valid


def test_compare_follows_fhirpath_precision_rules() -> None:
    def cmp(a: str, b: str) -> int | None:
        left, right = parse_moment(a), parse_moment(b)
        assert left is not None and right is not None
        return compare(left, right)

    assert cmp("2020-10", "2020-10-29") is None
    assert cmp("2020-10", "2020-09-29") == 1
    assert cmp("2020-10-29T01:46:40-04:00", "2020-10-29T00:46:40-05:00") == 0
    assert cmp("2020-10-29T10:00:00+05:30", "2020-10-29T04:30:00Z") == 0
    assert cmp("2020-10-29T10:00+05:30", "2020-10-29T04:30:01Z") is None  # minutes vs seconds
    assert cmp("2020-10-29T10:00:00.1Z", "2020-10-29T10:00:00.10Z") == 0


def run(expression: str, data: dict) -> bool | None:
    constraint = invariants.build({"key": "test-1", "expression": expression, "human": "test"}, "Period")
    return invariants.evaluate(constraint, data, data, data)


def test_every_comparison_operator_uses_moments() -> None:
    data = {"start": "2020-10-29T01:46:40-04:00", "end": "2020-10-29T00:46:40-05:00"}  # the same moment
    assert run("start = end", data) is True
    assert run("start != end", data) is False
    assert run("start <= end and start >= end", data) is True
    assert run("start < end or start > end", data) is False
    assert run("end > @2020-10-29T05:00:00Z", data) is True
    assert run("@2020-10-29T05:00:00Z < end", data) is True


def test_non_dates_still_compare_as_before() -> None:
    constraint = invariants.build({"key": "t", "expression": "period >= 0", "human": "t"}, "Timing.repeat")
    assert invariants.evaluate(constraint, {"period": 2}, {}, {}) is True
    assert invariants.evaluate(constraint, {"period": -2}, {}, {}) is False


def fhir_text(moment: datetime, offset_minutes: int, fraction: bool) -> str:
    zone = timezone(timedelta(minutes=offset_minutes))
    local = moment.astimezone(zone)
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    if fraction:
        text += f".{local.microsecond // 1000:03d}"
    if offset_minutes == 0:
        return text + "Z"
    sign = "+" if offset_minutes > 0 else "-"
    return f"{text}{sign}{abs(offset_minutes) // 60:02d}:{abs(offset_minutes) % 60:02d}"


instants = st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(2100, 12, 30), timezones=st.just(UTC))
offsets = st.sampled_from([-720, -600, -300, -240, -210, 0, 60, 120, 330, 345, 540, 780, 840])


@settings(max_examples=300, deadline=None)
@given(instants, instants, offsets, offsets, st.booleans())
def test_random_instants_in_random_zones(a: datetime, b: datetime, zone_a: int, zone_b: int, millis: bool) -> None:
    if not millis:
        a, b = a.replace(microsecond=0), b.replace(microsecond=0)
    else:
        a, b = a.replace(microsecond=a.microsecond // 1000 * 1000), b.replace(microsecond=b.microsecond // 1000 * 1000)
    errors = period_errors(fhir_text(a, zone_a, millis), fhir_text(b, zone_b, millis))
    assert (errors == []) is (a <= b), errors
