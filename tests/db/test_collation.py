"""The databases we create compare text in byte order (app/db/collation.py): the embedded
``fhirledger`` database and the tests' own, with the cluster's character classes kept, so ids sort
by bytes, case folding and the full-text parser still know non-ASCII letters; ``fhirledger
doctor`` reports a database that does not."""

from __future__ import annotations

import uuid

import asyncpg
import httpx

from app.cli_doctor import assess
from app.db.collation import CTYPE_OF_TEMPLATE, create_database_sql


async def test_a_created_database_compares_bytes_and_keeps_the_clusters_character_classes(server_dsn: str) -> None:
    name = f'fhirledger "quoted" {uuid.uuid4().hex[:8]}'
    admin = await asyncpg.connect(server_dsn)
    try:
        ctype = await admin.fetchval(CTYPE_OF_TEMPLATE)
        await admin.execute(create_database_sql(name, ctype))
        row = await admin.fetchrow("SELECT datcollate, datctype FROM pg_database WHERE datname = $1", name)
        assert (row["datcollate"], row["datctype"]) == ("C", ctype)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name.replace(chr(34), chr(34) * 2)}"')
        await admin.close()


async def test_the_test_database_sorts_by_bytes_and_folds_non_ascii_letters(pool: asyncpg.Pool) -> None:
    words = ["zebra", "Zoë", "Émile", "apple", "Ängel", "Zoe"]
    ordered = await pool.fetchval("SELECT array_agg(w ORDER BY w) FROM unnest($1::text[]) w", words)
    assert ordered == sorted(words, key=lambda w: w.encode())  # byte order: upper case, then lower, then the rest
    assert await pool.fetchval("SELECT lower('ÉMILE ÄNGEL')") == "émile ängel"
    doc = await pool.fetchval("SELECT to_tsvector('simple', 'Zoë Ängel')::text")
    assert doc == "'zoë':1 'ängel':2"


async def test_ids_page_in_byte_order_through_the_api(client: httpx.AsyncClient) -> None:
    tag = uuid.uuid4().hex
    ids = [f"{tag}-{suffix}" for suffix in ("b", "B", "a", "A", "0")]
    for rid in ids:
        body = {"resourceType": "Basic", "id": rid, "code": {"text": tag}}
        assert (await client.put(f"/fhir/Basic/{rid}", json=body)).status_code == 201
    r = await client.get("/fhir/Basic", params={"_content": tag, "_sort": "_id"})
    assert r.status_code == 200
    assert [e["resource"]["id"] for e in r.json()["entry"]] == sorted(ids)  # Python sorts str by code point


async def test_the_embedded_database_is_created_in_byte_order(embedded_dsn: str) -> None:
    """The database ``EmbeddedPostgres.start`` created, as ``serve``'s."""
    conn = await asyncpg.connect(embedded_dsn)
    try:
        row = await conn.fetchrow("SELECT datcollate, datctype FROM pg_database WHERE datname = current_database()")
        template = await conn.fetchval(CTYPE_OF_TEMPLATE)
    finally:
        await conn.close()
    assert (row["datcollate"], row["datctype"]) == ("C", template)


def test_doctor_reports_a_database_that_does_not_compare_bytes() -> None:
    slow = {f.setting: f for f in assess({"__collate": ("en_US.UTF-8", None)}, None)}
    assert slow["database collation"].level == "slow"
    assert "LC_COLLATE 'C'" in slow["database collation"].advice
    assert "database collation" not in {f.setting for f in assess({"__collate": ("C", None)}, None)}
