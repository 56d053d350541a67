"""Training-step memory on a GPU: measured beside the framework model and the textbook count.

For every preset and architecture (cnnlab.calc.memory_cases, float32 and mixed_float16) it
measures one training step at two batch sizes and prints, per network, the per-sample slope
measured / framework model / textbook, and the peak at the larger batch. The framework model
is fitted on TensorFlow on a CPU: this bench says how far it is on a GPU (do not refit it to
the GPU; report what you see).

    PYTHONPATH=. python bench/gpu_memory.py                       # TensorFlow on the GPU
    PYTHONPATH=. KERAS_BACKEND=jax python bench/gpu_memory.py     # Keras 3 on JAX
    PYTHONPATH=. python bench/gpu_memory.py --only ResNet --scale 4

TensorFlow: `cnnlab.calc.measure.measure` (a child process per network; the allocator's
`peak` of "GPU:0" after `reset_memory_stats`). JAX: a child process per point (JAX has no
reset), `jax.devices()[0].memory_stats()["peak_bytes_in_use"]` after two steps, with
XLA_PYTHON_CLIENT_PREALLOCATE=false. Batches are the CPU fit's pairs times --scale
(default 4: a GPU holds more). Last line: the worst framework/measured slope ratio
(`ratio=`, 1.00 is exact). This machine has no GPU: written for the device machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from cnnlab.calc.analysis import analyze
from cnnlab.calc.framework_memory import framework_estimate
from cnnlab.calc.grammar import format_layer
from cnnlab.calc.measure import MeasureError, measure
from cnnlab.calc.memory_cases import cases

JAX_CHILD = r"""
import json, os, sys
os.environ["KERAS_BACKEND"] = "jax"
os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
import jax, keras, numpy as np
from cnnlab.calc.grammar import parse_layer
from cnnlab.calc.keras_oracle import to_keras
req = json.loads(sys.stdin.read())
keras.config.set_dtype_policy(req["dtype"])
model = to_keras(tuple(req["input"]), [parse_layer(t) for t in req["layers"]])
model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
b = req["batch"]
rng = np.random.default_rng(0)
x = rng.standard_normal((b, *req["input"]), dtype=np.float32)
y = rng.standard_normal((b, *model.output_shape[1:]), dtype=np.float32)
model.train_on_batch(x, y)
model.train_on_batch(x, y)
stats = jax.devices()[0].memory_stats() or {}
print(json.dumps({"peak": stats.get("peak_bytes_in_use", 0),
                  "device": str(jax.devices()[0])}))
"""


def jax_point(case, batch: int, timeout: float) -> tuple[int, str]:
    request = {"input": list(case.input_shape), "layers": [format_layer(s) for s in case.layers],
               "dtype": case.dtype, "batch": batch}
    proc = subprocess.run([sys.executable, "-c", JAX_CHILD], input=json.dumps(request),
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        raise MeasureError("failed", f"jax child: {last[:200]}")
    reply = json.loads(proc.stdout.strip().splitlines()[-1])
    return int(reply["peak"]), reply["device"]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", help="cases whose key contains this")
    parser.add_argument("--scale", type=int, default=4, help="multiply the CPU batch pairs")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--random", action="store_true", help="also the random stacks")
    args = parser.parse_args()
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    worst = 1.0
    print(f"backend={backend}")
    print(f"{'network':32s} {'batches':>9s} {'measured MB/sample':>19s} {'framework':>10s} "
          f"{'textbook':>9s} {'peak MB':>9s} {'fw peak':>8s} {'tb peak':>8s}")
    for case in cases():
        if case.group == "random" and not args.random:
            continue
        if args.only and args.only not in case.key:
            continue
        b1, b2 = (b * args.scale for b in case.batches)
        start = time.perf_counter()
        try:
            if backend == "jax":
                (p1, device), (p2, _) = (jax_point(case, b, args.timeout) for b in (b1, b2))
            else:
                m = measure(case.input_shape, case.layers, batch=b2, batches=(b1, b2),
                            dtype=case.dtype, timeout_s=args.timeout)
                (p1, p2), device = m.peaks, m.device
        except MeasureError as error:
            print(f"{case.key:32s} {b1}/{b2}: {error}", flush=True)
            continue
        slope = (p2 - p1) / (b2 - b1)
        fw = framework_estimate(case.input_shape, case.layers, batch=b2, dtype=case.dtype)
        tb = analyze(case.input_shape, case.layers, batch=b2, dtype=case.dtype).memory
        fw_slope = fw.slope(b1, b2)
        ratio = fw_slope / slope if slope > 0 else float("inf")
        worst = ratio if abs(ratio - 1) > abs(worst - 1) else worst
        print(f"{case.key:32s} {b1:>4d}/{b2:<4d} {slope / 1e6:19.2f} {ratio:9.2f}x "
              f"{tb.per_sample_bytes / slope:8.2f}x {p2 / 1e6:9.1f} "
              f"{fw.at(b2) / p2:7.2f}x {tb.training_bytes / p2:7.2f}x  "
              f"({device}, {time.perf_counter() - start:.0f} s)", flush=True)
    print("columns: framework and textbook as multiples of the measured figure")
    print(f"ratio={worst:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

