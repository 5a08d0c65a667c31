"""``:text`` on a string parameter finds every value's words, also where the resource's ``_content``
document does not hold them, so that document cannot stand in for the string rows' words index
(a write would skip ~22 ``to_tsvector`` calls per Patient; measured and rejected in issue 12):

- a value that looks like a year (a 4-digit postal code) is not prose, so not in ``_content``;
- a string with ``<`` opens what PostgreSQL's parser takes for an XML tag, which runs over the line
  breaks between the strings of ``_content`` and swallows the words of the next values;
- ``_content`` is cut at ``MAX_CHARS``: a value after a long text is not in it.

Also punctuation inside words, and ``OR`` / ``NOT`` queries (a negation alone has no relaxation to
probe the index with)."""

from __future__ import annotations

import asyncpg
import httpx
import pytest

from app.search_types.text_document import MAX_CHARS
from tests.queries.test_search import Scope, pat


@pytest.fixture
def scope(client: httpx.AsyncClient) -> Scope:
    return Scope(client)


async def _in_content(pool: asyncpg.Pool, pid: str, word: str) -> bool:
    """Whether the stored ``_content`` document of Patient ``pid`` holds ``word`` (as written)."""
    return await pool.fetchval(
        "SELECT d.doc @@ to_tsquery('simple', $2) FROM sp_patient_text s JOIN cur_patient c ON c.key = s.key"
        " JOIN text_document d ON d.id = s.doc_id WHERE c.id = $1 AND s.param = '_content'",
        pid,
        word,
    )


async def test_words_the_content_document_lacks(scope: Scope, pool: asyncpg.Pool) -> None:
    await scope.add("postal", pat(address=[{"city": "Pleasantville", "postalCode": "3999"}]))
    await scope.add("tag", pat(name=[{"text": "<b", "family": "Quillfeather", "given": ["z>"]}]))
    long_text = ("lorem ipsum " * (MAX_CHARS // 12 + 100)).strip()
    extension = [{"url": "http://example.org/long-note", "valueString": long_text}]
    await scope.add("long", {**pat(extension=extension), "address": [{"city": "Zanzibar"}]})
    assert not await _in_content(pool, scope.ids["postal"], "3999")
    assert not await _in_content(pool, scope.ids["tag"], "quillfeather")
    assert not await _in_content(pool, scope.ids["long"], "zanzibar")
    assert await scope.find("Patient", "address-postalcode:text=3999") == {"postal"}
    assert await scope.find("Patient", "address:text=3999") == {"postal"}
    # name's values together are one text, "<b", "quillfeather", "z>" joined: the separator ends the
    # tag that "<b" opens, so "z>" does not close one that swallows the word (it did with line breaks)
    assert await scope.find("Patient", "name:text=quillfeather") == {"tag"}
    assert await scope.find("Patient", 'name:text="b quillfeather z"') == {"tag"}  # a phrase over the values
    assert await scope.find("Patient", "family:text=quillfeather") == {"tag"}
    assert await scope.find("Patient", "address-city:text=zanzibar") == {"long"}
    assert await scope.find("Patient", "address:text=zanz") == {"long"}  # bare words: prefixes


async def test_punctuation_inside_words(scope: Scope) -> None:
    await scope.add("ohara", pat(name=[{"family": "O'Hara-Smith", "given": ["Mary-Jo"]}]))
    await scope.add("other", pat(name=[{"family": "Hara", "given": ["Jo"]}]))
    assert await scope.find("Patient", "family:text=o'har") == {"ohara"}  # parts of one word, a prefix
    assert await scope.find("Patient", "family:text=smith") == {"ohara"}
    assert await scope.find("Patient", "name:text=mary-jo") == {"ohara"}
    assert await scope.find("Patient", "name:text=hara") == {"ohara", "other"}
    assert await scope.find("Patient", 'name:text="o\'hara-smith"') == {"ohara"}


async def test_or_and_not(scope: Scope) -> None:
    await scope.add("a", pat(name=[{"family": "Ashgrove", "given": ["Tilda"]}]))
    await scope.add("b", pat(name=[{"family": "Birchwood", "given": ["Tilda"]}]))
    await scope.add("c", pat(name=[{"family": "Cedarholt"}]))
    assert await scope.find("Patient", "name:text=ashgrove | birchwood") == {"a", "b"}
    assert await scope.find("Patient", "name:text=ashgrove OR cedarholt") == {"a", "c"}
    assert await scope.find("Patient", "name:text=tilda -ashgrove") == {"b"}
    assert await scope.find("Patient", "name:text=-tilda") == {"c"}  # no relaxation: every value tested
    assert await scope.find("Patient", "name:text=NOT birchwood") == {"a", "c"}
    assert await scope.find("Patient", "name:text=(ashgrove | -tilda)") == {"a", "c"}
