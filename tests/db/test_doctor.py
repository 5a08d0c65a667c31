"""`fhirledger doctor` reports the server version, the settings that hurt, sizes and state."""

from __future__ import annotations

import asyncio

import httpx

from app import native
from app.cli import main
from app.cli_doctor import assess, native_line, report

MB = 1024 * 1024
DEFAULTS = {
    "fsync": ("on", None),
    "full_page_writes": ("on", None),
    "synchronous_commit": ("on", None),
    "shared_buffers": ("16384", "8kB"),  # 128 MB
    "work_mem": ("4096", "kB"),
    "maintenance_work_mem": ("65536", "kB"),
    "max_wal_size": ("1024", "MB"),
    "random_page_cost": ("4", None),
    "effective_cache_size": ("524288", "8kB"),
}


def test_postgres_defaults_are_reported_as_slow_with_advice() -> None:
    findings = {f.setting: f for f in assess(DEFAULTS, 24 * 1024 * MB)}
    assert {"shared_buffers", "work_mem", "maintenance_work_mem", "max_wal_size", "random_page_cost"} <= set(findings)
    assert all(f.level == "slow" for f in findings.values())
    assert "6144 MB" in findings["shared_buffers"].advice
    assert findings["random_page_cost"].line().startswith("  [slow] random_page_cost = 4")


def test_settings_that_lose_data_are_risks_and_fail_the_exit_status() -> None:
    unsafe = {**DEFAULTS, "fsync": ("off", None), "synchronous_commit": ("off", None)}
    risks = [f.setting for f in assess(unsafe, None) if f.level == "risk"]
    assert risks == ["fsync", "synchronous_commit"]
    info = {
        "version": "16.1",
        "settings": unsafe,
        "tables": {},
        "events": 0,
        "resources": 0,
        "stale": [],
        "applied": set(),
    }
    lines, status = report(info, None)
    assert status == 1
    assert any("[risk] fsync = off" in line for line in lines)
    assert any(line.startswith("migrations:") and "not applied" in line for line in lines)


async def test_doctor_against_the_test_database(client: httpx.AsyncClient, database_dsn: str, capsys) -> None:
    await client.post("/fhir/Basic", json={"resourceType": "Basic", "code": {"text": "doctor"}})
    assert await asyncio.to_thread(main, ["doctor", "--database-url", database_dsn]) == 0
    out = capsys.readouterr().out
    assert out.startswith("PostgreSQL ")
    assert "storage:" in out and "event log:" in out and "search index:" in out
    assert "projections: all ready" in out
    assert "migrations: all applied" in out
    assert f"compiled modules: {'all built' if not native.missing() else ''}" in out


def test_doctor_names_compiled_modules_not_built(monkeypatch) -> None:
    """An installation without a C compiler runs the Python versions; the operator is told which."""
    monkeypatch.setattr(native, "copyrows", None)
    line = native_line()
    assert line.startswith("compiled modules: copyrows not built") and "install gcc" in line
    monkeypatch.setattr(native, "textwalk", None)
    assert native_line().startswith("compiled modules: textwalk, copyrows not built")


async def test_doctor_counts_resources_of_tables_never_analysed(
    client: httpx.AsyncClient, database_dsn: str, capsys
) -> None:
    """Right after a load no table has statistics yet; the report still says how many resources it holds."""
    for n in range(3):
        await client.post("/fhir/Basic", json={"resourceType": "Basic", "code": {"text": f"doctor {n}"}})
    assert await asyncio.to_thread(main, ["doctor", "--database-url", database_dsn]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("storage:"))
    count = int(line.split("about ")[1].split(" resources")[0].replace(",", ""))
    assert count >= 3 and "bytes per resource" in line
