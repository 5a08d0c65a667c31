"""A replay worker's encoding of a batch (app/projections/bulk_load.py ``encode_latest``), computed
straight from the log's rows, is byte for byte what the projectors give for the same events: the
current-state rows (deletions included) and every kind of search row, over real Synthea resources
as stored in the log (compressed or not)."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from app.events import codec
from app.events.feed import REPLAY_CONTEXT
from app.events.model import EventKind, VersionEvent
from app.projections.bulk_load import encode_latest
from app.projections.copy_text import encode_keyed, encode_typed
from app.projections.current_state import COLUMN_TYPES, CurrentStateProjector
from app.projections.search_index import _COPY_TYPES, TABLES, TEXT_KIND, SearchIndexProjector
from app.projections.text_load import as_rows

SYNTHEA = Path(__file__).resolve().parents[1] / "data" / "synthea"
AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def _log_rows(compressed: bool) -> dict[str, list[tuple]]:
    """Synthea resources as ``latest_before`` reads them: (position, id, version, kind, stored
    bytes, recorded at, first position), by type; every third resource at version 2, every
    seventh deleted."""
    codec.set_compression(compressed)
    try:
        out: dict[str, list[tuple]] = {}
        position = 0
        for path in sorted(SYNTHEA.glob("*.json.gz")):
            for entry in orjson.loads(gzip.open(path).read())["entry"]:
                resource = entry["resource"]
                position += 1
                version = 2 if position % 3 == 0 else 1
                deleted = position % 7 == 0
                stored = None if deleted else codec.encode(orjson.dumps(resource))
                kind = "deleted" if deleted else ("updated" if version > 1 else "created")
                first = position - 1_000_000 if version > 1 else position
                row = (position, resource["id"], version, kind, stored, AT, first)
                out.setdefault(resource["resourceType"], []).append(row)
        return out
    finally:
        codec.set_compression(None)


def _projected(resource_type: str, rows: list[tuple]) -> tuple[bytes, dict[str, object]]:
    """What the projectors give for the events of ``rows``, encoded as the load takes it."""
    events = [
        VersionEvent(resource_type, i, v, EventKind(k), codec.decoded(r), at, REPLAY_CONTEXT)
        for _, i, v, k, r, at, _ in rows
    ]
    keys = {row[1]: row[6] for row in rows}
    projected = CurrentStateProjector().rows(events, [row[0] for row in rows])[resource_type]
    current = encode_typed([(*r[:5], keys[r[0]]) for r in projected], COLUMN_TYPES)
    by_kind: dict[str, list] = {}
    for event, kinds in SearchIndexProjector().resource_rows(events):
        for kind, kind_rows in (kinds or {}).items():
            if kind_rows:
                by_kind.setdefault(kind, []).append((str(keys[event.resource_id]), kind_rows))
    search: dict[str, object] = {}
    for kind, keyed in by_kind.items():
        if TABLES[kind].copyable:
            search[kind] = encode_keyed(keyed, _COPY_TYPES[kind])
        else:
            search[kind] = [(int(k), *r) for k, kind_rows in keyed for r in kind_rows]
    return current, search


@pytest.mark.parametrize("compressed", [True, False])
def test_a_batch_is_encoded_as_the_projectors_give_it(compressed: bool) -> None:
    by_type = _log_rows(compressed)
    assert len(by_type) > 10 and sum(map(len, by_type.values())) > 100
    kinds_seen: set[str] = set()
    for resource_type, rows in by_type.items():
        current, search = encode_latest(resource_type, rows)
        expected_current, expected_search = _projected(resource_type, rows)
        assert current == expected_current, resource_type
        got = {k: as_rows(v) if k == TEXT_KIND else v for k, v in search.items()}  # type: ignore[arg-type]
        assert got.keys() == expected_search.keys(), resource_type
        for kind, data in expected_search.items():
            if kind == TEXT_KIND:
                assert sorted(got[kind]) == sorted(data), resource_type  # type: ignore[arg-type]
            else:
                assert got[kind] == data, (resource_type, kind)
        kinds_seen |= search.keys()
        deleted = [r for r in rows if r[3] == "deleted"]
        assert current.count(b"\tt\t") == len(deleted)  # deletions are current rows, with no search rows
    assert {"token", "reference", "date", "quantity", "string", TEXT_KIND} <= kinds_seen
