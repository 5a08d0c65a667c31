"""A rebuild leaves the planner the statistics of every column of the side tables, the dependency
statistics, and those of the string table's expression index, and autovacuum nothing to repeat."""

from __future__ import annotations

import asyncpg
import httpx
import pytest

from app.projections import rebuild
from app.projections.rebuild import rebuild_type
from app.projections.search_index import search_table
from app.projections.shadow_statistics import VACUUM, VACUUM_15

LOINC = "http://loinc.org"


async def _observation(client: httpx.AsyncClient, coding: dict, subject: str, **elements: object) -> None:
    """Create a final Observation of ``coding`` about ``subject`` (with ``elements`` besides)."""
    body = {"resourceType": "Observation", "status": "final", "code": {"coding": [coding]}}
    r = await client.post("/fhir/Observation", json=body | {"subject": {"reference": subject}} | elements)
    assert r.status_code == 201, r.text


async def test_rebuild_gathers_every_statistic(client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    for i in range(30):
        await _observation(
            client,
            {"system": LOINC, "code": f"{i % 3}-1", "display": "Body weight"},
            f"Patient/p{i}",
            valueQuantity={"value": i, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"},
            note=[{"text": f"note {i}"}],
        )
    await rebuild_type(pool, "Observation")
    token = search_table("Observation", "token")
    analyzed = {r["attname"] for r in await pool.fetch("SELECT attname FROM pg_stats WHERE tablename = $1", token)}
    assert {"key", "param", "system_hash", "code", "hash"} <= analyzed
    deps = await pool.fetchval(
        "SELECT count(*) FROM pg_statistic_ext e JOIN pg_statistic_ext_data d ON d.stxoid = e.oid"
        " WHERE e.stxrelid = $1::regclass AND d.stxddependencies IS NOT NULL",
        token,
    )
    assert deps == 1
    reference = search_table("Observation", "reference")
    target = "SELECT count(*) FROM pg_stats WHERE tablename = $1 AND attname = 'target_id'"
    assert await pool.fetchval(target, reference)
    assert await pool.fetchval("SELECT reltuples FROM pg_class WHERE relname = $1", token) > 0


async def test_rebuild_leaves_autovacuum_nothing_to_analyze(client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    """The side tables count no row as changed since their ANALYZE: autovacuum does not analyze them
    again after the swap (it did once, a repeat of the rebuild's work)."""
    for i in range(20):
        await _observation(client, {"system": LOINC, "code": f"{i % 4}-2"}, f"Patient/q{i}")
    await rebuild_type(pool, "Observation")
    token, reference = search_table("Observation", "token"), search_table("Observation", "reference")
    counts = await pool.fetch(
        "SELECT relname, n_mod_since_analyze FROM pg_stat_user_tables WHERE relname = ANY($1::text[])",
        [token, reference],
    )
    assert {r["relname"]: r["n_mod_since_analyze"] for r in counts} == {token: 0, reference: 0}
    stats = "SELECT count(*) FROM pg_stats WHERE tablename = $1 AND attname IN ('hash', 'code')"
    assert await pool.fetchval(stats, token) == 2


async def test_rebuild_vacuums_skip_the_database_statistics(
    client: httpx.AsyncClient, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each VACUUM of a shadow table leaves the database-wide oldest-id statistics alone where the
    server can (PostgreSQL 16 on: a scan of the whole catalog saved per table), and still leaves
    the tables vacuumed (their pages all-visible, for index-only scans)."""
    for i in range(10):
        await _observation(client, {"system": LOINC, "code": f"{i % 2}-3"}, f"Patient/v{i}")
    run: list[str] = []
    spread = rebuild.run_spread

    async def recorded(pool_: asyncpg.Pool, statements: list[str], connections: int = 2) -> None:
        run.extend(statements)
        await spread(pool_, statements, connections)

    monkeypatch.setattr(rebuild, "run_spread", recorded)
    await rebuild_type(pool, "Observation")
    vacuums = [s for s in run if s.startswith("VACUUM")]
    version = int(await pool.fetchval("SELECT current_setting('server_version_num')"))
    assert vacuums and all(s.startswith(VACUUM if version >= 160000 else VACUUM_15 + " ") for s in vacuums)
    visible = "SELECT relallvisible FROM pg_class WHERE relname = $1"
    assert await pool.fetchval(visible, search_table("Observation", "token")) > 0
