"""``fhirledger doctor``: what an operator should know about the database this server uses.

Reports the PostgreSQL version, the settings that put data at risk or slow the server (an
external server's settings are never changed, only reported; the database's collation among them),
the size of the event log, the current-state and the search tables with the bytes per stored
resource, projections that are not ready, migrations not yet applied, and compiled modules this
installation lacks (their slower Python versions run: :mod:`app.native`). Read only: it runs no
migration and changes nothing. Exit status 1 when a setting puts data at risk, else 0.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import asyncpg

from app.cli_common import database_options, run_with_database
from app.db.collation import is_byte_order
from app.events.store import last_position, log_bytes, log_exists

MB = 1024 * 1024
COLLATE = "__collate"
"""The database's ``datcollate``, among the settings assessed."""


@dataclass(frozen=True)
class Finding:
    level: str  # "risk": data may be lost; "slow": costs speed; "ok"
    setting: str
    value: str
    advice: str

    def line(self) -> str:
        return f"  [{self.level}] {self.setting} = {self.value}: {self.advice}"


def _bytes(value: str, unit: str | None) -> int:
    """A memory setting as bytes (pg_settings gives the value in its unit, e.g. 8kB pages)."""
    factor = {"8kB": 8192, "kB": 1024, "MB": MB, "B": 1, None: 1}.get(unit, 1)
    return int(value) * factor


def assess(settings: dict[str, tuple[str, str | None]], memory: int | None) -> list[Finding]:
    """Findings for ``settings`` (name -> (value, unit) as pg_settings has them); ``memory``: the
    server machine's RAM in bytes when known (the embedded server's), else None."""
    out: list[Finding] = []

    def get(name: str) -> tuple[str, str | None] | None:
        return settings.get(name)

    for name, safe in (("fsync", "on"), ("full_page_writes", "on")):
        if (v := get(name)) and v[0] != safe:
            out.append(Finding("risk", name, v[0], "a crash can corrupt the database; set it to on"))
    if (v := get("synchronous_commit")) and v[0] == "off":
        out.append(Finding("risk", "synchronous_commit", v[0], "a crash loses writes already answered 201/200"))
    if (v := get("shared_buffers")) and _bytes(*v) <= 128 * MB:
        target = f"about {max(128, (memory or 0) // 4 // MB)} MB (a quarter of the memory)" if memory else "~25% RAM"
        out.append(Finding("slow", "shared_buffers", _show(v), f"the default; set {target}"))
    if (v := get("work_mem")) and _bytes(*v) <= 4 * MB:
        out.append(Finding("slow", "work_mem", _show(v), "sorts of searches spill to disk; 16-64 MB"))
    if (v := get("maintenance_work_mem")) and _bytes(*v) <= 64 * MB:
        out.append(Finding("slow", "maintenance_work_mem", _show(v), "index builds of a rebuild are slow; 256MB-1GB"))
    if (v := get("max_wal_size")) and _bytes(*v) <= 1024 * MB:
        advice = "checkpoints come often under writes, and each rewrites pages whole into the WAL; 4-16GB"
        out.append(Finding("slow", "max_wal_size", _show(v), advice))
    if (v := get("random_page_cost")) and float(v[0]) >= 2:
        out.append(Finding("slow", "random_page_cost", v[0], "on an SSD 1.1 makes the planner use the indexes"))
    if (v := get("effective_cache_size")) and memory and _bytes(*v) < memory // 4:
        out.append(Finding("slow", "effective_cache_size", _show(v), "about 3/4 of the memory"))
    toast = get("default_toast_compression")
    if toast and toast[0] == "pglz" and "lz4" in (settings.get("__enumvals_toast") or ("",))[0]:
        out.append(Finding("slow", "default_toast_compression", "pglz", "lz4 compresses and reads faster"))
    if (v := get("jit")) and v[0] == "on":
        out.append(Finding("slow", "jit", "on", "compiling large searches costs more than it saves here; off"))
    if (v := get(COLLATE)) and not is_byte_order(v[0]):
        advice = (
            "ids, codes and references are compared with strcoll and sorted without abbreviated keys;"
            " a database created with LC_COLLATE 'C' (TEMPLATE template0) compares bytes: restore a dump"
            " into one to move (app/db/collation.py)"
        )
        out.append(Finding("slow", "database collation", v[0], advice))
    return out


def _show(value: tuple[str, str | None]) -> str:
    size = _bytes(*value)
    return f"{size // MB}MB" if size >= MB else f"{size // 1024}kB"


NAMES = (
    "fsync",
    "full_page_writes",
    "synchronous_commit",
    "shared_buffers",
    "work_mem",
    "maintenance_work_mem",
    "max_wal_size",
    "random_page_cost",
    "effective_cache_size",
    "default_toast_compression",
    "jit",
)

SIZES = """
SELECT CASE WHEN c.relname LIKE 'cur\\_%' THEN 'current state'
            WHEN c.relname LIKE 'sp\\_%' THEN 'search index'
            ELSE 'other' END AS part,
       sum(pg_total_relation_size(c.oid))::bigint AS bytes
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relkind = 'r'
GROUP BY 1 ORDER BY 2 DESC
"""


