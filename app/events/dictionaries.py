"""The zstd dictionaries of the event log's compressed resources, kept in ``event_log_dictionary``
(append-only, like the log): a frame names its dictionary by id, so the stored history stays
readable as long as this table does, whatever dictionaries later packages ship
(:mod:`app.events.codec`)."""

from __future__ import annotations

import asyncpg

from app.events import codec

_STORE_SHIPPED = "INSERT INTO event_log_dictionary (id, data, note) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING"


async def load_dictionaries(conn: asyncpg.Connection) -> int:
    """After the migrations, at every start: store the dictionary this package ships (the one new
    frames use) unless the table holds it, then make every stored dictionary known to this
    process's decoders; returns how many the table holds (0 without the table)."""
    if not await conn.fetchval("SELECT to_regclass('event_log_dictionary') IS NOT NULL"):
        return 0
    if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM event_log_dictionary WHERE id = $1)", codec.DICTIONARY_ID):
        await conn.execute(
            _STORE_SHIPPED,
            codec.DICTIONARY_ID,
            codec.shipped(),
            "shipped with fhirledger: trained on Synthea R4 resources (bench/log_dictionary.py)",
        )
    rows = await conn.fetch("SELECT id, data FROM event_log_dictionary ORDER BY id")
    for r in rows:
        codec.add_dictionary(r["id"], r["data"])
    return len(rows)
