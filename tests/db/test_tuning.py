"""The embedded PostgreSQL is tuned for its machine at its first start, never at the cost of
durability, and an operator's edits of the settings file stay."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from app.db.tuning import INCLUDE_LINE, TUNING_FILE, ensure_tuning, tuned_settings

GB = 1024**3
UNSAFE = {"fsync", "synchronous_commit", "full_page_writes"}


def test_settings_scale_with_the_machine_and_never_trade_durability() -> None:
    big = tuned_settings(24 * GB, 2, lz4=False, disk_free=80 * GB)
    assert big["shared_buffers"] == "4096MB"  # a quarter of 24 GB, capped at 4 GB
    assert big["random_page_cost"] == "1.1"
    assert big["max_wal_size"] == "10GB"  # an eighth of the disk space free
    assert int(big["effective_cache_size"].removesuffix("MB")) > 16 * 1024
    assert "default_toast_compression" not in big  # the server cannot do lz4: not named
    small = tuned_settings(2 * GB, 1, lz4=True, disk_free=GB // 4)
    assert small["shared_buffers"] == "512MB"
    assert small["max_wal_size"] == "1GB"  # PostgreSQL's own default, the least
    assert tuned_settings(2 * GB, 1, lz4=True, disk_free=500 * GB)["max_wal_size"] == "16GB"  # the most
    assert small["default_toast_compression"] == "lz4"
    assert not UNSAFE & (big.keys() | small.keys())


def test_the_file_is_written_once_and_included_once(tmp_path: Path) -> None:
    (tmp_path / "postgresql.conf").write_text("max_connections = 100\n")
    assert ensure_tuning(tmp_path, tmp_path)
    written = (tmp_path / TUNING_FILE).read_text()
    assert "shared_buffers" in written and "random_page_cost = '1.1'" in written
    (tmp_path / TUNING_FILE).write_text("work_mem = '8MB'\n")  # the operator's edit
    assert not ensure_tuning(tmp_path, tmp_path)
    assert (tmp_path / TUNING_FILE).read_text() == "work_mem = '8MB'\n"
    assert (tmp_path / "postgresql.conf").read_text().count(INCLUDE_LINE) == 1


async def test_the_embedded_server_runs_with_them(embedded_dsn: str) -> None:
    conn = await asyncpg.connect(embedded_dsn)
    try:
        assert await conn.fetchval("SHOW random_page_cost") == "1.1"
        wal = await conn.fetchval("SHOW max_wal_size")  # by the disk space free at its first start
        assert wal.endswith("GB") and 1 <= int(wal.removesuffix("GB")) <= 16
        assert await conn.fetchval("SHOW shared_buffers") != "128MB"  # not the default
        assert await conn.fetchval("SHOW fsync") == "on"
        assert await conn.fetchval("SHOW synchronous_commit") == "on"
        assert await conn.fetchval("SHOW full_page_writes") == "on"
    finally:
        await conn.close()
