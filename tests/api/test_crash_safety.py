"""Crash safety of a transaction Bundle (ARCHITECTURE.md invariant 2; issue 5, "Tests").

A real ``fhirledger serve`` on its embedded PostgreSQL is SIGKILLed while a large transaction is
being written: once the transaction's backend holds the row-exclusive lock on ``event_log`` and
has an xid (its append has written rows) and the transaction has not ended. After a restart on
the same data directory none of the transaction's resources can be read or found, the event log
and the current-state table hold none of its rows, and PostgreSQL reports the transaction
aborted. A small transaction committed before the crash is the control: the same checks find all
of it. SIGTERM then stops the server and the embedded postmaster (orphaned by the SIGKILL, reused
by the restart).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import time
import uuid
from pathlib import Path

import asyncpg
import httpx

from app.events.codec import decode
from tests.server_process import free_port, start_server

SYSTEM = "urn:fhirledger:test:crash-safety"
BIG = 3200  # entries of the transaction that is killed
SMALL = 5  # entries of the control transaction that commits

# The backend of an open transaction that is appending to event_log and has written rows (it has
# an xid, assigned on its first write; the lock was taken when its INSERT began).
_WRITING = """
SELECT a.pid, a.backend_xid::text AS xid, left(a.query, 80) AS query
FROM pg_stat_activity a
JOIN pg_locks l ON l.pid = a.pid AND l.locktype = 'relation' AND l.mode = 'RowExclusiveLock' AND l.granted
JOIN pg_class c ON c.oid = l.relation AND c.relname = 'event_log'
WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() AND a.backend_xid IS NOT NULL
LIMIT 1
"""
_EVENTS = "SELECT resource FROM event_log WHERE resource IS NOT NULL"
_CURRENT = "SELECT e.resource FROM cur_observation c JOIN event_log e ON e.position = c.position WHERE NOT c.deleted"


async def _holding(conn: asyncpg.Connection, sql: str, marker: str) -> int:
    """How many of the resources ``sql`` selects hold ``marker`` (the log's bytes may be compressed)."""
    return sum(marker.encode() in decode(r["resource"]) for r in await conn.fetch(sql))


def _kill(proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait(10)


def _postmaster_file(data_dir: Path) -> Path:
    return data_dir / "pgdata" / "postmaster.pid"


def _dsn(data_dir: Path) -> str:
    # postmaster.pid: pid, data dir, start time, port, socket directory, ...
    lines = _postmaster_file(data_dir).read_text().splitlines()
    return f"postgresql://postgres@/fhirledger?host={lines[4]}&port={lines[3]}"


def _transaction(marker: str, size: int) -> dict:
    """A Patient and ``size - 1`` Observations referencing it by urn:uuid, each carrying the marker
    as an identifier and a tag."""
    tagged = {
        "identifier": [{"system": SYSTEM, "value": marker}],
        "meta": {"tag": [{"system": SYSTEM, "code": marker}]},
    }
    patient_url = f"urn:uuid:{uuid.uuid4()}"
    entries = [
        {
            "fullUrl": patient_url,
            "resource": {"resourceType": "Patient", "name": [{"family": "Crash"}], **tagged},
            "request": {"method": "POST", "url": "Patient"},
        }
    ]
    for i in range(size - 1):
        observation = {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}], "text": "Heart rate"},
            "subject": {"reference": patient_url},
            "effectiveDateTime": "2020-01-01T10:00:00+00:00",
            "valueQuantity": {"value": 60 + i % 40, "unit": "/min", "system": "http://unitsofmeasure.org"},
            **tagged,
        }
        entries.append(
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": observation,
                "request": {"method": "POST", "url": "Observation"},
            }
        )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


