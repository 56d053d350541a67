"""Fit the framework memory model's coefficients to the measurements, and print the table.

    PYTHONPATH=. python bench/memory_fit.py          # table with the current coefficients
    PYTHONPATH=. python bench/memory_fit.py --fit    # search the coefficients, then the table

The data: tests/data/memory_measurements.json (bench/memory_measurements.py), the median
of each case's runs. Two stages. (1) Every coefficient but `allocator_rounding` is fitted
to the tensors' own peak (the bytes they requested, from the allocator's trace), with
`allocator_rounding` = 1: the objective is the mean of |log(predicted / measured)| of the
per-sample slope (weight 1) and of the peak at the larger batch (weight 1/2). (2)
`allocator_rounding` alone is fitted to the allocator's peaks (whole chunks), the same
objective. The search: coordinate descent over each coefficient on a grid of multiples.
Last line: the worst per-sample ratio framework/allocator-measured (`worst=`).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from dataclasses import fields, replace
from pathlib import Path

from cnnlab.calc.analysis import analyze
from cnnlab.calc.framework_memory import COEFFICIENTS, Coefficients, framework_estimate
from cnnlab.calc.memory_cases import cases

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "memory_measurements.json"


def measured_cases(peak: str = "peaks") -> list[tuple]:
    """(case, b1, b2, median peak at b1, at b2) for every measured case; `peak`: "peaks"
    (the allocator's, whole chunks) or "tensor_peaks" (the bytes the tensors requested)."""
    data = json.loads(DATA.read_text())["cases"]
    out = []
    for case in cases():
        entry = data.get(case.key)
        if not entry or not entry["runs"]:
            continue
        b1, b2 = entry["batches"]
        p1 = statistics.median(r[peak][0] for r in entry["runs"])
        p2 = statistics.median(r[peak][1] for r in entry["runs"])
        out.append((case, b1, b2, p1, p2))
    return out


def errors(coefficients: Coefficients, rows) -> list[tuple[float, float]]:
    """(slope ratio, peak ratio) framework / measured per case."""
    out = []
    for case, b1, b2, p1, p2 in rows:
        fw = framework_estimate(case.input_shape, case.layers, batch=b2, dtype=case.dtype,
                                coefficients=coefficients)
        out.append((fw.slope(b1, b2) / ((p2 - p1) / (b2 - b1)), fw.at(b2) / p2))
    return out


def objective(coefficients: Coefficients, rows) -> float:
    ratios = errors(coefficients, rows)
    return statistics.mean(abs(math.log(max(s, 1e-3))) + 0.5 * abs(math.log(p))
                           for s, p in ratios)


def fit(rows, start: Coefficients = COEFFICIENTS, rounds: int = 3,
        names: list[str] | None = None) -> Coefficients:
    best, best_score = start, objective(start, rows)
    names = names or [f.name for f in fields(Coefficients)
                      if f.name not in ("runtime_bytes", "allocator_rounding")]
    for _ in range(rounds):
        for name in names:
            value = getattr(best, name)
            grid = {0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0} if name != "allocator_rounding" \
                else {1.0, 1.05, 1.1, 1.15, 1.2, 1.25, 1.3}
            grid |= {round(value * f, 3) for f in (0.8, 0.9, 1.1, 1.25)}
            for candidate in sorted(grid):
                trial = replace(best, **{name: candidate})
                score = objective(trial, rows)
                if score < best_score - 1e-6:
                    best, best_score = trial, score
        print(f"objective {best_score:.4f}: {best}", flush=True)
    return best


def table(coefficients: Coefficients = COEFFICIENTS) -> tuple[str, float]:
    """The measured / predicted table (markdown) and the worst framework slope ratio
    against the allocator's peak. Slopes in MB per sample; ratios predicted / measured."""
    rows, tensor_rows = measured_cases(), measured_cases("tensor_peaks")
    bare = replace(coefficients, allocator_rounding=1.0)
    lines = ["| network | dtype | batches | measured MB/sample | framework | textbook | "
             "tensors MB/sample | framework | measured peak MB | framework | textbook |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    worst = 1.0
    for (case, b1, b2, p1, p2), (slope_ratio, peak_ratio), (_, _, _, t1, t2), \
            (tensor_ratio, _) in zip(rows, errors(coefficients, rows), tensor_rows,
                                     errors(bare, tensor_rows), strict=True):
        slope = (p2 - p1) / (b2 - b1)
        tb = analyze(case.input_shape, case.layers, batch=b2, dtype=case.dtype).memory
        if abs(math.log(slope_ratio)) > abs(math.log(worst)):
            worst = slope_ratio
        lines.append(f"| {case.name} | {case.dtype} | {b1}/{b2} | {slope / 1e6:,.3f} | "
                     f"{slope_ratio:.2f} | {tb.per_sample_bytes / slope:.2f} | "
                     f"{(t2 - t1) / (b2 - b1) / 1e6:,.3f} | {tensor_ratio:.2f} | "
                     f"{p2 / 1e6:,.1f} | {peak_ratio:.2f} | {tb.training_bytes / p2:.2f} |")
    return "\n".join(lines), worst


def summary(coefficients: Coefficients = COEFFICIENTS) -> str:
    """How far each model is from measurement: cases within 20%, median and worst error."""
    rows, tensor_rows = measured_cases(), measured_cases("tensor_peaks")
    fw = [s for s, _ in errors(coefficients, rows)]
    bare = [s for s, _ in errors(replace(coefficients, allocator_rounding=1.0), tensor_rows)]
    tb = []
    for case, b1, b2, p1, p2 in rows:
        m = analyze(case.input_shape, case.layers, batch=b2, dtype=case.dtype).memory
        tb.append(m.per_sample_bytes / ((p2 - p1) / (b2 - b1)))

    def line(name: str, ratios: list[float]) -> str:
        errs = sorted(abs(math.log(r)) for r in ratios)
        inside = sum(e <= math.log(1.2) for e in errs)
        return (f"{name}: {inside} of {len(errs)} per-sample slopes within 20%, median "
                f"error {math.exp(statistics.median(errs)) - 1:.0%}, worst "
                f"{min(ratios):.2f}x / {max(ratios):.2f}x")
    return "\n".join([line("framework model vs allocator peak", fw),
                      line("framework model (no rounding) vs the tensors' requested bytes",
                           bare),
                      line("textbook count vs allocator peak", tb)])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fit", action="store_true")
    args = parser.parse_args()
    rows = measured_cases()
    coefficients = COEFFICIENTS
    if args.fit:
        tensors = fit(measured_cases("tensor_peaks"), replace(COEFFICIENTS,
                                                               allocator_rounding=1.0))
        coefficients = fit(rows, tensors, rounds=1, names=["allocator_rounding"])
    text, worst = table(coefficients)
    print(text)
    print(summary(coefficients))
    print(f"worst={worst:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
