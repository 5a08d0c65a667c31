"""The asyncpg connection pool."""

from __future__ import annotations

import asyncpg

from app.settings import Settings


async def create_pool(dsn: str, settings: Settings) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        dsn,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        command_timeout=300,
    )
