"""Validation cost per resource: ``python bench/validation.py``.

Typical Patient, Observation, a Questionnaire with nested items and a DiagnosticReport with 200
contained Observations; each without and with invariants (µs per resource, median of runs).
"+ invariants" forgets remembered invariant outcomes before each call (a first-seen resource);
"repeat (memo)" validates the same resource again with them remembered.

Then the write path over the resources of the first ``FILES`` Synthea bundles: the walker
(``validate_resource``) against the generated checks a write asks first
(``app.validation.fast_accept.accepts``), in turn, CPU µs per resource (medians of 3 rounds;
remembered invariant outcomes kept, as in a server), and how many resources the checks accept."""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.validation import validate_resource, warm
from app.validation.fast_accept import accepts
from app.validation.invariants import forget_outcomes
from bench.extract import load
from tests.validation.validation_samples import (
    diagnostic_report,
    observation,
    patient,
    questionnaire,
)


def per_call_us(resource: dict, invariants: bool, cold: bool = True, budget_s: float = 0.5) -> float:
    """Median µs per validation; ``cold`` forgets remembered invariant outcomes before each call
    (as for a resource never seen before: only repeats inside the resource are shared)."""
    forget = forget_outcomes if cold else (lambda: None)
    validate_resource(resource, invariants=invariants)
    start = time.perf_counter()
    validate_resource(resource, invariants=invariants)
    once = time.perf_counter() - start
    n = max(3, min(5000, int(budget_s / max(once, 1e-6) / 5)))
    samples = []
    for _ in range(5):
        elapsed = 0.0
        for _ in range(n):
            forget()
            t0 = time.perf_counter()
            validate_resource(resource, invariants=invariants)
            elapsed += time.perf_counter() - t0
        samples.append(elapsed / n * 1e6)
    return statistics.median(samples)


def main() -> None:
    t0 = time.perf_counter()
    warm()
    print(f"warm(): compiled all types in {(time.perf_counter() - t0) * 1000:.0f} ms\n")
    cases = {
        "Patient (typical)": patient(),
        "Observation": observation(),
        "Questionnaire (4 levels, 120 items)": questionnaire(depth=4, width=3),
        "DiagnosticReport + 200 contained Obs": diagnostic_report(200),
    }
    header = ("resource", "structure only", "+ invariants", "invariants", "repeat (memo)")
    print(f"{header[0]:38} {header[1]:>15} {header[2]:>15} {header[3]:>13} {header[4]:>15}")
    for name, resource in cases.items():
        assert not [i for i in validate_resource(resource) if i.severity == "error"], name
        plain = per_call_us(resource, invariants=False)
        full = per_call_us(resource, invariants=True)
        warm_memo = per_call_us(resource, invariants=True, cold=False)
        print(f"{name:38} {plain:12,.0f} µs {full:12,.0f} µs {full - plain:10,.0f} µs {warm_memo:12,.0f} µs")


FILES = 20


def synthea_write_path() -> None:
    resources = load(FILES)
    walker_ok = [not [i for i in validate_resource(r) if i.severity == "error"] for r in resources]
    accepted = [accepts(r) for r in resources]
    assert not [1 for a, w in zip(accepted, walker_ok, strict=True) if a and not w], "accepted what the walker refuses"
    rounds: dict[str, list[float]] = {"walker": [], "generated": []}
    for _ in range(3):
        for name, check in (("walker", validate_resource), ("generated", accepts)):
            start = time.process_time()
            for resource in resources:
                check(resource)
            rounds[name].append((time.process_time() - start) / len(resources) * 1e6)
    walker, generated = (statistics.median(rounds[k]) for k in ("walker", "generated"))
    print(f"\nwrite path, {len(resources):,} resources of {FILES} Synthea bundles ({sum(accepted):,} accepted):")
    print(f"walker {walker:,.1f} µs/resource, generated checks {generated:,.1f} µs/resource: {walker / generated:.2f}x")


if __name__ == "__main__":
    main()
    synthea_write_path()
