"""per-1 (a Period's start is not after its end): periods written alike are decided by their text
order without fhirpathpy; the others still get the time-aware comparison."""

from __future__ import annotations

import pytest

from app.validation import validate_resource


def _per1_fails(start: str, end: str) -> bool:
    encounter = {"resourceType": "Encounter", "status": "finished", "class": {"code": "AMB"}}
    issues = validate_resource({**encounter, "period": {"start": start, "end": end}})
    return any("per-1" in i.diagnostics for i in issues if i.severity == "error")


@pytest.mark.parametrize(
    ("start", "end", "fails"),
    [
        ("2020-10-29T01:16:40Z", "2020-10-29T01:31:40Z", False),
        ("2020-10-29T01:46:40Z", "2020-10-29T01:31:40Z", True),
        ("2020-10-29T01:16:40-04:00", "2020-10-29T01:31:40-04:00", False),
        ("2020-10-29T01:46:40-04:00", "2020-10-29T01:31:40-04:00", True),
        ("2020-10-29", "2020-10-28", True),
        ("2020-10-28", "2020-10-29", False),
        # written differently: the time-aware comparison decides
        ("2020-10-29T01:46:40-04:00", "2020-10-29T01:31:40-05:00", False),
        ("2020-10-29T01:46:40+02:00", "2020-10-29T01:31:40+03:00", True),
    ],
)
def test_per1(start: str, end: str, fails: bool) -> None:
    assert _per1_fails(start, end) is fails
