"""Fit the framework memory model's coefficients to the measurements, and print the table.

    PYTHONPATH=. python bench/memory_fit.py          # table with the current coefficients
    PYTHONPATH=. python bench/memory_fit.py --fit    # search the coefficients, then the table

The data: tests/data/memory_measurements.json (bench/memory_measurements.py): each case's
series (a fresh process per batch) or the median of its two-batch runs. The prediction:
the allocator's peaks simulated over the model's tensors (cnnlab.calc.allocator), taken as
the measurement took them (memory_cases.simulated_points). The fit: every coefficient, to
the allocator's peaks; the objective is the mean of |log(predicted / measured)| of the
per-sample slope (weight 1) and of the peak at the larger batch (weight 1/2); the search:
coordinate descent over each coefficient on a grid of multiples (about two minutes). The
hold-out random stacks are never fitted. The table also compares the tensors alone (the
model's moments) with the bytes the tensors requested (the allocator's trace).
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
from cnnlab.calc.memory_cases import (
    SERIES_POINTS,
    UNSEEN_SEEDS,
    cases,
    is_measured,
    least_squares_slope,
    measured_points,
    simulated_points,
)

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "memory_measurements.json"


def measured_cases(peak: str = "peaks", holdout: bool = False) -> list[tuple]:
    """(case, batches, peaks) for every measured case (memory_cases.measured_points: the
    fresh-process series where there is one, else the two batches' medians); `peak`:
    "peaks" (the allocator's, whole chunks) or "tensor_peaks" (the bytes requested);
    `holdout`: the hold-out random stacks, never fitted."""
    data = json.loads(DATA.read_text())["cases"]
    out = []
    for case in cases(holdout=holdout):
        entry = data.get(case.key)
        if not is_measured(entry):
            continue
        if holdout and len(entry.get("series") or []) < SERIES_POINTS:
            continue  # the hold-out is measured as a series only
        out.append((case, *measured_points(entry, peak)))
    return out


def errors(coefficients: Coefficients, rows, tensors: bool = False
           ) -> list[tuple[float, float]]:
    """(slope ratio, peak ratio) framework / measured per case; both slopes are
    least-squares lines through the same batches. `tensors`: the model's tensors alone (its
    moments), for rows of the bytes the tensors requested."""
    out = []
    for case, batches, peaks in rows:
        if tensors:
            fw = framework_estimate(case.input_shape, case.layers, batch=batches[-1],
                                    dtype=case.dtype, coefficients=coefficients)
            predicted = [fw.tensors_at(b) for b in batches]
        else:
            predicted = simulated_points(case, batches, coefficients)
        slope = least_squares_slope(batches, peaks)
        out.append((max(least_squares_slope(batches, predicted) / slope, 1e-3),
                    predicted[-1] / peaks[-1]))
    return out


def objective(coefficients: Coefficients, rows) -> float:
    ratios = errors(coefficients, rows)
    return statistics.mean(abs(math.log(max(s, 1e-3))) + 0.5 * abs(math.log(p))
                           for s, p in ratios)


def fit(rows, start: Coefficients = COEFFICIENTS, rounds: int = 2,
        names: list[str] | None = None) -> Coefficients:
    best, best_score = start, objective(start, rows)
    names = names or [f.name for f in fields(Coefficients)
                      if f.name != "runtime_bytes" and f.type not in (bool, "bool")]
    for _ in range(rounds):
        for name in names:
            value = getattr(best, name)
            grid = {0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0}
            grid |= {round(value * f, 3) for f in (0.8, 0.9, 1.1, 1.25)}
            for candidate in sorted(grid):
                trial = replace(best, **{name: candidate})
                score = objective(trial, rows)
                if score < best_score - 1e-6:
                    best, best_score = trial, score
        print(f"objective {best_score:.4f}: {best}", flush=True)
    return best


def table(coefficients: Coefficients = COEFFICIENTS, holdout: bool = False
          ) -> tuple[str, float]:
    """The measured / predicted table (markdown) and the worst framework slope ratio
    against the allocator's peak. Slopes in MB per sample; ratios predicted / measured.
    Batches "a-b x5": a series of fresh processes; "a/b": two batches in one process."""
    rows = measured_cases(holdout=holdout)
    tensor_rows = measured_cases("tensor_peaks", holdout=holdout)
    lines = ["| network | dtype | batches | measured MB/sample | framework | textbook | "
             "tensors MB/sample | framework | measured peak MB | framework | textbook |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    worst = 1.0
    for (case, batches, peaks), (slope_ratio, peak_ratio), (_, _, tensors), \
            (tensor_ratio, _) in zip(rows, errors(coefficients, rows), tensor_rows,
                                     errors(coefficients, tensor_rows, tensors=True),
                                     strict=True):
        slope = least_squares_slope(batches, peaks)
        b2 = batches[-1]
        tb = analyze(case.input_shape, case.layers, batch=b2, dtype=case.dtype).memory
        if abs(math.log(slope_ratio)) > abs(math.log(worst)):
            worst = slope_ratio
        shown = (f"{batches[0]}-{b2} x{len(batches)}" if len(batches) > 2
                 else f"{batches[0]}/{b2}")
        lines.append(f"| {case.name} | {case.dtype} | {shown} | {slope / 1e6:,.3f} | "
                     f"{slope_ratio:.2f} | {tb.per_sample_bytes / slope:.2f} | "
                     f"{least_squares_slope(batches, tensors) / 1e6:,.3f} | "
                     f"{tensor_ratio:.2f} | {peaks[-1] / 1e6:,.1f} | {peak_ratio:.2f} | "
                     f"{tb.training_bytes / peaks[-1]:.2f} |")
    return "\n".join(lines), worst


def unseen(case) -> bool:
    """A hold-out stack first measured after the last rule was added (UNSEEN_SEEDS)."""
    return case.name in {f"random stack {seed}" for seed in UNSEEN_SEEDS}


def summary(coefficients: Coefficients = COEFFICIENTS, holdout: bool = False,
            only_unseen: bool = False) -> str:
    """How far each model is from measurement: cases within 20%, median and worst error.
    `only_unseen`: the hold-out stacks no rule has seen (UNSEEN_SEEDS) alone."""
    rows = measured_cases(holdout=holdout)
    tensor_rows = measured_cases("tensor_peaks", holdout=holdout)
    if only_unseen:
        rows = [r for r in rows if unseen(r[0])]
        tensor_rows = [r for r in tensor_rows if unseen(r[0])]
    fw = [s for s, _ in errors(coefficients, rows)]
    bare = [s for s, _ in errors(coefficients, tensor_rows, tensors=True)]
    tb = []
    for case, batches, peaks in rows:
        m = analyze(case.input_shape, case.layers, batch=batches[-1], dtype=case.dtype).memory
        tb.append(m.per_sample_bytes / least_squares_slope(batches, peaks))
    if not rows:
        return "hold-out: not measured"
    name = "unseen hold-out " if only_unseen else "hold-out " if holdout else ""

    def line(what: str, ratios: list[float]) -> str:
        errs = sorted(abs(math.log(r)) for r in ratios)
        inside = sum(e <= math.log(1.2) for e in errs)
        return (f"{name}{what}: {inside} of {len(errs)} per-sample slopes within 20%, "
                f"median error {math.exp(statistics.median(errs)) - 1:.0%}, worst "
                f"{min(ratios):.2f}x / {max(ratios):.2f}x")
    return "\n".join([line("framework model vs allocator peak", fw),
                      line("framework model's tensors vs the tensors' requested bytes",
                           bare),
                      line("textbook count vs allocator peak", tb)])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fit", action="store_true")
    args = parser.parse_args()
    rows = measured_cases()
    coefficients = COEFFICIENTS
    if args.fit:
        coefficients = fit(rows)
    text, worst = table(coefficients)
    print(text)
    print(summary(coefficients))
    held, held_worst = table(coefficients, holdout=True)
    if measured_cases(holdout=True):
        print("\nHold-out (random stacks never used in the fit):\n" + held)
        print(summary(coefficients, holdout=True))
        print(summary(coefficients, holdout=True, only_unseen=True))
        print(f"holdout worst={held_worst:.2f}")
    print(f"worst={worst:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
