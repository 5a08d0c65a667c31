"""Versioned, idempotent schema migrations, run at start-up under an advisory lock.

Each migration runs once, in its own transaction, and is recorded in ``schema_migrations``.
Per-resource-type tables come from the spec-driven registry, never from a hand-written list.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import asyncpg

from app.events.dictionaries import load_dictionaries
from app.events.schema import EVENT_LOG_DDL, EVENT_LOG_DICTIONARY_DDL, EVENT_LOG_HEAD_DDL, EVENT_LOG_TYPE_TX_INDEX
from app.jobs.export_store import BULK_EXPORT_DDL
from app.jobs.import_state import IMPORT_JOBS_DDL
from app.jobs.schema import JOBS_DDL
from app.projections.audit import AUDIT_DDL
from app.projections.current_state import LOCK_THEN_HEAD_DDL, add_keys, current_state_ddl, drop_resource_copies
from app.projections.custom_params import SEARCH_PARAM_STATE_DDL, SEARCH_PARAM_VERSION_DDL
from app.projections.search_ddl import all_search_index_ddl
from app.projections.search_layout import upgrade_hash_statistics, upgrade_search_layout, upgrade_text_indexes
from app.projections.state import PROJECTION_STATE_DDL
from app.search_types.text import documents_ddl

log = logging.getLogger("fhirledger.migrations")

_LOCK_KEY = 7_245_001  # advisory lock serialising concurrent starters

Migration = Callable[[asyncpg.Connection], Awaitable[None]]


async def _m001_event_log(conn: asyncpg.Connection) -> None:
    await conn.execute(EVENT_LOG_DDL)


async def _m002_current_state(conn: asyncpg.Connection) -> None:
    await conn.execute(current_state_ddl())


async def _m003_search_index(conn: asyncpg.Connection) -> None:
    await conn.execute(all_search_index_ddl())


async def _m004_projection_state(conn: asyncpg.Connection) -> None:
    await conn.execute(PROJECTION_STATE_DDL)


async def _m005_custom_params_and_jobs(conn: asyncpg.Connection) -> None:
    await conn.execute(SEARCH_PARAM_STATE_DDL + JOBS_DDL)


async def _m006_actor_index(conn: asyncpg.Connection) -> None:
    await conn.execute("CREATE INDEX IF NOT EXISTS event_log_actor ON event_log (actor, position)")


async def _m007_projection_audit(conn: asyncpg.Connection) -> None:
    await conn.execute(AUDIT_DDL)


async def _m008_sort_keys(conn: asyncpg.Connection) -> None:
    await conn.execute(all_search_index_ddl())  # idempotent: adds the tables of new kinds (sort keys)


async def _m009_search_pages(conn: asyncpg.Connection) -> None:
    # the parameters of long searches, behind the page tokens of their links (app/queries/page_tokens.py)
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS search_page ("
        " token text PRIMARY KEY, scope text NOT NULL, params bytea NOT NULL,"
        " created_at timestamptz NOT NULL DEFAULT now(), used_at timestamptz NOT NULL DEFAULT now());"
        "CREATE INDEX IF NOT EXISTS search_page_used_at ON search_page (used_at)"
    )


async def _m010_search_param_version(conn: asyncpg.Connection) -> None:
    await conn.execute(SEARCH_PARAM_VERSION_DDL)


async def _m011_event_client(conn: asyncpg.Connection) -> None:
    # the verified token's client and scope level (app/api/auth.py); the append-only triggers refuse
    # UPDATE/DELETE of rows, not new columns
    await conn.execute(
        "ALTER TABLE event_log ADD COLUMN IF NOT EXISTS client_id text;"
        "ALTER TABLE event_log ADD COLUMN IF NOT EXISTS scope_kind text;"
        "CREATE INDEX IF NOT EXISTS event_log_client ON event_log (client_id, position) WHERE client_id IS NOT NULL"
    )


async def _m012_event_type_tx(conn: asyncpg.Connection) -> None:
    # the gap-free reader of one type (replay's catch-up) reads in (tx_id, position) order
    await conn.execute(EVENT_LOG_TYPE_TX_INDEX)


async def _m013_search_statistics(conn: asyncpg.Connection) -> None:
    # per-parameter hash columns, the parameter's band in the date range index (issue 12)
    await upgrade_search_layout(conn)


async def _m014_text_search(conn: asyncpg.Connection) -> None:
    await conn.execute(all_search_index_ddl())  # idempotent: adds the full-text tables (sp_<type>_text)


async def _m015_bulk_export(conn: asyncpg.Connection) -> None:
    await conn.execute(BULK_EXPORT_DDL)


async def _m016_lock_then_head(conn: asyncpg.Connection) -> None:
    # a write's lock and its read of the current version in one round trip (app/commands/unit_of_work.py)
    await conn.execute(LOCK_THEN_HEAD_DDL)


async def _m017_import_jobs(conn: asyncpg.Connection) -> None:
    await conn.execute(IMPORT_JOBS_DDL)


async def _m018_storage(conn: asyncpg.Connection) -> None:
    # issue 12, fewer bytes per resource: the current state reads the resource bytes from the log
    # instead of a copy; the side tables lose the token text column (the full-text table has it)
    # and index only the reference rows that have a value (the layout version changes: rebuild)
    await drop_resource_copies(conn)
    await upgrade_search_layout(conn)


async def _m020_text_documents(conn: asyncpg.Connection) -> None:
    # issue 12: full-text documents hold each distinct string once and the as-written lexemes
    # without positions (the layout version changes: rebuild); a small GIN pending list
    await upgrade_text_indexes(conn)


async def _m024_resource_keys(conn: asyncpg.Connection) -> None:
    # issue 12, fewer bytes per resource and cheaper side-row writes: the side tables name each
    # resource by an integer key (the position of its first event, kept in the current state)
    # instead of its text id; the side tables are created anew, empty (the layout version
    # changes: rebuild), the current-state rows get their keys from the log
    await add_keys(conn)
    await upgrade_search_layout(conn)


async def _m025_fewer_side_rows(conn: asyncpg.Connection) -> None:
    # issue 12, fewer side-table rows: a string parameter's :text searches the string rows through
    # a new GIN index of their words instead of full-text rows of its own, and narrowed reference
    # parameters (patient = subject.where(resolve() is Patient)) keep no rows; the layout version
    # changes, so `fhirledger projections rebuild` replays the log into the new layout
    await upgrade_search_layout(conn)


async def _m026_log_dictionaries(conn: asyncpg.Connection) -> None:
    # issue 12, fewer bytes per resource: new events store their resource as a zstd frame of a
    # preset dictionary (app/events/codec.py); the dictionaries are kept, append-only, beside the
    # log (the shipped one is stored by load_dictionaries after the migrations: data, not schema).
    # Rows written before stay as they are (the log is never rewritten) and read the same.
    await conn.execute(EVENT_LOG_DICTIONARY_DDL)


async def _m027_narrower_side_rows(conn: asyncpg.Connection) -> None:
    # issue 12, fewer bytes per resource: the token and quantity tables keep an 8-byte hash of the
    # system instead of its text (16-41 bytes in nearly every row; the token code index carries
    # the hash too), the reference tables a UUID target id as a 16-byte uuid; those tables are
    # made anew, empty (the layout version changes: rebuild)
    await upgrade_search_layout(conn)


async def _m028_log_head(conn: asyncpg.Connection) -> None:
    # issue 12, the write path near the limit: a write's check that no later version was committed
    # reads the resource's newest version through a function whose plan is always the backward
    # scan of the (type, id, version) index (app/events/schema.py EVENT_LOG_HEAD_DDL)
    await conn.execute(EVENT_LOG_HEAD_DDL)


async def _m029_hash_statistics(conn: asyncpg.Connection) -> None:
    # issue 12, ingest at a million resources: the side tables' hash columns are analyzed over
    # 90,000 rows instead of 300,000 (app/search_types/protocol.py HASH_STATISTICS)
    await upgrade_hash_statistics(conn)


async def _m030_hash_statistics(conn: asyncpg.Connection) -> None:
    # issue 12, ingest into a million resources: autovacuum's ANALYZE of the growing side tables
    # samples 30,000 rows instead of 90,000 (app/search_types/protocol.py HASH_STATISTICS)
    await upgrade_hash_statistics(conn)


async def _m031_text_document_ids(conn: asyncpg.Connection) -> None:
    # issue 12, replay and storage: the full-text rows hold their document's id and each distinct
    # document is stored once, in text_document (app/search_types/text.py); the text side tables
    # are made anew, empty (the layout version changes: rebuild)
    await conn.execute(documents_ddl())
    await upgrade_search_layout(conn)


MIGRATIONS: list[tuple[int, str, Migration]] = [
    (1, "event log (append-only)", _m001_event_log),
    (2, "current-state projection tables", _m002_current_state),
    (3, "search-index side tables", _m003_search_index),
    (4, "projection state", _m004_projection_state),
    (5, "custom search parameters and jobs", _m005_custom_params_and_jobs),
    (6, "event log index for the audit actor filter", _m006_actor_index),
    (7, "projection audit results", _m007_projection_audit),
    (8, "search-index sort-key tables", _m008_sort_keys),
    (9, "page tokens of long searches", _m009_search_pages),
    (10, "custom search parameter registry version", _m010_search_param_version),
    (11, "event log client and scope kind columns", _m011_event_client),
    (12, "event log index for the gap-free reader of one type", _m012_event_type_tx),
    (13, "search side tables: per-parameter hashes, parameter in the date index", _m013_search_statistics),
    (14, "full-text search side tables", _m014_text_search),
    (15, "bulk export records", _m015_bulk_export),
    (16, "lock then read the current version in one round trip", _m016_lock_then_head),
    (17, "bulk $import job state", _m017_import_jobs),
    (18, "storage: no copy of the resource bytes in the current state, narrower side tables", _m018_storage),
    (20, "full-text search: smaller documents, small GIN pending list", _m020_text_documents),
    (24, "integer resource keys in the search side tables", _m024_resource_keys),
    (
        25,
        "fewer side-table rows: string :text from the string rows, no rows for narrowed references",
        _m025_fewer_side_rows,
    ),
    (
        26,
        "event log: resources compressed with zstd dictionaries, kept in event_log_dictionary",
        _m026_log_dictionaries,
    ),
    (27, "narrower side rows: system hashes, UUID target ids", _m027_narrower_side_rows),
    (28, "event log: a write's head check by a plan-fixed function", _m028_log_head),
    (29, "search side tables: hash statistics over 90,000 sampled rows", _m029_hash_statistics),
    (30, "search side tables: hash statistics over 30,000 sampled rows", _m030_hash_statistics),
    (31, "full-text rows: document ids, each document stored once in text_document", _m031_text_document_ids),
]

# steps over every side table commit type by type (one transaction for all of them can need more
# locks than the server grants: max_locks_per_transaction); each is idempotent, so a run stopped
# midway is finished by the next start (the version is recorded only once the step has ended)
_OWN_TRANSACTIONS = frozenset({13, 18, 24, 25, 27, 29, 31})


async def migrate(conn: asyncpg.Connection) -> list[int]:
    """Apply the migrations not yet applied; returns the versions applied now."""
    applied_now: list[int] = []
    # the lock first: concurrent starters (the workers of one server) would race on CREATE TABLE
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for version, name, step in MIGRATIONS:
            if version in done:
                continue
            log.info("applying migration %d: %s", version, name)
            if version in _OWN_TRANSACTIONS:
                await step(conn)
                await conn.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name)
                applied_now.append(version)
                continue
            async with conn.transaction():
                await step(conn)
                await conn.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name)
            applied_now.append(version)
        await load_dictionaries(conn)  # stores the shipped one; the decoders know every stored one
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    return applied_now