async def gather(conn: asyncpg.Connection) -> dict:
    rows = await conn.fetch("SELECT name, setting, unit, enumvals FROM pg_settings WHERE name = ANY($1)", list(NAMES))
    settings: dict[str, tuple[str, str | None]] = {r["name"]: (r["setting"], r["unit"]) for r in rows}
    for r in rows:
        if r["name"] == "default_toast_compression":
            settings["__enumvals_toast"] = (",".join(r["enumvals"] or []), None)
    settings[COLLATE] = (
        await conn.fetchval("SELECT datcollate FROM pg_database WHERE datname = current_database()"),
        None,
    )
    if not await conn.fetchval("SELECT pg_jit_available()"):
        settings.pop("jit", None)  # a server built without JIT: the setting does nothing
    tables = {r["part"]: r["bytes"] for r in await conn.fetch(SIZES)}
    if log := await log_bytes(conn):  # the event log is counted apart from the "other" tables
        tables["event log"] = log
        tables["other"] -= log
        if not tables["other"]:
            del tables["other"]
    has = await log_exists(conn) and await conn.fetchval("SELECT to_regclass('projection_state') IS NOT NULL")
    events = resources = 0
    stale: list[tuple[str, str]] = []
    applied: set[int] = set()
    if has:
        events = await last_position(conn)
        resources = await resource_estimate(conn)
        stale = [
            (r["name"], r["status"])
            for r in await conn.fetch("SELECT name, status FROM projection_state WHERE status <> 'ready' ORDER BY name")
        ]
        applied = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
    return {
        "version": await conn.fetchval("SHOW server_version"),
        "settings": settings,
        "tables": tables,
        "events": events,
        "resources": resources,
        "stale": stale,
        "applied": applied,
    }


async def resource_estimate(conn: asyncpg.Connection) -> int:
    """The current-state rows: the planner's estimate where a table has been analysed, an exact
    count where it never was (right after a load, before autovacuum has seen it)."""
    total = 0
    for r in await conn.fetch(
        "SELECT c.relname, c.reltuples FROM pg_class c"
        " WHERE c.relname LIKE 'cur\\_%' AND c.relkind = 'r' AND c.relnamespace = current_schema()::regnamespace"
    ):
        if r["reltuples"] >= 0:
            total += int(r["reltuples"])
        else:  # the name comes from the catalog, spelled as an identifier
            total += await conn.fetchval(f'SELECT count(*) FROM "{r["relname"]}" WHERE NOT deleted')
    return total


def report(info: dict, memory: int | None) -> tuple[list[str], int]:
    """The lines to print and the exit status."""
    from app.db.migrations import MIGRATIONS

    lines = [f"PostgreSQL {info['version']}"]
    findings = assess(info["settings"], memory)
    lines.append("settings:" if findings else "settings: nothing to report")
    lines += [f.line() for f in findings]
    total = sum(info["tables"].values())
    per = f", {total / info['resources']:,.0f} bytes per resource" if info["resources"] else ""
    lines.append(f"storage: {total / MB:,.1f} MB for about {info['resources']:,} resources{per}")
    for part, size in info["tables"].items():
        lines.append(f"  {part}: {size / MB:,.1f} MB")
    lines.append(f"event log: {info['events']:,} events (last position)")
    if info["stale"]:
        lines.append("projections not ready (run `fhirledger projections rebuild --type T`):")
        lines += [f"  {name}: {status}" for name, status in info["stale"]]
    else:
        lines.append("projections: all ready")
    missing = [v for v, _, _ in MIGRATIONS if v not in info["applied"]]
    if missing:
        listed = ", ".join(map(str, missing))
        lines.append(f"migrations: {len(missing)} not applied ({listed}); `fhirledger serve` applies them")
    else:
        lines.append("migrations: all applied")
    lines.append(native_line())
    return lines, 1 if any(f.level == "risk" for f in findings) else 0


def native_line() -> str:
    """Whether the compiled modules of :mod:`app.native` are built (replay and transactions run slower
    without)."""
    from app import native

    missing = native.missing()
    if not missing:
        return "compiled modules: all built"
    return (
        f"compiled modules: {', '.join(missing)} not built (no C compiler at install): their Python versions run,"
        " a replay's workers and transactions more slowly; install gcc and the Python headers, then reinstall"
    )


def register(sub: argparse._SubParsersAction) -> None:
    doctor = sub.add_parser("doctor", help="report the database's version, settings that hurt, sizes and state")
    database_options(doctor)
    doctor.set_defaults(func=_doctor)


def _doctor(args: argparse.Namespace) -> int:
    status = 0

    async def work(dsn: str) -> None:
        nonlocal status
        conn = await asyncpg.connect(dsn)
        try:
            info = await gather(conn)
        finally:
            await conn.close()
        memory = _embedded_memory(args)
        lines, status = report(info, memory)
        print("\n".join(lines))

    return run_with_database("doctor", args, work) or status


def _embedded_memory(args: argparse.Namespace) -> int | None:
    """The machine's memory when the database is the embedded one (on this machine)."""
    from app.settings import Settings

    if args.database_url or Settings().database_url:
        return None
    from app.db.tuning import machine

    return machine()[0]
