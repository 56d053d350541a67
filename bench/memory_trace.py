"""Trace the warm-up step and the measured step of a memory case at one batch (a fresh
process): every event of the large-allocation allocator (BFC) with the bytes requested and
the bytes the allocator gave, and the allocator's peak of the second step. The evidence for
the BFC rounding in cnnlab.calc.framework_memory's `allocator_rounding`:

    PYTHONPATH=. python bench/memory_trace.py "random stack 9" float32 128

(random stack 9's 75.5 MB conv output and its gradient each take a whole 128 MiB region).
Writes /tmp/memtrace/t2_<case>_<dtype>_<batch>.json."""
import gc, glob, json, os, sys, tempfile
os.environ.update(TF_CPP_MIN_LOG_LEVEL="2", PYTHONHASHSEED="0", TF_ENABLE_ONEDNN_OPTS="1")
name, dtype, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
from cnnlab.calc.memory_cases import cases
case = next(c for c in cases() + cases(True) if c.name == name and c.dtype == dtype)
import keras, tensorflow as tf
from cnnlab.calc.keras_oracle import to_keras
tf.config.threading.set_inter_op_parallelism_threads(1)
keras.config.set_dtype_policy(dtype); keras.utils.set_random_seed(0)
model = to_keras(case.input_shape, case.layers)
model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
out_shape = tuple(model.output_shape[1:])
d = tempfile.mkdtemp()
with tf.device("CPU:0"):
    before = tf.config.experimental.get_memory_info("CPU:0")["current"]
    tf.profiler.experimental.start(d, options=tf.profiler.experimental.ProfilerOptions(host_tracer_level=2))
    x = tf.random.normal((batch, *case.input_shape), seed=1)
    y = tf.random.normal((batch, *out_shape), seed=2)
    model.train_on_batch(x, y); gc.collect(); gc.disable()
    resident = tf.config.experimental.get_memory_info("CPU:0")["current"]
    tf.config.experimental.reset_memory_stats("CPU:0")
    marker = tf.random.normal((300000,), seed=3)  # a 1.2 MB allocation marks the boundary
    del marker
    model.train_on_batch(x, y)
    peak = tf.config.experimental.get_memory_info("CPU:0")["peak"]
    tf.profiler.experimental.stop()
from tensorflow.tsl.profiler.protobuf import xplane_pb2
space = xplane_pb2.XSpace()
space.ParseFromString(open(glob.glob(d + "/**/*.xplane.pb", recursive=True)[0], "rb").read())
events = []
for plane in space.planes:
    names = {k: v.name for k, v in plane.event_metadata.items()}
    stats = {k: v.name for k, v in plane.stat_metadata.items()}
    for line in plane.lines:
        for ev in line.events:
            kind = names.get(ev.metadata_id)
            if kind not in ("MemoryAllocation", "MemoryDeallocation"): continue
            v = {}
            for s in ev.stats:
                key = stats.get(s.metadata_id)
                v[key] = stats.get(s.ref_value, "") if s.HasField("ref_value") else (s.int64_value or s.uint64_value or s.str_value or s.double_value)
            events.append((line.timestamp_ns * 1000 + ev.offset_ps, kind == "MemoryAllocation", v))
events.sort(key=lambda e: e[0])
out = {"before": before, "resident": resident, "peak": peak,
       "events": [(a, v.get("addr"), int(v.get("requested_bytes") or 0), int(v.get("allocation_bytes") or 0), v.get("tf_op"), v.get("allocator_name")) for _, a, v in events]}
os.makedirs("/tmp/memtrace", exist_ok=True)
json.dump(out, open(f"/tmp/memtrace/t2_{name.replace(' ','_')}_{dtype}_{batch}.json", "w"))
print(name, dtype, batch, "before", before, "resident", resident, "peak", peak, "events", len(events))
