"""Measure one training step of every memory case (cnnlab.calc.memory_cases) on this machine
and write tests/data/memory_measurements.json; then print the measured / predicted table.

    PYTHONPATH=. python bench/memory_measurements.py            # measure what is missing
    PYTHONPATH=. python bench/memory_measurements.py --fresh     # measure everything again
    PYTHONPATH=. python bench/memory_measurements.py --table     # only print the table
    PYTHONPATH=. python bench/memory_measurements.py --series    # the slopes' series
    PYTHONPATH=. python bench/memory_measurements.py --series --holdout  # the hold-out's

Each case runs `cnnlab.calc.measure.measure` (a child process per measurement) REPEATS times
(default 3; 2 for the ImageNet-size networks) and keeps every run: TensorFlow's BFC
allocator gives a few percent different peaks in different processes (where the free chunks
lie decides how much a request rounds up), so the table uses the median of the runs.
`--series` measures each case at memory_cases.series_batches, one fresh child per batch
(cnnlab.calc.measure.measure_fresh), and stores [batch, peak, tensor peak] per point under
"series": bench/memory_fit.py and the tests take a case's slope as the least-squares line
through them. Two batches in one process are biased: the second step reuses the allocator
regions and keeps the tensors the first batch's graph left (random stack 4 at 1024: 19.7 MB
resident after 256 against 0 fresh), and two batches a power of two apart read the BFC
allocator's power-of-two rounding of one network as its slope.
Last line: the worst per-sample ratio framework/measured (`worst=`).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

from cnnlab.calc.measure import MeasureError, measure
from cnnlab.calc.memory_cases import cases

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "memory_measurements.json"


def load(path: Path = DATA) -> dict:
    if path.exists():
        return json.loads(path.read_text())
    return {"cases": {}}


def save(data: dict, path: Path = DATA, key: str | None = None) -> None:
    """Write `data`; with `key`, only that case's entry (and the run's backend, device and
    machine) goes into what the file holds now, so two runs of this script (say, a series
    and the hold-out's) can write one file side by side without undoing each other."""
    if key is not None:
        merged = load(path)
        merged["cases"][key] = data["cases"][key]
        for field in ("backend", "device", "machine", "command"):
            if field in data:
                merged[field] = data[field]
        data = merged
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)


def measure_all(fresh: bool, only: str | None, repeats: int | None, path: Path = DATA) -> dict:
    data = {"cases": {}} if fresh else load(path)
    data["command"] = "PYTHONPATH=. python bench/memory_measurements.py"
    data["machine"] = f"{platform.machine()} {platform.processor() or ''}".strip()
    for case in sorted(cases(), key=lambda c: (c.group == "architecture", c.name, c.dtype)):
        if only and only not in case.key:
            continue
        want = repeats or (2 if case.group == "architecture" else 3)
        entry = data["cases"].get(case.key)
        if entry and entry["batches"] != list(case.batches):
            entry = None
        runs = entry["runs"] if entry else []
        while len(runs) < want:
            start = time.perf_counter()
            try:
                m = measure(case.input_shape, case.layers, batch=case.batches[1],
                            batches=case.batches, dtype=case.dtype, timeout_s=1800,
                            fresh=False)  # the two-batch runs: both in one process
            except MeasureError as error:
                print(f"{case.key}: {error}", flush=True)
                break
            runs.append({"peaks": list(m.peaks), "resident": m.resident_bytes,
                         "tensor_peaks": list(m.tensor_peaks) if m.tensor_peaks else None,
                         "peak_op": m.peak_op,
                         "step_seconds": [round(s, 3) for s in m.step_seconds]})
            data["backend"], data["device"] = m.backend, m.device
            kept = {"series": entry["series"]} if entry and entry.get("series") else {}
            data["cases"][case.key] = {"batches": list(case.batches), "runs": runs, **kept}
            save(data, path, key=case.key)
            print(f"{case.key}: peaks {m.peaks} tensor peaks {m.tensor_peaks} "
                  f"({time.perf_counter() - start:.0f} s)",
                  flush=True)
    return data


def measure_series(only: str | None, holdout: bool, path: Path = DATA,
                   repeats: int = 1) -> dict:
    """Each case at its series_batches, one fresh child per batch (see memory_cases), until
    every batch has `repeats` measurements (the table takes their median)."""
    from cnnlab.calc.measure import measure_fresh
    from cnnlab.calc.memory_cases import series_batches, series_points

    data = load(path)
    order = {"holdout": 0, "random": 1, "preset": 2, "architecture": 3}
    chosen = cases(holdout=True) if holdout else cases()
    for case in sorted(chosen, key=lambda c: (order[c.group], c.name, c.dtype)):
        if only and only not in case.key:
            continue
        entry = data["cases"].get(case.key)
        if not entry or entry["batches"] != list(case.batches):  # new, or its pair moved
            entry = data["cases"][case.key] = {"batches": list(case.batches), "runs": []}
        # Passes over the batches, one measurement each, until each has `repeats`; a
        # failure (out of memory, a timeout) ends the case, not only this pass.
        todo = [batch for _ in range(repeats) for batch in series_batches(case)]
        for batch in todo:
            if len(series_points(entry).get(batch, ())) >= repeats:
                continue
            try:
                step = measure_fresh(case.input_shape, case.layers, batch=batch,
                                     dtype=case.dtype, timeout_s=1800)
            except MeasureError as error:
                print(f"{case.key} at {batch}: {error}", flush=True)
                break
            rows = entry.get("series") or []
            rows.append([batch, step["peak"], step["tensor_peak"]])
            entry["series"] = sorted(rows)
            save(data, path, key=case.key)
            print(f"{case.key} at {batch}: peak {step['peak']} tensors "
                  f"{step['tensor_peak']} ({step['seconds']:.1f} s step)", flush=True)
    return data


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fresh", action="store_true")
    parser.add_argument("--table", action="store_true")
    parser.add_argument("--only", help="measure only the cases whose key contains this")
    parser.add_argument("--repeats", type=int,
                        help="runs per case (two-batch), or measurements per batch (--series)")
    parser.add_argument("--series", action="store_true",
                        help="measure each case at its series_batches, a child per batch")
    parser.add_argument("--holdout", action="store_true", help="with --series: the hold-out")
    parser.add_argument("--data", type=Path, default=DATA,
                        help=f"the measurements file (default {DATA.relative_to(DATA.parents[2])})")
    args = parser.parse_args()
    if args.series:
        measure_series(args.only, args.holdout, args.data, args.repeats or 1)
        return 0
    if not args.table:
        measure_all(args.fresh, args.only, args.repeats, args.data)
    if args.data != DATA:
        print(f"measured into {args.data}; bench/memory_fit.py prints the table of {DATA}")
        return 0
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from memory_fit import summary, table

    text, worst = table()
    print(text)
    print(summary())
    print(f"worst={worst:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
