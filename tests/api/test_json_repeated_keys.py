"""The cheap test for repeated keys (``app.api.json_body._may_repeat_keys``: the text's colons
against those of orjson's rendering of what it kept) never misses one, however the text is written
(white space around colons, escaped colons and quotes, colons inside strings and keys), and lets a
clean body through without the slow parse."""

from __future__ import annotations

import json

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from app.api.json_body import _may_repeat_keys, read_json

keys = st.sampled_from(["a", "b", "a:b", 'q"', ":", "u003a"])
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.sampled_from(["x", "10:00", "urn:a:b", '"', "\\", ""])
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.lists(st.tuples(keys, inner), max_size=4).map(tuple),
    max_leaves=10,
)
spaces = st.sampled_from(["", " ", "\n  ", "\t"])


def render(value: object, draw: st.DrawFn) -> str:
    """JSON text of ``value`` (a tuple of pairs is an object, repeated keys kept), with white space
    and ``\\u`` escapes drawn at random."""
    if isinstance(value, tuple):
        pairs = [f"{text(key, draw)}{draw(spaces)}:{draw(spaces)}{render(item, draw)}" for key, item in value]
        return "{" + ",".join(pairs) + "}"
    if isinstance(value, list):
        return "[" + f",{draw(spaces)}".join(render(item, draw) for item in value) + "]"
    return text(value, draw) if isinstance(value, str) else json.dumps(value)


def text(value: str, draw: st.DrawFn) -> str:
    out = json.dumps(value)
    if draw(st.booleans()):
        out = out.replace(":", "\\u003a" if draw(st.booleans()) else "\\u003A")
    if draw(st.booleans()):
        out = '"' + out[1:-1].replace('\\"', "\\u0022") + '"'
    return out


def repeats(value: object) -> bool:
    if isinstance(value, tuple):
        names = [key for key, _ in value]
        return len(names) != len(set(names)) or any(repeats(item) for _, item in value)
    return isinstance(value, list) and any(repeats(item) for item in value)


@settings(max_examples=400, deadline=None)
@given(values.filter(lambda v: isinstance(v, tuple)), st.data())
def test_a_repeated_key_is_never_missed_and_a_clean_text_needs_no_second_parse(value: tuple, data) -> None:
    raw = render(value, data.draw).encode()
    body = orjson.loads(raw)
    assert json.loads(raw) == body
    if repeats(value):
        assert _may_repeat_keys(raw, body)
        assert read_json(raw)[1], raw  # and the slow parse names it
    else:
        assert not _may_repeat_keys(raw, body), raw
        assert read_json(raw)[1] == []


def test_a_pretty_printed_bundle_is_clean_and_a_repeat_deep_inside_it_is_found() -> None:
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": {"resourceType": "Patient"}}]}
    raw = json.dumps(bundle, indent=2).encode()
    assert not _may_repeat_keys(raw, orjson.loads(raw))
    doubled = raw.replace(b'"resourceType": "Patient"', b'"resourceType": "Patient", "active" : true, "active": false')
    body, issues = read_json(doubled)
    assert [i.expression for i in issues] == [("Bundle.entry[0].resource.active",)]
