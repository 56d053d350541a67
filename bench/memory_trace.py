"""Trace the warm-up step and the measured step of a memory case at one batch (a fresh
process): every event of the large-allocation allocator (BFC) with the bytes requested and
the bytes the allocator gave, and the allocator's peak of the second step. The evidence for
the BFC allocator's rules that cnnlab.calc.allocator simulates:

    PYTHONPATH=. python bench/memory_trace.py "random stack 9" float32 128

(random stack 9's 75.5 MB conv output and its gradient each take a whole 128 MiB region),
and the order its conv gradients ran in (random stack 12 at 256: conv2 filter, conv2 input,
conv1 filter, conv1 input; framework_memory's `filter_first`).
Writes /tmp/memtrace/t2_<case>_<dtype>_<batch>.json. A diagnostic, not a benchmark
(`make bench` skips it).
"""

from __future__ import annotations

import argparse
import gc
import glob
import json
import os
import tempfile

os.environ.update(TF_CPP_MIN_LOG_LEVEL="2", PYTHONHASHSEED="0", TF_ENABLE_ONEDNN_OPTS="1")


def trace_steps(case, dtype: str, batch: int) -> tuple[dict, str]:
    """Two training steps of `case`, the second traced; (allocator figures, trace folder)."""
    import keras
    import tensorflow as tf

    from cnnlab.calc.keras_oracle import to_keras

    tf.config.threading.set_inter_op_parallelism_threads(1)
    keras.config.set_dtype_policy(dtype)
    keras.utils.set_random_seed(0)
    model = to_keras(case.input_shape, case.layers)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    out_shape = tuple(model.output_shape[1:])
    folder = tempfile.mkdtemp()
    options = tf.profiler.experimental.ProfilerOptions(host_tracer_level=3)
    with tf.device("CPU:0"):
        before = tf.config.experimental.get_memory_info("CPU:0")["current"]
        tf.profiler.experimental.start(folder, options=options)
        x = tf.random.normal((batch, *case.input_shape), seed=1)
        y = tf.random.normal((batch, *out_shape), seed=2)
        model.train_on_batch(x, y)
        gc.collect()
        gc.disable()
        resident = tf.config.experimental.get_memory_info("CPU:0")["current"]
        tf.config.experimental.reset_memory_stats("CPU:0")
        marker = tf.random.normal((300000,), seed=3)  # a 1.2 MB allocation marks the boundary
        del marker
        model.train_on_batch(x, y)
        peak = tf.config.experimental.get_memory_info("CPU:0")["peak"]
        tf.profiler.experimental.stop()
    return {"before": before, "resident": resident, "peak": peak}, folder


def _space(folder: str):
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    path = glob.glob(folder + "/**/*.xplane.pb", recursive=True)[0]
    with open(path, "rb") as f:
        space.ParseFromString(f.read())
    return space


def conv_gradient_order(space) -> list[str]:
    """The order the measured (second) step of a trace (`_space`) ran its conv gradients in:
    "conv3 filter", "conv3 input", ... (the evidence for framework_memory's `filter_first`:
    TensorFlow's executor picks the order at run time)."""
    from cnnlab.calc.memory_gap import op_layer

    seen: dict[str, int] = {}
    for plane in space.planes:
        names = {k: v.name for k, v in plane.event_metadata.items()}
        for line in plane.lines:
            for event in line.events:
                name = names.get(event.metadata_id, "").split(":")[0]
                if name.startswith("gradient_tape/") and "Conv2DBackprop" in name:
                    when = line.timestamp_ns * 1000 + event.offset_ps
                    seen[name] = max(seen.get(name, when), when)  # the measured step's
    order = []
    for name in sorted(seen, key=seen.get):
        order.append(f"{op_layer(name)} {'filter' if 'Filter' in name else 'input'}")
    return order


def traced_events(space) -> list[tuple]:
    """(is allocation, address, requested bytes, allocated bytes, op, allocator) in order,
    from a trace (`_space`)."""
    from cnnlab.calc.measure import allocator_events

    events = allocator_events(space)
    return [(a, v.get("addr"), int(v.get("requested_bytes") or 0),
             int(v.get("allocation_bytes") or 0), v.get("tf_op"), v.get("allocator_name"))
            for a, v in events]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("case", help='a case of cnnlab.calc.memory_cases, e.g. "random stack 9"')
    p.add_argument("dtype", choices=["float32", "mixed_float16"])
    p.add_argument("batch", type=int)
    args = p.parse_args()
    from cnnlab.calc.memory_cases import cases

    case = next((c for c in cases() + cases(True)
                 if c.name == args.case and c.dtype == args.dtype), None)
    if case is None:
        raise SystemExit(f"no memory case {args.case!r} in {args.dtype}")
    figures, folder = trace_steps(case, args.dtype, args.batch)
    space = _space(folder)  # read once: both listings come from it
    events = traced_events(space)
    os.makedirs("/tmp/memtrace", exist_ok=True)
    out = f"/tmp/memtrace/t2_{args.case.replace(' ', '_')}_{args.dtype}_{args.batch}.json"
    with open(out, "w") as f:
        json.dump({**figures, "events": events}, f)
    print(args.case, args.dtype, args.batch, figures, "events", len(events), "->", out)
    print("conv gradients in the order run:", ", ".join(conv_gradient_order(space)))


if __name__ == "__main__":
    main()
