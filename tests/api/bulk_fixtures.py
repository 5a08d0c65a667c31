"""Fixtures of the bulk export tests: apps (authorization off and on) writing exports to a
temporary directory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from app.api.app import create_app
from app.settings import Settings


@pytest.fixture(scope="session")
def export_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("exports")


@pytest.fixture(scope="session")
async def bulk_client(settings: Settings, pool: asyncpg.Pool, export_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.model_copy(update={"export_dir": export_dir}), pool)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        yield c


@pytest.fixture(scope="session")
async def bulk_auth_client(
    auth_settings: Settings, pool: asyncpg.Pool, export_dir: Path
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(auth_settings.model_copy(update={"export_dir": export_dir}), pool)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        yield c
