"""The walker's fast path for primitive values (``primitives.fast_checks``, with the values it
remembers as good) accepts exactly the values the full checks accept, so every rule still fires."""

from __future__ import annotations

import pytest

from app.validation import validate_resource
from app.validation.primitives import PRIMITIVE_TYPES, checkers, fast_checks, json_problem
from tests.validation.validation_samples import patient

VALUES: list[object] = [
    *["", " ", "a", "a b", "a  b", " a", "a ", "a\tb", "a\nb", "\r\n", "a\x01b", "a\x0bb", "\x00", "é", "a\u00a0b"],
    *["2020", "2020-13", "2020-02", "2020-01-01", "2020-01-01T10:00:00Z", "2020-01-01T10:00:00", "10:00:00"],
    *["2020-01-01T10:00:00.123+01:00", "24:00:00", "urn:oid:1.2.3", "urn:oid:x", "QUJD", "QUJ", "x" * 65, "a-1.2"],
    *["urn:uuid:0123abcd-0000-4000-8000-000000000000", "urn:uuid:0123ABCD-0000-4000-8000-000000000000"],
    *["<div>x</div>", " <div xmlns='http://www.w3.org/1999/xhtml'>a</div> ", "<p>x</p>", "true"],
    *[0, 1, -1, 2**31 - 1, 2**31, -(2**31), True, False, 1.5, -0.0, float("inf"), float("nan"), None, [], {}, ["a"]],
]


@pytest.mark.parametrize("type_code", sorted(PRIMITIVE_TYPES))
def test_fast_check_accepts_what_the_full_checks_accept(type_code: str) -> None:
    fast = fast_checks()[type_code]
    for _ in range(2):  # the second round answers good strings from the remembered values
        for value in VALUES:
            full = json_problem(type_code, value) is None and checkers()[type_code](value) is None
            assert fast(value) is full, (type_code, value)


def test_a_value_good_for_one_type_is_still_refused_where_its_type_forbids_it() -> None:
    """``male`` is a good string (remembered) but not a good ``date``: both places are checked."""
    resource = {**patient(), "gender": "male", "name": [{"family": "male"}], "birthDate": "male"}
    issues = [i for i in validate_resource(resource) if i.severity == "error"]
    assert [(i.code, i.expression) for i in issues] == [("value", ("Patient.birthDate",))]


def test_a_code_outside_its_required_value_set_is_refused_after_good_ones() -> None:
    assert not [i for i in validate_resource({**patient(), "gender": "female"}) if i.severity == "error"]
    issues = [i for i in validate_resource({**patient(), "gender": "femme"}) if i.severity == "error"]
    assert [(i.code, i.expression) for i in issues] == [("code-invalid", ("Patient.gender",))]


def test_a_primitive_with_an_extension_sibling_is_checked_with_it() -> None:
    """A good value takes the slow path when ``_name`` is present, so the extension is checked."""
    resource = {**patient(), "birthDate": "1970-01-01", "_birthDate": {"foo": 1}}
    issues = [i for i in validate_resource(resource) if i.severity == "error"]
    assert [(i.code, i.expression) for i in issues] == [("processing", ("Patient.birthDate.foo",))]
