"""Full-text search over HTTP (https://hl7.org/fhir/R4/search.html#content, #text, :text):
``_content`` over a resource's text, ``_text`` over its narrative, ``:text`` on string and token
parameters; stemming in the configured language (``english`` here), phrases, OR, exclusion,
combinations with other parameters, odd input, and the index following updates and deletes."""

from __future__ import annotations

import httpx
import pytest

from tests.queries.test_search import Scope, pat
from tests.queries.test_search_handling import LENIENT, _outcome_issues, _rejected

XHTML = "http://www.w3.org/1999/xhtml"


@pytest.fixture
def scope(client: httpx.AsyncClient) -> Scope:
    return Scope(client)


def narrative(html: str) -> dict:
    return {"status": "generated", "div": f'<div xmlns="{XHTML}">{html}</div>'}


def obs(display: str | None = None, text: str | None = None, **fields: object) -> dict:
    coding = {"system": "http://loinc.org", "code": "8480-6", **({"display": display} if display else {})}
    code: dict = {"coding": [coding]}
    if text:
        code["text"] = text
    return {"resourceType": "Observation", "status": "final", "code": code, **fields}


async def test_content_finds_words_anywhere_stemmed(scope: Scope) -> None:
    await scope.add("runner", obs("Body weight", note=[{"text": "The patient runs every morning"}]))
    await scope.add("walker", obs("Body height", valueString="Walking with a cane"))
    await scope.add("other", obs("Heart rate"))
    assert await scope.find("Observation", "_content=running") == {"runner"}  # runs ~ running
    assert await scope.find("Observation", "_content=RUN") == {"runner"}
    assert await scope.find("Observation", "_content=walked") == {"walker"}
    assert await scope.find("Observation", "_content=body") == {"runner", "walker"}  # a display
    assert await scope.find("Observation", "_content=heart") == {"other"}
    assert await scope.find("Observation", "_content=cane morning") == set()  # both words, one resource


async def test_content_leaves_out_what_is_not_text(scope: Scope) -> None:
    uuid = "bfdd5f32-57cd-46a2-9c87-E0C68A3ABB06"
    identifiers = [{"system": "urn:x", "value": uuid}, {"system": "urn:x", "value": "ward7-bed12"}]
    fields = {"subject": {"reference": "Patient/findme"}, "effectiveDateTime": "2021-03-04", "identifier": identifiers}
    await scope.add("a", obs("Body weight", **fields))
    assert await scope.find("Observation", "_content=findme") == set()  # references are not text
    assert await scope.find("Observation", "_content=loinc") == set()  # nor systems
    assert await scope.find("Observation", "_content=2021") == set()  # nor dates
    assert await scope.find("Observation", "_content=bfdd5f32") == set()  # nor UUIDs (identifier= finds them)
    assert await scope.find("Observation", f"identifier={uuid}") == {"a"}
    assert await scope.find("Observation", "_content=ward7") == {"a"}  # an identifier that is not one is
    assert await scope.find("Observation", "_content=weight") == {"a"}


async def test_text_searches_the_narrative_only(scope: Scope) -> None:
    await scope.add("narrated", pat(text=narrative("<p>Allergic to <b>penicillin</b> &amp; peanuts</p>")))
    await scope.add("content", pat(name=[{"family": "Penicillin"}]))
    assert await scope.find("Patient", "_text=penicillin") == {"narrated"}
    assert await scope.find("Patient", "_text=peanut") == {"narrated"}
    assert await scope.find("Patient", "_content=penicillin") == {"content"}  # narrative is _text's
    assert await scope.find("Patient", "_text=allergic penicillin") == {"narrated"}
    assert await scope.find("Patient", "_text=div") == set()  # markup is not text
    assert await scope.find("Patient", "_text:missing=true") == {"content"}
    assert await scope.find("Patient", "_text:missing=false") == {"narrated"}


async def test_string_text_modifier(scope: Scope) -> None:
    await scope.add("peter", pat(name=[{"family": "Chalmers", "given": ["Peter", "James"]}]))
    await scope.add("jim", pat(name=[{"family": "Windsor", "given": ["Jim"]}], address=[{"city": "Peterborough"}]))
    assert await scope.find("Patient", "name:text=pet") == {"peter"}  # bare words match as prefixes
    assert await scope.find("Patient", "name:text=james chal") == {"peter"}  # every word, any part
    assert await scope.find("Patient", "name:text=chalmers windsor") == set()
    assert await scope.find("Patient", "name:text=chalmers | windsor") == {"peter", "jim"}
    assert await scope.find("Patient", 'name:text="peter james"') == {"peter"}  # a phrase
    assert await scope.find("Patient", 'name:text="james peter"') == set()
    assert await scope.find("Patient", "address-city:text=peter") == {"jim"}
    assert await scope.find("Patient", "family:text=Chälmers") == {"peter"}  # accents folded
    await scope.add("ohara", pat(name=[{"family": "O'Hara"}]))
    assert await scope.find("Patient", "family:text=o'ha") == {"ohara"}
    assert await scope.find("Patient", "family:text=o'hara\\") == {"ohara"}  # an escaped backslash


