"""Strict and lenient search handling (https://hl7.org/fhir/R4/search.html#errors), the self link
of a lenient search, _count clamping, distinct totals, and bad input that must be a 400."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import parse_qsl, urlsplit

import asyncpg
import httpx
import pytest

from app.api.app import create_app
from app.settings import Settings
from tests.queries.test_search import TAG_SYSTEM, Scope, pat

LENIENT = {"Prefer": "handling=lenient"}


def _outcome_issues(bundle: dict) -> list[dict]:
    return [i for e in bundle.get("entry", []) if e["search"]["mode"] == "outcome" for i in e["resource"]["issue"]]


def _self_params(bundle: dict) -> list[tuple[str, str]]:
    url = next(link["url"] for link in bundle["link"] if link["relation"] == "self")
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


async def _rejected(client: httpx.AsyncClient, url: str, naming: str, **headers: str) -> dict:
    r = await client.get(url, headers=headers)
    assert r.status_code == 400, (url, r.status_code, r.text[:300])
    body = r.json()
    assert body["resourceType"] == "OperationOutcome"
    assert naming in body["issue"][0]["diagnostics"], (url, body)
    return body


@pytest.fixture
async def lenient_client(settings: Settings, pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.model_copy(update={"search_handling": "lenient"}), pool)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        yield c


async def test_unknown_parameter_is_rejected_by_default(client: httpx.AsyncClient, log_count) -> None:
    before = await log_count()
    await _rejected(client, "/fhir/Patient?not-a-param=x", "not-a-param")
    await _rejected(client, "/fhir/Patient?not-a-param=x", "not-a-param", Prefer="handling=strict")
    await _rejected(client, "/fhir/Observation?subject.nonsense=1", "subject.nonsense")
    await _rejected(client, "/fhir/Patient?_has:Observation:code:code=1", "_has:Observation:code:code")
    await _rejected(client, "/fhir/Patient?gender:fuzzy=male", "fuzzy")
    await _rejected(client, "/fhir/Patient?_sort=nonsense", "nonsense")
    await _rejected(client, "/fhir/Patient?_include=Nonsense:subject", "Nonsense")
    await _rejected(client, "/fhir/Patient?_include=Patient:nonsense", "nonsense")
    await _rejected(client, "/fhir/Patient?_revinclude=Observation:nonsense", "nonsense")
    await _rejected(client, "/fhir?not-a-param=x", "not-a-param")
    assert await log_count() == before


async def test_lenient_ignores_with_warning_and_self_link_lists_applied_only(client: httpx.AsyncClient) -> None:
    s = Scope(client)
    await s.add("a", pat(gender="female"))
    query = (
        "gender=female&not-a-param=x&gender:fuzzy=male&_sort=nonsense,-_id&_include=Nonsense:x"
        "&_revinclude=Observation:nonsense&subject.nonsense=1"
    )
    bundle = await s.bundle("Patient", query, **LENIENT)
    assert [e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == "match"] == [s.ids["a"]]
    text = " ".join(i["diagnostics"] for i in _outcome_issues(bundle))
    for ignored in ("not-a-param", "fuzzy", "nonsense", "Nonsense", "subject.nonsense"):
        assert ignored in text, (ignored, text)
    assert all(i["severity"] == "warning" for i in _outcome_issues(bundle))
    applied = _self_params(bundle)
    assert ("gender", "female") in applied and ("_sort", "-_id") in applied
    assert ("_tag", f"{TAG_SYSTEM}|{s.tag}") in applied
    names = {k for k, _ in applied}
    assert not names & {"not-a-param", "gender:fuzzy", "_include", "_revinclude", "subject.nonsense"}


async def test_lenient_setting_is_the_default_prefer_strict_overrides(lenient_client: httpx.AsyncClient) -> None:
    r = await lenient_client.get("/fhir/Patient?not-a-param=x&_count=1")
    assert r.status_code == 200, r.text
    assert any("not-a-param" in i["diagnostics"] for i in _outcome_issues(r.json()))
    await _rejected(lenient_client, "/fhir/Patient?not-a-param=x", "not-a-param", Prefer="handling=strict")


async def test_count_above_maximum_is_clamped_with_warning(client: httpx.AsyncClient) -> None:
    s = Scope(client)
    await s.add("a", pat())
    for strictness in ("strict", "lenient"):
        r = await client.get(
            f"/fhir/Patient?_tag={TAG_SYSTEM}|{s.tag}&_count=5000", headers={"Prefer": f"handling={strictness}"}
        )
        assert r.status_code == 200, r.text
        bundle = r.json()
        assert ("_count", "1000") in _self_params(bundle)
        assert any("_count" in i["diagnostics"] and "1000" in i["diagnostics"] for i in _outcome_issues(bundle))
    huge = await client.get(f"/fhir/Patient?_tag={TAG_SYSTEM}|{s.tag}&_count={'9' * 5000}")
    assert huge.status_code == 200 and ("_count", "1000") in _self_params(huge.json())
    await _rejected(client, "/fhir/Patient?_count=\u00b2", "_count")


async def test_total_counts_each_resource_once(client: httpx.AsyncClient) -> None:
    s = Scope(client)
    word = f"Twice{s.tag[:8]}"
    pid = await s.add("a", pat(name=[{"family": word, "given": [word + "a"]}, {"family": word + "b"}]))
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}}
    await s.add("o1", {**obs, "subject": {"reference": f"Patient/{pid}"}})
    await s.add("o2", {**obs, "subject": {"reference": f"Patient/{pid}"}})
    other = await s.add("b", pat(name=[{"family": "Other"}]))
    for query in (
        f"name={word.lower()}",
        f"family={word},{word}b",
        f"_has:Observation:subject:status=final&_id={pid},{other}",
        f"_has:Observation:subject:status=final&name={word}",
    ):
        body = (await client.get(f"/fhir/Patient?{query}")).json()
        assert body["total"] == 1 == len(body["entry"]), (query, body.get("total"))
    body = (await client.get(f"/fhir/Observation?subject:Patient.name={word}")).json()
    assert body["total"] == 2 == len(body["entry"])


@pytest.mark.parametrize("bad", ["\x00", "a\x00b", "\x01", "x\x1fy"])
async def test_control_characters_are_400(client: httpx.AsyncClient, log_count, bad: str) -> None:
    before = await log_count()
    for code in ("name", "identifier", "_id", "_tag", "general-practitioner", "_has:Observation:patient:code"):
        r = await client.get("/fhir/Patient", params={code: bad})
        assert r.status_code == 400, (code, r.text[:200])
        assert code in r.json()["issue"][0]["diagnostics"]
    r = await client.get("/fhir/Patient", params={"name": bad}, headers=LENIENT)
    assert r.status_code == 400 and "name" in r.json()["issue"][0]["diagnostics"]
    r = await client.post("/fhir/Patient/_search", data={"family": bad})
    assert r.status_code == 400 and "family" in r.json()["issue"][0]["diagnostics"]
    assert await log_count() == before


@pytest.mark.parametrize(
    "query",
    [
        "value-quantity=1e999999999",
        "value-quantity=1e-999999999",
        "value-quantity=gt1E+99999999",
        "value-quantity=ap1e999999999|http://unitsofmeasure.org|mg",
        "combo-value-quantity=1e999999999",
        "code-value-quantity=http://loinc.org|1$1e-99999999",
    ],
)
async def test_extreme_exponents_are_400(client: httpx.AsyncClient, query: str) -> None:
    await _rejected(client, f"/fhir/Observation?{query}", query.split("=")[0])


async def test_numbers_with_many_digits_still_match(client: httpx.AsyncClient) -> None:
    s = Scope(client)
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}}
    await s.add("big", {**obs, "valueQuantity": {"value": 1e300}})
    assert await s.find("Observation", "value-quantity=1e300") == {"big"}
    assert await s.find("Observation", "value-quantity=gt1e299") == {"big"}


async def test_too_many_or_values_and_criteria_are_400(client: httpx.AsyncClient) -> None:
    values = ",".join(f"v{i}" for i in range(101))
    body = await _rejected(client, f"/fhir/Patient?identifier={values}", "identifier")
    assert "100" in body["issue"][0]["diagnostics"]
    ok = await client.get(f"/fhir/Patient?identifier={','.join(f'v{i}' for i in range(100))}")
    assert ok.status_code == 200
    many = "&".join(f"identifier=v{i}" for i in range(51))
    body = await _rejected(client, f"/fhir/Patient?{many}", "50")
    huge = "&".join(f"_id={','.join(str(j) for j in range(100))}" for _ in range(50))
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert (await client.post("/fhir/Patient/_search", content=huge, headers=form)).status_code == 200
    await _rejected(client, f"/fhir/Patient?_sort={','.join(['birthdate'] * 9)}", "_sort")