async def _wait_for_writer(dsn: str, request: asyncio.Task, timeout: float = 40) -> asyncpg.Record:
    """Poll until a backend is inside the append of an open transaction; fail if the request ends first."""
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            row = await conn.fetchrow(_WRITING)
            if row is not None:
                print(f"killing while backend {row['pid']} (xid {row['xid']}) runs: {row['query']!r}")
                return row
            if request.done():
                raise AssertionError(f"the transaction finished before it was seen writing: {request.result()}")
            await asyncio.sleep(0.002)
        raise AssertionError(f"no transaction was seen writing event_log within {timeout} s")
    finally:
        await conn.close()


async def _wait_for_backend_gone(dsn: str, pid: int, timeout: float = 30) -> None:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        deadline = time.monotonic() + timeout
        while await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid):
            assert time.monotonic() < deadline, f"backend {pid} of the killed server is still alive"
            await asyncio.sleep(0.05)
    finally:
        await conn.close()


def _found(base: str, resource_type: str, marker: str) -> int:
    r = httpx.get(f"{base}/{resource_type}", params={"identifier": f"{SYSTEM}|{marker}", "_count": "1000"}, timeout=30)
    assert r.status_code == 200, r.text
    return len(r.json().get("entry", []))


async def test_sigkill_during_transaction_leaves_nothing(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}/fhir"
    control, crashed = f"control-{uuid.uuid4().hex}", f"crashed-{uuid.uuid4().hex}"
    headers = {"Content-Type": "application/fhir+json", "Prefer": "return=minimal"}
    proc: subprocess.Popen | None = None
    try:
        proc = start_server(tmp_path, port)
        dsn = _dsn(tmp_path)
        r = httpx.post(base, json=_transaction(control, SMALL), headers=headers, timeout=30)
        assert r.status_code == 200, r.text
        control_ids = [e["response"]["location"].split("/")[1] for e in r.json()["entry"]]

        async with httpx.AsyncClient(timeout=httpx.Timeout(60)) as client:
            request = asyncio.create_task(client.post(base, json=_transaction(crashed, BIG), headers=headers))
            try:
                writer = await _wait_for_writer(dsn, request)
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
                outcome = await asyncio.wait_for(asyncio.gather(request, return_exceptions=True), 30)
            finally:
                request.cancel()
        assert isinstance(outcome[0], httpx.TransportError), f"the killed request completed: {outcome[0]!r}"
        # The killed server's backend notices the closed socket and rolls back.
        await _wait_for_backend_gone(dsn, writer["pid"])

        proc = start_server(tmp_path, port)
        assert _found(base, "Observation", crashed) == 0
        assert _found(base, "Patient", crashed) == 0
        assert _found(base, "Observation", control) == SMALL - 1, "the control transaction is searchable"
        for rid in control_ids[1:]:
            assert httpx.get(f"{base}/Observation/{rid}", timeout=10).status_code == 200

        conn = await asyncpg.connect(_dsn(tmp_path), timeout=10)
        try:
            assert await _holding(conn, _EVENTS, crashed) == 0, "the log holds events of the killed transaction"
            assert await _holding(conn, _CURRENT, crashed) == 0
            assert await _holding(conn, _EVENTS, control) == SMALL, "the marker query finds committed events"
            assert await _holding(conn, _CURRENT, control) == SMALL - 1
            assert (
                await conn.fetchval("SELECT count(*) FROM event_log WHERE tx_id::xid = $1::text::xid", writer["xid"])
                == 0
            )
            # A fresh cluster is in xid epoch 0, so the 32-bit xid is also the xid8.
            assert await conn.fetchval("SELECT pg_xact_status($1::text::xid8)", writer["xid"]) == "aborted"
        finally:
            await conn.close()

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        assert not _postmaster_file(tmp_path).exists(), "SIGTERM must stop the embedded PostgreSQL too"
    finally:
        _kill(proc)
        if _postmaster_file(tmp_path).exists():  # a failure left the postmaster running: stop it
            from app.db.embedded import EmbeddedPostgres

            with contextlib.suppress(Exception):
                EmbeddedPostgres(tmp_path).stop()