async def test_token_text_modifier_matches_display_and_text(scope: Scope) -> None:
    await scope.add("display", obs("Systolic blood pressure"))
    await scope.add("text", obs(text="Blood pressures, diastolic"))
    await scope.add("none", obs())
    await scope.add("other", obs("Respiratory rate"))
    assert await scope.find("Observation", "code:text=blood") == {"display", "text"}
    assert await scope.find("Observation", "code:text=blood pres") == {"display", "text"}
    assert await scope.find("Observation", "code:text=systoli") == {"display"}  # a prefix of the unstemmed word
    assert await scope.find("Observation", "code:text=pressure") == {"display", "text"}  # any prefix
    assert await scope.find("Observation", "code:text=pressure -diastolic") == {"display"}
    assert await scope.find("Observation", "code:text=rate,systolic") == {"other", "display"}  # comma: OR
    assert await scope.find("Observation", "code:text=8480") == set()  # codes are not text
    assert await scope.find("Observation", "code=8480-6&code:text=respiratory") == {"other"}


async def test_phrases_or_and_not(scope: Scope) -> None:
    await scope.add("attack", obs(note=[{"text": "History of heart attack in 2019"}]))
    await scope.add("reversed", obs(note=[{"text": "Attack of the heart worms"}]))
    await scope.add("cancer", obs(note=[{"text": "Metastatic cancer"}]))
    assert await scope.find("Observation", '_content="heart attack"') == {"attack"}
    assert await scope.find("Observation", "_content=heart attack") == {"attack", "reversed"}
    assert await scope.find("Observation", '_content="history of heart"') == {"attack"}  # stop words kept
    assert await scope.find("Observation", "_content=cancer OR worms") == {"cancer", "reversed"}
    assert await scope.find("Observation", "_content=heart -worms") == {"attack"}
    assert await scope.find("Observation", "_content=heart AND NOT worms") == {"attack"}
    assert await scope.find("Observation", "_content=(cancer | worms) heart") == {"reversed"}
    assert await scope.find("Observation", "_content=metast*") == {"cancer"}
    assert await scope.find("Observation", "_content=metast") == set()  # a whole word, not a prefix
    assert await scope.find("Observation", "_content=the") == {"reversed"}  # a stop word still matches


async def test_no_match_is_an_empty_bundle(scope: Scope) -> None:
    await scope.add("a", obs("Body weight"))
    bundle = await scope.bundle("Observation", "_content=xylophone&_total=accurate")
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
    assert bundle["total"] == 0 and not bundle.get("entry")


async def test_combinations_with_other_parameters(scope: Scope) -> None:
    await scope.add("final", obs("Body weight", note=[{"text": "fasting sample"}]))
    await scope.add("prelim", obs("Body weight", status="preliminary", note=[{"text": "fasting sample"}]))
    await scope.add("fed", obs("Body weight", note=[{"text": "after lunch"}]))
    assert await scope.find("Observation", "_content=fasting&status=final") == {"final"}
    assert await scope.find("Observation", "_content=fasting&_content=weight") == {"final", "prelim"}
    assert await scope.find("Observation", "_content=fasting,lunch&status=final") == {"final", "fed"}
    assert await scope.find("Observation", "_content=fasting&code:text=weight&_sort=-_id") == {"final", "prelim"}
    tag = f"_tag=http://fhirledger.test/tag|{scope.tag}"
    r = await scope.client.get(f"/fhir/Observation?_content=sample&_total=accurate&_count=1&{tag}")
    assert r.json()["total"] == 2 and len(r.json()["entry"]) == 1


async def test_chains_and_reverse_chains(scope: Scope) -> None:
    pid = await scope.add("patient", pat(name=[{"family": "Quixote"}], text=narrative("Knight errant")))
    await scope.add("obs", obs("Body weight", subject={"reference": f"Patient/{pid}"}))
    await scope.add("lonely", obs("Body weight"))
    assert await scope.find("Observation", "subject:Patient.name:text=quix") == {"obs"}
    assert await scope.find("Observation", "subject:Patient._text=knight") == {"obs"}
    assert await scope.find("Patient", "_has:Observation:subject:code:text=weight") == {"patient"}


