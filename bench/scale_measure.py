"""The scale benchmark's measurements, one data directory (size) after the other in one run:
per template p50/p99 one search at a time, the 38-query mix at concurrency 1 (p99) and 8
(throughput, p99), the raw-asyncpg baseline (a read by primary key at concurrency 8), optionally
EXPLAIN ANALYZE of each template; then the sizes side by side against the issue's targets.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl

import asyncpg

from bench.common import Result, ServerProcess, run_load
from bench.rawhttp import RawConnection
from bench.scale_mix import Template, mix, sample_templates


@dataclass
class SizeFigures:
    data_dir: Path
    resources: int = 0
    templates: dict[str, Result] = field(default_factory=dict)
    mix_c1: Result | None = None
    mix_c8: Result | None = None
    baseline: Result | None = None


async def _get(conn: RawConnection, path: str) -> None:
    status, _, body = await conn.request("GET", path)
    assert status == 200, (path, status, body[:300])


async def _templates(base: str, templates: list[Template], repeat: int) -> dict[str, Result]:
    conn = RawConnection(base)
    out = {}
    for t in templates:
        paths = [f"/{t.resource_type}?{q}" for q in t.queries]
        for p in paths:  # warm: every value once
            await _get(conn, p)

        async def op(i: int, paths: list[str] = paths) -> None:
            await _get(conn, paths[i % len(paths)])

        out[t.name] = await run_load(t.name, 1, repeat, op)
    await conn.close()
    return out


async def _mix(base: str, paths: list[str], concurrency: int, rounds: int) -> Result:
    conns = [RawConnection(base) for _ in range(concurrency)]
    free = list(conns)

    async def op(i: int) -> None:
        c = free.pop()
        try:
            await _get(c, paths[i % len(paths)])
        finally:
            free.append(c)

    result = await run_load(f"mix c={concurrency}", concurrency, rounds * len(paths), op)
    for c in conns:
        await c.close()
    return result


async def _baseline(pool: asyncpg.Pool, ids: list[str], ops: int) -> Result:
    async def op(i: int) -> None:
        async with pool.acquire() as conn:
            await conn.fetchval("SELECT resource FROM cur_patient WHERE id = $1", ids[i % len(ids)])

    return await run_load("raw asyncpg read by PK", 8, ops, op)


async def explain(pool: asyncpg.Pool, templates: list[Template]) -> None:
    """EXPLAIN ANALYZE of each template's page query (its first value), as the server plans it."""
    from app.queries.search.parse import parse_search
    from app.queries.search.plan import page_sql

    for t in templates:
        q = parse_search(t.resource_type, parse_qsl(t.queries[0]), strict=True, default_count=20, max_count=1000)
        page = page_sql(q, "")
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
            rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS OFF) {page.sql}", *page.args)
        print(f"\n--- {t.name}: {t.resource_type}?{t.queries[0]}")
        for r in rows:
            print("   " + r[0])


async def measure_size(
    data_dir: Path, templates: list[Template] | None, repeat: int, rounds: int, show_plans: bool
) -> tuple[SizeFigures, list[Template]]:
    figures = SizeFigures(data_dir)
    with ServerProcess(str(data_dir), workers=2) as server:
        pool = await asyncpg.create_pool(server.dsn, min_size=2, max_size=8)
        figures.resources = await pool.fetchval("SELECT count(*) FROM event_log")
        print(f"\n== {data_dir}: {figures.resources:,} resources", flush=True)
        if templates is None:
            templates = await sample_templates(pool)
        if show_plans:
            await explain(pool, templates)
        paths = mix(templates)
        figures.templates = await _templates(server.base, templates, repeat)
        for r in figures.templates.values():
            print("  " + r.row(), flush=True)
        figures.mix_c1 = await _mix(server.base, paths, 1, max(1, rounds // 2))
        figures.mix_c8 = await _mix(server.base, paths, 8, rounds)
        ids = [r["id"] for r in await pool.fetch("SELECT id FROM cur_patient ORDER BY id LIMIT 500")]
        figures.baseline = await _baseline(pool, ids, rounds * len(paths))
        for r in (figures.mix_c1, figures.mix_c8, figures.baseline):
            print("  " + r.row(), flush=True)
        await pool.close()
    return figures, templates


def report(sizes: list[SizeFigures]) -> None:
    small, large = sizes[0], sizes[-1]
    names = list(small.templates)
    head = "".join(f"{f'{s.resources:,} p50':>14}{'p99':>9}" for s in sizes)
    print(f"\n{'template (one at a time, ms)':<40}{head}")
    for name in names:
        cells = "".join(f"{s.templates[name].pct(0.5):>14.2f}{s.templates[name].pct(0.99):>9.2f}" for s in sizes)
        print(f"{name:<40}{cells}")
    for label, get in (
        ("mix c=8 searches/s", lambda s: s.mix_c8.throughput),
        ("mix c=8 p99 ms", lambda s: s.mix_c8.pct(0.99)),
        ("mix c=1 p99 ms", lambda s: s.mix_c1.pct(0.99)),
        ("baseline PK reads/s c=8", lambda s: s.baseline.throughput),
        ("mix c=8 / baseline", lambda s: s.mix_c8.throughput / s.baseline.throughput),
    ):
        print(f"{label:<40}" + "".join(f"{get(s):>23.2f}" for s in sizes))
    if len(sizes) < 2:
        return
    ratio_tp = large.mix_c8.throughput / small.mix_c8.throughput
    ratio_p99 = large.mix_c8.pct(0.99) / small.mix_c8.pct(0.99)
    worst_p50 = max(large.templates.values(), key=lambda r: r.pct(0.5))
    print("\ntargets at the largest size against the smallest, same run:")
    print(f"  throughput c=8 ratio {ratio_tp:.2f} (target >= 0.8): {'met' if ratio_tp >= 0.8 else 'NOT met'}")
    print(f"  p99 c=8 ratio {ratio_p99:.2f} (target <= 1.5): {'met' if ratio_p99 <= 1.5 else 'NOT met'}")
    c1 = large.mix_c1.pct(0.99)
    print(f"  one at a time p99 {c1:.1f} ms (target < 50): {'met' if c1 < 50 else 'NOT met'}")
    slow = worst_p50.pct(0.5)
    verdict = "met" if slow <= 20 else "NOT met"
    print(f"  slowest template p50 {slow:.1f} ms ({worst_p50.name}; target <= 20): {verdict}")


async def measure_all(data_dirs: list[Path], repeat: int, rounds: int, show_plans: bool) -> None:
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    print(f"scale benchmark, {started}; values sampled from {data_dirs[0]}")
    sizes: list[SizeFigures] = []
    templates = None
    for d in data_dirs:
        figures, templates = await measure_size(d, templates, repeat, rounds, show_plans)
        sizes.append(figures)
    report(sizes)
    for t in templates or []:
        print(f"  {t.name}: e.g. {t.resource_type}?{t.queries[0]}")
