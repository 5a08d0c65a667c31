"""Validation cost per resource: ``python bench/validation.py``.

Typical Patient, Observation, a Questionnaire with nested items and a DiagnosticReport with 200
contained Observations; each without and with invariants (µs per resource, median of runs).
"+ invariants" forgets remembered invariant outcomes before each call (a first-seen resource);
"repeat (memo)" validates the same resource again with them remembered."""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.validation import validate_resource, warm
from app.validation.invariants import forget_outcomes
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


if __name__ == "__main__":
    main()
