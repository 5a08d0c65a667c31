"""JSON-level issues (code ``structure``, answered 400) versus content issues (422)."""

from __future__ import annotations

import pytest

from app.validation import is_json_level, rejection_status, validate_resource
from tests.validation.validation_samples import patient


def errors(resource: dict) -> set[tuple[str, str]]:
    return {(i.code, i.expression[0]) for i in validate_resource(resource) if i.severity == "error"}


@pytest.mark.parametrize(
    "changes, expression",
    [
        ({"gender": 1}, "Patient.gender"),
        ({"name": [{"family": 5}]}, "Patient.name[0].family"),
        ({"active": "true"}, "Patient.active"),
        ({"multipleBirthInteger": "2"}, "Patient.multipleBirthInteger"),
        ({"name": {"family": "X"}}, "Patient.name"),
        ({"gender": ["male"]}, "Patient.gender"),
        ({"name": [{"family": "a\u0000b"}]}, "Patient.name[0].family"),
        ({"name": [{"given": ["ok", "bell\u0007"]}]}, "Patient.name[0].given[1]"),
        ({"id": "x\u001f"}, "Patient.id"),
    ],
)
def test_json_level_problems_are_structure_and_400(changes: dict, expression: str) -> None:
    resource = {**patient(), **changes}
    assert errors(resource) == {("structure", expression)}
    issues = [i for i in validate_resource(resource) if i.severity == "error"]
    assert all(is_json_level(i) for i in issues) and rejection_status(issues) == 400


def test_every_issue_is_reported_with_its_expression() -> None:
    resource = {**patient(), "gender": 1, "name": [{"family": 5}], "birthDate": "1990-02-30x"}
    assert errors(resource) == {
        ("structure", "Patient.gender"),
        ("structure", "Patient.name[0].family"),
        ("value", "Patient.birthDate"),
    }
    issues = validate_resource(resource)
    assert rejection_status([i for i in issues if i.severity == "error"]) == 400


def test_tab_line_feed_and_carriage_return_are_allowed() -> None:
    resource = {**patient(), "name": [{"text": "a\tb\r\nc"}]}
    assert errors(resource) == set()


def test_control_character_message_names_it() -> None:
    (issue,) = validate_resource({**patient(), "name": [{"family": "ab\u0000"}]})
    assert "U+0000 at position 2" in issue.diagnostics


def test_content_problems_stay_422() -> None:
    resource = {**patient(), "gender": "mal", "foo": 1}
    issues = [i for i in validate_resource(resource) if i.severity == "error"]
    assert {i.code for i in issues} == {"code-invalid", "processing"}
    assert rejection_status(issues) == 422
