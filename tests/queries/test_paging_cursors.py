"""Forged, truncated and malformed paging cursors (``_page``) on search and history: always a 400
OperationOutcome naming the parameter, never a 500, and nothing written to the event log."""

from __future__ import annotations

import base64
import random
from urllib.parse import parse_qsl, urlsplit

import httpx
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.errors import FhirError
from app.queries.paging import decode_cursor
from tests.queries.test_search import TAG_SYSTEM, Scope, pat

SEED = 20261209
ROUNDS = 60


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _json(value: object) -> str:
    return _b64(orjson.dumps(value))


HUGE = 10**18
FORGED_STATES: list[object] = [
    [],
    "next",
    5,
    None,
    {},
    {"id": 5},
    {"id": "x\u0000y", "v": [], "d": "next"},
    {"id": "x", "v": ["\u0000"], "d": "next"},
    {"id": "x", "v": "abc", "d": "next"},
    {"id": "x", "v": [None, None, None], "d": "next"},
    {"id": "x", "v": [{"a": 1}], "d": "next"},
    {"id": "x", "v": [[1, 2]], "d": "next"},
    {"id": "x", "v": ["not a date"], "d": "next"},
    {"id": "x", "v": ["0001-01-01T00:00:00+14:00"], "d": "next"},
    {"id": "x", "v": ["9999-12-31T23:59:59-14:00"], "d": "next"},
    {"id": "x", "v": ["1e999999999"], "d": "next"},
    {"id": "x", "v": ["abc"], "d": "next"},
    {"id": "x", "v": [HUGE * HUGE // HUGE], "d": "next"},
    {"id": "x", "v": [1e308], "d": "next"},
    {"id": "x", "v": [], "d": "sideways"},
    {"id": "x", "v": [], "d": "prev"},
    {"id": "x" * 30_000, "v": [], "d": "next"},
    {"id": True, "v": [], "d": "next"},
    {"t": "Patient\u0000", "id": "x"},
    {"t": 7, "id": "x"},
    {"t": "Patient", "id": ["x"]},
    {"t": "Patient", "id": "x\u0000"},
    {"k": -(2**63) - 1 + 1, "d": "next"},
    {"k": 2**63 - 1, "d": "next"},
    {"k": 2**64 - 1, "d": "prev"},
    {"k": True, "d": "next"},
    {"k": 1.5, "d": "next"},
    {"k": "1", "d": "next"},
    {"k": 1, "d": None},
]
RAW_FORMS = [
    "",
    "=",
    "!!!!",
    "%00",
    "\u0000",
    "a",
    "ab=",
    "____",
    "é",
    "x" * 20_000,
    _b64(b"\x00\x01\x02\xff"),
    _b64(b"{"),
    _b64(b'{"id":'),
    _b64('{"id":"\u0000"}'.encode()),
    _b64(b'{"id":"x","v":[],"d":"next"}\x00'),
    _b64(b'{"k":99999999999999999999999999999}'),
    _b64(b'{"k":1e400}'),
    _b64(b"[" * 5000 + b"]" * 5000),
    _b64(b'{"a":' * 300 + b"1" + b"}" * 300),
]


def _forms(valid: str | None) -> list[str]:
    """Malformed cursors: hand-picked, random bytes, and truncations or bit flips of a valid one."""
    rng = random.Random(SEED)
    forms = [*RAW_FORMS, *(_json(s) for s in FORGED_STATES)]
    for _ in range(ROUNDS):
        forms.append(_b64(rng.randbytes(rng.randrange(1, 64))))
    if valid:
        forms += [valid[:n] for n in range(1, len(valid), max(1, len(valid) // 12))]
        raw = bytearray(base64.urlsafe_b64decode(valid + "=" * (-len(valid) % 4)))
        for _ in range(ROUNDS // 2):
            flipped = bytearray(raw)
            flipped[rng.randrange(len(flipped))] = rng.randrange(256)
            forms.append(_b64(bytes(flipped)))
    return forms


def _cursor_of(bundle: dict) -> str | None:
    for link in bundle.get("link", []):
        if link["relation"] == "next":
            return dict(parse_qsl(urlsplit(link["url"]).query)).get("_page")
    return None


async def _check_all(client: httpx.AsyncClient, path: str, params: list[tuple[str, str]], log_count) -> None:
    first = await client.get(path, params=params)
    assert first.status_code == 200, first.text
    valid = _cursor_of(first.json())
    assert valid, "the first page has a next link with a cursor"
    before = await log_count()
    for form in _forms(valid):
        r = await client.get(path, params=[*params, ("_page", form)])
        assert r.status_code in (200, 400, 414), (path, form[:200], r.status_code, r.text[:300])
        if r.status_code in (400, 414):  # 414: the forged cursor made the URL longer than the server takes
            body = r.json()
            assert body["resourceType"] == "OperationOutcome"
            named = "_page" if r.status_code == 400 else "MAX_URL_BYTES"
            assert named in body["issue"][0]["diagnostics"], (form[:100], body)
    assert await log_count() == before


@pytest.fixture
async def tagged(client: httpx.AsyncClient) -> Scope:
    s = Scope(client)
    for i in range(4):
        await s.add(f"p{i}", pat(gender="female", birthDate=f"198{i}-01-0{i + 1}", name=[{"family": f"F{i}"}]))
        obs = {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "w"},
            "valueQuantity": {"value": i + 0.5, "unit": "kg"},
        }
        await s.add(f"o{i}", obs)
    return s


@pytest.mark.parametrize(
    ("resource_type", "sort"),
    [
        ("Patient", None),
        ("Patient", "birthdate"),
        ("Patient", "-birthdate,_id"),
        ("Patient", "family"),
        ("Patient", "-_lastUpdated"),
        ("Observation", "value-quantity"),
    ],
)
async def test_forged_search_cursors_answer_400(
    client: httpx.AsyncClient, tagged: Scope, log_count, resource_type: str, sort: str | None
) -> None:
    params = [("_tag", f"{TAG_SYSTEM}|{tagged.tag}"), ("_count", "1")]
    if sort:
        params.append(("_sort", sort))
    await _check_all(client, f"/fhir/{resource_type}", params, log_count)


async def test_forged_system_search_cursors_answer_400(client: httpx.AsyncClient, tagged: Scope, log_count) -> None:
    params = [("_type", "Observation,Patient"), ("_tag", f"{TAG_SYSTEM}|{tagged.tag}"), ("_count", "1")]
    await _check_all(client, "/fhir", params, log_count)


@pytest.mark.parametrize("level", ["instance", "type", "system"])
async def test_forged_history_cursors_answer_400(
    client: httpx.AsyncClient, tagged: Scope, log_count, level: str
) -> None:
    pid = tagged.ids["p0"]
    for family in ("G1", "G2"):
        r = await client.put(f"/fhir/Patient/{pid}", json={**pat(name=[{"family": family}]), "id": pid})
        assert r.status_code == 200, r.text
    path = {"instance": f"/fhir/Patient/{pid}/_history", "type": "/fhir/Patient/_history", "system": "/fhir/_history"}
    await _check_all(client, path[level], [("_count", "1")], log_count)


@pytest.mark.parametrize(
    "count", ["9" * 5000, "\u00b2", "\u0663", "1" * 40], ids=["long", "sup2", "arabic3", "40digits"]
)
async def test_absurd_count_is_rejected_or_capped_not_500(client: httpx.AsyncClient, count: str) -> None:
    for path in ("/fhir/Patient", "/fhir/_history", "/fhir"):
        r = await client.get(path, params={"_count": count})
        assert r.status_code in (200, 400), (path, count[:20], r.text[:300])
        if r.status_code == 400:
            assert "_count" in r.json()["issue"][0]["diagnostics"]


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)


def _safe(value: object) -> bool:
    """What may reach SQL: no NUL in strings, integers a bigint holds."""
    if isinstance(value, str):
        return "\x00" not in value
    if isinstance(value, bool) or value is None:
        return True
    if isinstance(value, int):
        return -(2**63) <= value < 2**63
    items = value.values() if isinstance(value, dict) else value
    return all(_safe(v) for v in items)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["id", "v", "d", "t", "k"]), _JSON, max_size=4) | st.text(max_size=80))
def test_decode_cursor_yields_safe_values_or_a_400_naming_page(value: object) -> None:
    text = value if isinstance(value, str) else _b64(orjson.dumps(value))
    try:
        state = decode_cursor(text)
    except FhirError as exc:
        assert exc.status == 400 and "_page" in exc.diagnostics
        return
    assert isinstance(state, dict) and _safe(state), state