async def test_updates_and_deletes_change_what_is_found(scope: Scope, client: httpx.AsyncClient) -> None:
    oid = await scope.add("a", obs(note=[{"text": "original wording"}]))
    assert await scope.find("Observation", "_content=original") == {"a"}
    current = (await client.get(f"/fhir/Observation/{oid}")).json()
    current["note"] = [{"text": "revised wording"}]
    assert (await client.put(f"/fhir/Observation/{oid}", json=current)).status_code == 200
    assert await scope.find("Observation", "_content=original") == set()
    assert await scope.find("Observation", "_content=revised") == {"a"}
    assert (await client.delete(f"/fhir/Observation/{oid}")).status_code in (200, 204)
    assert await scope.find("Observation", "_content=revised") == set()


async def test_odd_syntax_never_fails(scope: Scope) -> None:
    await scope.add("a", obs(note=[{"text": "O'Hara's chest x-ray: clear (no effusion)"}]))
    for query in (
        '"unclosed phrase chest',
        "chest)",
        "((chest",
        "chest | | ",
        "- chest",
        "chest & x-ray",
        "chest:*",
        "chest'",
        "o'hara",
        "x-ray",
        "!!chest",
        "chest <-> clear",
        "\\(chest\\)",
        "chest%5C",
    ):
        found = await scope.find("Observation", f"_content={query.replace('&', '%26')}")
        assert found in ({"a"}, set()), (query, found)
    assert await scope.find("Observation", '_content="unclosed phrase') == set()
    assert await scope.find("Observation", "_content=o'hara") == {"a"}
    assert await scope.find("Observation", "_content=x-ray clear") == {"a"}
    assert await scope.find("Observation", "_content=effusion)") == {"a"}


async def test_queries_without_words_and_unusable_modifiers(client: httpx.AsyncClient, scope: Scope, log_count) -> None:
    before = await log_count()
    await _rejected(client, "/fhir/Observation?_content=()", "no word")
    await _rejected(client, "/fhir/Observation?_content=-", "no word")
    await _rejected(client, "/fhir/Observation?_content=%22%22", "no word")
    await _rejected(client, "/fhir/Patient?name:text=%2B%2B", "no word")
    await _rejected(client, "/fhir/Observation?_content=" + "+".join(["w"] * 40), "at most 32 words")
    await _rejected(client, "/fhir/Observation?_content:contains=x", "contains")
    await _rejected(client, "/fhir/Observation?_text:exact=x", "exact")
    await _rejected(client, "/fhir/Observation?_sort=_content", "_content")
    await _rejected(client, "/fhir/Observation?date:text=x", "text")
    assert await log_count() == before
    await scope.add("a", obs("Body weight"))
    bundle = await scope.bundle("Observation", "_content=weight&_content:contains=x", **LENIENT)
    assert [e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == "match"] == [scope.ids["a"]]
    assert any("contains" in i["diagnostics"] for i in _outcome_issues(bundle))


async def test_system_search_with_content(scope: Scope, client: httpx.AsyncClient) -> None:
    await scope.add("p", pat(name=[{"family": "Zanzibar"}]))
    await scope.add("o", obs(note=[{"text": "seen in Zanzibar"}]))
    r = await client.get(
        f"/fhir?_type=Patient,Observation&_content=zanzibar&_tag=http://fhirledger.test/tag|{scope.tag}"
    )
    assert r.status_code == 200, r.text
    assert {e["resource"]["resourceType"] for e in r.json()["entry"]} == {"Patient", "Observation"}
    r = await client.get(f"/fhir?_content=zanzibar&_tag=http://fhirledger.test/tag|{scope.tag}")  # every type
    assert r.status_code == 200, r.text
    assert {e["resource"]["resourceType"] for e in r.json()["entry"]} == {"Patient", "Observation"}


async def test_capability_statement_declares_text_search(client: httpx.AsyncClient) -> None:
    statement = (await client.get("/fhir/metadata")).json()
    types = {r["type"]: r for r in statement["rest"][0]["resource"]}
    patient = {p["name"]: p for p in types["Patient"]["searchParam"]}
    assert patient["_content"]["definition"] == "http://hl7.org/fhir/SearchParameter/Resource-content"
    assert patient["_text"]["definition"] == "http://hl7.org/fhir/SearchParameter/DomainResource-text"
    assert patient["_content"]["type"] == "string"
    assert "english" in patient["_content"]["documentation"]
    assert ":text" in patient["name"]["documentation"]
    assert "_text" not in {p["name"] for p in types["Binary"]["searchParam"]}  # Binary has no narrative
    assert "_content" in {p["name"] for p in types["Binary"]["searchParam"]}
    assert "_content" in {p["name"] for p in statement["rest"][0]["searchParam"]}  # every type: system search
