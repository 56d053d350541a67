"""Measure one real training step of a calculator spec, in a child process.

`measure(input_shape, layers, batch=...)` starts `python -m cnnlab.calc.measure`, which
builds the spec as a Keras model (`keras_oracle.to_keras`), compiles it with the chosen
optimizer and a mean-squared-error loss against a random target of the output's shape
(the one loss every spec's output admits), and runs `train_on_batch` at two batch sizes,
each in a child of its own by default (`fresh`). For each batch it runs one step to trace
the graph and allocate the optimizer's slots, then
`tf.config.experimental.reset_memory_stats(device)` and a second step, and reads the
allocator's `peak` from `get_memory_info(device)`: the bytes TensorFlow's allocator held at
the worst moment of that step (device "GPU:0" when a GPU is visible, else "CPU:0").

Two peaks give a line, peak(b) = fixed + b * per_sample, as the calculator's models have.

Nothing of TensorFlow enters the calling process (a server stays small and a crash stays in
the child). Failures come back as `MeasureError` with one line: a bad spec is the
calculator's SpecError message (checked in the parent before anything starts); running out
of memory (MemoryError, ResourceExhaustedError, the child killed by a signal or by the cap
below) is `kind="oom"`; a child that runs past `timeout_s` is `kind="timeout"`.

Memory cap: after TensorFlow is imported and the model built, the child says so and the
parent kills it as soon as its resident memory has grown by more than `memory_limit_bytes`
(default: 80% of the machine's available memory; env `CNNLAB_MEASURE_MAX_BYTES`), so a step
too big for the machine ends in the child instead of swapping the server out. (An address-
space limit in the child was tried first: under it TensorFlow's op creation could spin at
100% CPU on a failed allocation for the whole timeout.)

Repeatability: ops run one at a time (inter-op parallelism 1; env CNNLAB_MEASURE_INTER_OP),
PYTHONHASHSEED is fixed and the data are made by TensorFlow; the allocator's peak still moves
by a few percent between processes (which op runs first, where free chunks lie). On a CPU the
statistics come from oneDNN's allocator (TF_ENABLE_ONEDNN_OPTS=1), which does not count
allocations under 256 KiB: measure at batches whose feature maps are bigger than that. The
allocator's trace (TensorFlow's profiler) also gives `tensor_peaks`, the peak of the bytes
the tensors requested, without the allocator's chunk rounding, and `peak_op`.

A shared server: measurements take turns, CNNLAB_MEASURE_SLOTS at a time (default 1) per
server process. Each child is a TensorFlow process of its own with a training step's memory;
a class pressing "Measure" together would otherwise start one each at once, every one
capped at 80% of the same free memory. Waiting counts toward `timeout_s`; a measurement that
gets no turn within it says so in one line (`kind="busy"`).
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from cnnlab.calc.analysis import analyze
from cnnlab.calc.grammar import format_layer, parse_layer
from cnnlab.calc.memory import DTYPES, OPTIMIZER_SLOTS
from cnnlab.calc.spec import LayerSpec, SpecError

MAX_BYTES_ENV = "CNNLAB_MEASURE_MAX_BYTES"
DEFAULT_TIMEOUT_S = 600.0
SLOTS_ENV = "CNNLAB_MEASURE_SLOTS"
_turns = threading.BoundedSemaphore(max(1, int(os.environ.get(SLOTS_ENV, "1") or 1)))
_OOM_HINTS = ("resourceexhausted", "resource exhausted", "oom when allocating", "memoryerror",
              "bad_alloc", "cannot allocate memory", "out of memory", "failed to allocate")


class MeasureError(RuntimeError):
    """A measurement that could not be made. `kind`: "spec", "oom", "timeout" or "failed";
    the message is one line meant for the user."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Measurement:
    """Allocator peaks of one training step at two batch sizes, and the line through them."""

    batches: tuple[int, int]
    peaks: tuple[int, int]  # allocator peak bytes at each batch
    peak_bytes: int  # at the batch asked for (the larger of the two unless it was 1)
    per_sample_bytes: float  # slope of the line through the two peaks
    fixed_bytes: float  # its intercept: the peak at batch 0
    resident_bytes: int  # allocator bytes held between steps at the larger batch (weights,
    # optimizer slots, the batch)
    step_seconds: tuple[float, float]  # the measured step at each batch
    seconds: float  # the whole measurement: the children's imports, builds, traces, steps
    device: str  # "CPU:0" or "GPU:0 (NVIDIA H100 ...)"
    backend: str  # "tensorflow 2.21.0, keras 3.15.1"
    dtype: str
    optimizer: str
    accum_steps: int
    loss: str = "mean squared error against a random target of the output's shape"
    # Peaks of the bytes the tensors requested (the allocator's trace, without its rounding)
    tensor_peaks: tuple[int, int] | None = None
    peak_op: str | None = None  # the op whose allocation reached the tensor peak

    @property
    def tensor_per_sample_bytes(self) -> float | None:
        if self.tensor_peaks is None:
            return None
        return (self.tensor_peaks[1] - self.tensor_peaks[0]) / (self.batches[1] - self.batches[0])

    def at(self, batch: int) -> float:
        """The measured line at `batch` (an extrapolation outside the measured batches)."""
        return self.fixed_bytes + batch * self.per_sample_bytes

    def max_batch(self, gpu_bytes: float) -> int:
        """The largest batch the measured line fits into `gpu_bytes`; 0 if none."""
        if self.per_sample_bytes <= 0:
            return 0
        room = gpu_bytes - self.fixed_bytes
        return max(0, int(room // self.per_sample_bytes))

    def to_json(self) -> dict:
        return {"peak_bytes": self.peak_bytes, "per_sample_bytes": round(self.per_sample_bytes),
                "fixed_bytes": round(self.fixed_bytes), "batches": list(self.batches),
                "peaks": list(self.peaks), "resident_bytes": self.resident_bytes,
                "step_seconds": [round(s, 3) for s in self.step_seconds],
                "seconds": round(self.seconds, 2), "device": self.device,
                "backend": self.backend, "dtype": self.dtype, "optimizer": self.optimizer,
                "accum_steps": self.accum_steps, "loss": self.loss,
                "tensor_peaks": list(self.tensor_peaks) if self.tensor_peaks else None,
                "tensor_per_sample_bytes": (round(self.tensor_per_sample_bytes)
                                            if self.tensor_peaks else None),
                "peak_op": self.peak_op}


def measure_batches(batch: int, accum_steps: int = 1) -> tuple[int, int]:
    """The two batch sizes measured for a configuration: half the micro-batch and the
    micro-batch itself (1 and 2 when it is 1)."""
    micro = -(-batch // accum_steps)
    return (1, 2) if micro < 2 else (-(-micro // 2), micro)


def default_memory_limit() -> int | None:
    """`CNNLAB_MEASURE_MAX_BYTES`, else 80% of MemAvailable (Linux), else no cap."""
    if text := os.environ.get(MAX_BYTES_ENV):
        return int(float(text))
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024 * 8 // 10
    except OSError:
        pass
    return None


def measure(input_shape: Sequence[int], layers: Sequence[LayerSpec], *, batch: int,
            dtype: str = "float32", optimizer: str = "adam", accum_steps: int = 1,
            batches: tuple[int, int] | None = None, timeout_s: float = DEFAULT_TIMEOUT_S,
            memory_limit_bytes: int | None = None, fresh: bool = True) -> Measurement:
    """One training step of `layers` at two batch sizes, each in a child process of its own
    (`fresh`, as a training run at that batch starts), or both in one child (`fresh=False`:
    the second step then finds the allocator's regions and the executor's cost estimates
    the first left, and its peak moves with them: the seed exercise at 25 and 50 in one
    child peaked at 497/676 MB and 770/924 MB in two runs, at 50 alone at 1,058-1,068 MB
    in three).

    `batches` defaults to `measure_batches(batch, accum_steps)`; `peak_bytes` is the peak
    at the larger. `timeout_s` is for the whole measurement. Raises MeasureError (one line)
    for a bad spec, out of memory, a timeout or any other failure of a child; never
    anything else.
    """
    try:
        stats = analyze(input_shape, layers, batch=batch, dtype=dtype, optimizer=optimizer,
                        accum_steps=accum_steps)
    except SpecError as error:
        raise MeasureError("spec", str(error)) from None
    pair = tuple(batches) if batches is not None else measure_batches(batch, accum_steps)
    if len(pair) != 2 or not all(isinstance(b, int) and b >= 1 for b in pair) \
            or pair[0] >= pair[1]:
        raise MeasureError("spec", f"batches: two increasing positive integers, got {pair!r}")
    limit = memory_limit_bytes if memory_limit_bytes is not None else default_memory_limit()
    request = _request(stats.input_shape, layers, list(pair), dtype, optimizer, accum_steps,
                       limit)
    start = time.perf_counter()
    if not _turns.acquire(timeout=timeout_s):
        raise MeasureError("busy", f"measure: other measurements kept this server busy for "
                           f"{timeout_s:g} s ({SLOTS_ENV}); try again in a minute")
    began = time.perf_counter()  # the measurement's own time, after its wait for a turn
    try:
        reply = _children(request, pair, fresh, timeout_s, start)
    finally:
        _turns.release()
    seconds = time.perf_counter() - began
    first, second = reply["steps"]
    (b1, p1), (b2, p2) = (first["batch"], first["peak"]), (second["batch"], second["peak"])
    slope = (p2 - p1) / (b2 - b1)
    tensor = (first["tensor_peak"], second["tensor_peak"])
    return Measurement(
        batches=(b1, b2), peaks=(p1, p2), peak_bytes=p2, per_sample_bytes=slope,
        fixed_bytes=p1 - b1 * slope, resident_bytes=reply["resident"],
        step_seconds=(first["seconds"], second["seconds"]), seconds=seconds,
        device=reply["device"], backend=reply["backend"], dtype=dtype, optimizer=optimizer,
        accum_steps=accum_steps, tensor_peaks=None if None in tensor else tensor,
        peak_op=second["peak_op"])


def _children(request: dict, pair: tuple[int, int], fresh: bool, timeout_s: float,
              start: float) -> dict:
    """The children's reply for both batches: a child per batch (`fresh`), or one for both;
    all within `timeout_s` of `start` (the wait for a turn included)."""
    replies = []
    for asked in ([[b] for b in pair] if fresh else [list(pair)]):
        left = timeout_s - (time.perf_counter() - start)
        if left <= 0:
            raise _timed_out(timeout_s)
        try:
            replies.append(_run_child({**request, "batches": asked}, left))
        except MeasureError as error:
            if error.kind == "timeout":  # the whole measurement's limit, not what was left
                raise _timed_out(timeout_s) from None
            raise
    return {**replies[-1], "steps": [step for r in replies for step in r["steps"]]}


def measure_fresh(input_shape: Sequence[int], layers: Sequence[LayerSpec], *, batch: int,
                  dtype: str = "float32", optimizer: str = "adam",
                  timeout_s: float = DEFAULT_TIMEOUT_S) -> dict:
    """One training step at one batch in a child of its own, as a fresh training run at
    that batch would take it: {"batch", "peak", "tensor_peak", "peak_op", "seconds"}.
    (A second step in the same process would find the allocator regions the first left:
    the BFC allocator grows in regions of 2 MiB x 2^k and hands a free chunk under twice a
    request over whole, so its peak would depend on that history; `measure(fresh=False)`.)"""
    try:
        analyze(input_shape, layers, batch=batch, dtype=dtype, optimizer=optimizer)
    except SpecError as error:
        raise MeasureError("spec", str(error)) from None
    request = _request(input_shape, layers, [batch], dtype, optimizer, 1,
                       default_memory_limit())
    return _run_child(request, timeout_s)["steps"][0]


def _request(input_shape: Sequence[int], layers: Sequence[LayerSpec], batches: list[int],
             dtype: str, optimizer: str, accum_steps: int, limit: int | None) -> dict:
    """What the child is asked to do, with the thread and warm-up settings of the
    environment (CNNLAB_MEASURE_INTER_OP, _INTRA_OP, _WARMUP)."""
    return {"input": list(input_shape), "layers": [format_layer(s) for s in layers],
            "batches": batches, "dtype": dtype, "optimizer": optimizer,
            "accum_steps": accum_steps, "memory_limit": limit,
            "inter_op_threads": int(os.environ.get("CNNLAB_MEASURE_INTER_OP", "1")),
            "intra_op_threads": int(os.environ.get("CNNLAB_MEASURE_INTRA_OP", "0")),
            "warmup": int(os.environ.get("CNNLAB_MEASURE_WARMUP", "1"))}


def _timed_out(timeout_s: float) -> MeasureError:
    return MeasureError("timeout", f"measure: no result within {timeout_s:g} s (the child "
                        "process was stopped); try a smaller batch")


def _run_child(request: dict, timeout_s: float) -> dict:
    """Run the child on `request`; its reply, or MeasureError (one line)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1", PYTHONHASHSEED="0",
               TF_ENABLE_ONEDNN_OPTS="1")  # oneDNN's CPU allocator keeps the statistics
    env.pop("TF_ONEDNN_USE_SYSTEM_ALLOCATOR", None)   # a server's setting (train.streaming)
    try:
        returncode, stdout, stderr = _spawn(request, env, timeout_s, request.get("memory_limit"))
    except subprocess.TimeoutExpired:
        raise _timed_out(timeout_s) from None
    except OSError as error:
        raise MeasureError("failed", f"measure: cannot start Python: {error}") from None
    reply = _last_json(stdout)
    if reply is not None and "error" in reply:
        raise MeasureError(reply["error"], f"measure: {reply['message']}")
    if returncode != 0 or reply is None or "steps" not in reply:
        capped = reply.get("limit") if reply and reply.get("progress") == "capped" else None
        raise _failure(returncode, stderr, capped)
    return reply


WATCH_EVERY_S = 0.01


def _spawn(request: dict, env: dict, timeout_s: float,
           limit: int | None) -> tuple[int, str, str]:
    """Run the child with `request`; (returncode, stdout, stderr). Once the child says it
    is capped (its model built), it is killed as soon as its resident memory has grown by
    more than `limit` bytes: the parent watches, so the child never runs into a failing
    allocation (TensorFlow can spin forever on one, measured with an address-space cap)."""
    import threading

    proc = subprocess.Popen([sys.executable, "-m", "cnnlab.calc.measure"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    out: list[str] = []
    err: list[str] = []
    readers = [threading.Thread(target=lambda f=f, b=b: b.extend(f), daemon=True)
               for f, b in ((proc.stdout, out), (proc.stderr, err))]
    for reader in readers:
        reader.start()
    proc.stdin.write(json.dumps(request))
    proc.stdin.close()
    deadline = time.monotonic() + timeout_s
    base: int | None = None
    try:
        while proc.poll() is None:
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(proc.args, timeout_s)
            if limit and base is None:
                # The child's own reading when it was capped (the parent may look late).
                capped = next((json.loads(line) for line in list(out)
                               if line.startswith('{"progress": "capped"')), None)
                base = capped.get("rss") if capped else None
            if limit and base is not None and (_rss_bytes(proc.pid) or 0) - base > limit:
                proc.kill()
                break
            time.sleep(WATCH_EVERY_S)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for reader in readers:
            reader.join(5)
    return proc.returncode, "".join(out), "".join(err)


def _rss_bytes(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))
    except (OSError, StopIteration, ValueError):
        return None


def _last_json(stdout: str) -> dict | None:
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                return None
    return None


def _failure(returncode: int, stderr: str, capped: int | None = None) -> MeasureError:
    """The one-line error for a child that died without a reply. `capped`: the memory cap
    the child had set before it died (a failed allocation under a cap can end in any
    signal: bad_alloc aborts, a null buffer segfaults)."""
    text = stderr.lower()
    if returncode < 0:
        import signal

        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        if capped is not None:
            return MeasureError("oom", f"measure: out of memory (the training step needed more "
                                f"than the {capped / 1e6:,.0f} MB it may use; the child "
                                f"process died with {name}); try a smaller batch")
        if -returncode == signal.SIGKILL or any(h in text for h in _OOM_HINTS):
            return MeasureError("oom", f"measure: out of memory (the child process was killed "
                                f"by {name}); try a smaller batch")
        return MeasureError("failed", f"measure: the child process crashed ({name})")
    if any(h in text for h in _OOM_HINTS):
        return MeasureError("oom", "measure: out of memory in the training step; try a "
                            "smaller batch")
    last = next((ln.strip() for ln in reversed(stderr.splitlines()) if ln.strip()), "")
    return MeasureError("failed", f"measure: the child process failed (exit {returncode}): "
                        f"{last[:200]}")


# ----------------------------------------------------------------------------- the child


def _reply(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def allocator_events(space) -> list[tuple[bool, dict]]:
    """The allocator's events in a profiler trace (an `xplane_pb2.XSpace`), in time order:
    (is an allocation, its stats: "addr", "requested_bytes", "allocation_bytes", "tf_op",
    "allocator_name", ...)."""
    events = []
    for plane in space.planes:
        names = {k: v.name for k, v in plane.event_metadata.items()}
        stats = {k: v.name for k, v in plane.stat_metadata.items()}
        for line in plane.lines:
            for event in line.events:
                kind = names.get(event.metadata_id)
                if kind not in ("MemoryAllocation", "MemoryDeallocation"):
                    continue
                values = {}
                for stat in event.stats:
                    key = stats.get(stat.metadata_id)
                    if stat.HasField("ref_value"):
                        values[key] = stats.get(stat.ref_value, "")
                    else:
                        values[key] = stat.int64_value or stat.uint64_value or stat.str_value
                when = line.timestamp_ns * 1000 + event.offset_ps
                events.append((when, kind == "MemoryAllocation", values))
    events.sort(key=lambda e: e[0])
    return [(allocation, values) for _, allocation, values in events]


class _Trace:
    """The allocator's own record of one step (TensorFlow's profiler, host tracer): every
    allocation with the bytes requested and the bytes the BFC allocator gave (a free chunk
    less than twice the request is handed over whole, which `peak` counts). Gives the peak
    of requested bytes (the tensors alone) and the op that reached it; (None, None) where the
    profiler or its protocol buffers are unavailable."""

    def __init__(self, tf) -> None:
        import tempfile

        self.tf = tf
        self.dir = tempfile.mkdtemp(prefix="cnnlab-measure-")
        self.ok = False

    def __enter__(self):
        try:
            options = self.tf.profiler.experimental.ProfilerOptions(host_tracer_level=2)
            self.tf.profiler.experimental.start(self.dir, options=options)
            self.ok = True
        except Exception:  # noqa: BLE001 - a profiler already running, or none built in
            self.ok = False
        return self

    def __exit__(self, *exc) -> None:
        if self.ok:
            self.tf.profiler.experimental.stop()

    def tensor_peak(self, resident: int) -> tuple[int | None, str | None]:
        import glob
        import shutil

        try:
            from tensorflow.tsl.profiler.protobuf import xplane_pb2

            files = glob.glob(os.path.join(self.dir, "**", "*.xplane.pb"), recursive=True)
            if not self.ok or not files:
                return None, None
            space = xplane_pb2.XSpace()
            with open(files[0], "rb") as f:
                space.ParseFromString(f.read())
        except Exception:  # noqa: BLE001
            return None, None
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
        events = allocator_events(space)
        live: dict[int, int] = {}
        level = peak = resident
        op = None
        for allocation, values in events:
            addr, size = values.get("addr"), int(values.get("requested_bytes") or 0)
            if allocation:
                live[addr] = size
                level += size
                if level > peak:
                    peak, op = level, values.get("tf_op")
            else:
                level -= live.pop(addr, size)
        return peak, op


def _child(request: dict) -> dict:
    """Build, compile, and measure; returns the reply (raises on failure)."""
    shape = tuple(request["input"])
    layers = [parse_layer(text) for text in request["layers"]]
    dtype, optimizer, accum = request["dtype"], request["optimizer"], request["accum_steps"]
    if dtype not in DTYPES or optimizer not in OPTIMIZER_SLOTS:
        raise SpecError(f"dtype/optimizer: unknown {dtype!r} / {optimizer!r}")
    analyze(shape, layers, dtype=dtype, optimizer=optimizer)

    import keras
    import tensorflow as tf

    from cnnlab.calc.keras_oracle import to_keras

    if request.get("inter_op_threads"):
        tf.config.threading.set_inter_op_parallelism_threads(int(request["inter_op_threads"]))
    if request.get("intra_op_threads"):
        tf.config.threading.set_intra_op_parallelism_threads(int(request["intra_op_threads"]))
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:  # allocate as needed (the peak statistic is the same either way)
        tf.config.experimental.set_memory_growth(gpu, True)
    device = "GPU:0" if gpus else "CPU:0"
    keras.config.set_dtype_policy(dtype)
    keras.utils.set_random_seed(0)
    model = to_keras(shape, layers)
    slots = {"sgd": {}, "momentum": {"momentum": 0.9}, "adam": {}}[optimizer]
    cls = keras.optimizers.Adam if optimizer == "adam" else keras.optimizers.SGD
    opt = cls(learning_rate=1e-3, **slots,
              **({"gradient_accumulation_steps": accum} if accum > 1 else {}))
    model.compile(optimizer=opt, loss="mse")
    if request.get("memory_limit"):
        # From here the parent watches this process's resident memory (see _run_child).
        _reply({"progress": "capped", "limit": int(request["memory_limit"]),
                "rss": _rss_bytes(os.getpid())})

    out_shape = tuple(model.output_shape[1:])
    steps = []
    resident = 0
    with tf.device(device):
        for batch in request["batches"]:
            # Made by TensorFlow, so both always live in its allocator (a tensor made
            # from numpy may alias numpy's buffer or not, depending on its alignment).
            x = tf.random.normal((batch, *shape), seed=1)
            y = tf.random.normal((batch, *out_shape), seed=2)
            for _ in range(int(request.get("warmup", 1))):
                model.train_on_batch(x, y)  # trace, build the optimizer's slots
            gc.collect()  # eager tensors of the warm-up freed now, not inside the step
            gc.disable()
            resident = tf.config.experimental.get_memory_info(device)["current"]
            tf.config.experimental.reset_memory_stats(device)
            trace = _Trace(tf)
            start = time.perf_counter()
            with trace:
                model.train_on_batch(x, y)
            seconds = time.perf_counter() - start
            gc.enable()
            peak = tf.config.experimental.get_memory_info(device)["peak"]
            tensor_peak, peak_op = trace.tensor_peak(resident)
            steps.append({"batch": batch, "peak": peak, "tensor_peak": tensor_peak,
                          "peak_op": peak_op, "seconds": seconds})
            del x, y
    name = device
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        name = f"GPU:0 ({details.get('device_name', 'GPU')})"
    return {"steps": steps, "resident": resident, "device": name,
            "backend": f"tensorflow {tf.__version__}, keras {keras.__version__}"}


def main() -> int:
    """The child: one JSON request on stdin, one JSON line on stdout."""
    try:
        request = json.loads(sys.stdin.read())
        _reply(_child(request))
        return 0
    except SpecError as error:
        _reply({"error": "spec", "message": str(error)})
        return 2
    except MemoryError:
        _reply({"error": "oom", "message": "out of memory (MemoryError) in the training "
                "step; try a smaller batch"})
        return 3
    except Exception as error:  # noqa: BLE001 - everything else is reported as one line
        text = f"{type(error).__name__}: {error}"
        if any(h in text.lower() for h in _OOM_HINTS):
            _reply({"error": "oom", "message": "out of memory in the training step "
                    f"({type(error).__name__}); try a smaller batch"})
            return 3
        first = text.strip().splitlines()[0] if text.strip() else type(error).__name__
        _reply({"error": "failed", "message": first[:300]})
        return 1


if __name__ == "__main__":
    sys.exit(main())

