"""Migrations are versioned and idempotent."""

from __future__ import annotations

import asyncpg

from app.db.migrations import MIGRATIONS, migrate
from app.fhirspec.resource_types import resource_types
from app.projections.current_state import current_table


async def test_migrate_twice_applies_nothing_new(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        assert await migrate(conn) == []
    versions = [r["version"] for r in await pool.fetch("SELECT version FROM schema_migrations ORDER BY version")]
    assert versions == [m[0] for m in MIGRATIONS]


async def test_one_current_state_table_per_resource_type(pool: asyncpg.Pool) -> None:
    names = {r["tablename"] for r in await pool.fetch("SELECT tablename FROM pg_tables WHERE tablename LIKE 'cur_%'")}
    expected = {current_table(t) for t in resource_types()}
    assert len(expected) == 147
    assert expected <= names
