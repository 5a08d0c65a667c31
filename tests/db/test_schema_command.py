"""`fhirledger schema` prints the DDL as the migrations apply it: applied to an empty database it
gives the same tables, columns and indexes as `migrate()`."""

from __future__ import annotations

import uuid

import asyncpg

from app.cli import main
from app.cli_schema import migrations_ddl
from tests.conftest import _with_database

SHAPE = """
SELECT 'column' AS what, table_name || '.' || column_name || ' ' || data_type AS name
  FROM information_schema.columns WHERE table_schema = 'public'
UNION ALL
SELECT 'index', tablename || '.' || indexname || ' ' || indexdef FROM pg_indexes WHERE schemaname = 'public'
UNION ALL
SELECT 'trigger', event_object_table || '.' || trigger_name FROM information_schema.triggers
"""


async def _shape(dsn: str) -> set[tuple[str, str]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(SHAPE)
    finally:
        await conn.close()
    return {(r["what"], r["name"]) for r in rows if "schema_migrations" not in r["name"]}


async def test_printed_schema_equals_the_migrated_one(server_dsn: str, database_dsn: str) -> None:
    name = f"fhirledger_schema_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(server_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        conn = await asyncpg.connect(_with_database(server_dsn, name))
        try:
            await conn.execute(migrations_ddl())
        finally:
            await conn.close()
        printed, migrated = await _shape(_with_database(server_dsn, name)), await _shape(database_dsn)
        assert ("column", "event_log.client_id text") in printed
        assert printed == migrated
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def test_one_resource_type_and_output_file(tmp_path, capsys) -> None:
    assert main(["schema", "--resource", "Observation"]) == 0
    out = capsys.readouterr().out
    assert "CREATE TABLE IF NOT EXISTS cur_observation" in out and "sp_observation_token" in out
    assert "cur_patient" not in out
    target = tmp_path / "schema.sql"
    assert main(["schema", "--output", str(target)]) == 0
    assert "CREATE TABLE event_log" in target.read_text()
    assert main(["schema", "--resource", "Nope"]) == 2
