"""The measuring child process: a real training step measured, and every way it can fail
reported as one line while the calling process carries on."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from cnnlab.calc.analysis import analyze
from cnnlab.calc.grammar import parse_layer
from cnnlab.calc.measure import MeasureError, _failure, measure, measure_batches
from cnnlab.calc.presets import PRESETS
from cnnlab.calc.spec import LayerSpec
from tests import ROOT

TINY = [parse_layer(t) for t in ("conv:8:3:act=relu", "maxpool:2", "flatten", "dense:10")]


def test_a_small_network_is_measured_in_a_child_process():
    # 64x64 inputs: on a CPU, TensorFlow's statistics count only allocations of 256 KiB and
    # more (oneDNN's allocator hands smaller ones to malloc), so the maps must be that big.
    before = set(sys.modules)
    m = measure((64, 64, 3), TINY, batch=32)
    assert not {n for n in set(sys.modules) - before if n.split(".")[0] in ("tensorflow", "keras")}
    assert m.batches == (16, 32) and m.device == "CPU:0"
    assert m.backend.startswith("tensorflow 2.") and "keras 3." in m.backend
    # Each batch in a child of its own (fresh): the larger's allocator held the weights,
    # Adam's two slots and its batch before the step...
    # The dense kernel (31*31*8 x 10 floats) and Adam's two slots for it: 3 x 307,200
    # bytes; the conv kernel, the biases and the targets are under 256 KiB, uncounted.
    dense_kernel = analyze((64, 64, 3), TINY).layers[-1].params - 10
    images = 32 * 64 * 64 * 3 * 4
    assert m.resident_bytes >= 3 * 4 * dense_kernel + images
    # ...and the step adds at least the conv output it keeps for every sample.
    assert m.peaks[1] > m.peaks[0] and m.peaks[1] > m.resident_bytes
    assert m.per_sample_bytes >= 62 * 62 * 8 * 4
    assert m.peak_bytes == m.peaks[1]
    assert m.fixed_bytes + 32 * m.per_sample_bytes == pytest.approx(m.peaks[1])
    assert m.tensor_peaks is not None and m.tensor_peaks[1] <= m.peaks[1] * 1.05
    assert m.peak_op  # the op that reached the peak, from the allocator's trace


def test_each_batch_is_measured_in_a_child_of_its_own(monkeypatch):
    """A training run at a batch starts fresh; a second step in the same process finds the
    allocator's regions and the executor's cost estimates the first left."""
    import cnnlab.calc.measure as measuring

    asked = []

    def child(request, timeout_s):
        asked.append(request["batches"])
        steps = [{"batch": b, "peak": 1000 + 10 * b, "tensor_peak": 900 + 10 * b,
                  "peak_op": "op", "seconds": 0.1} for b in request["batches"]]
        return {"steps": steps, "resident": 500 + request["batches"][-1], "device": "CPU:0",
                "backend": "tf"}

    monkeypatch.setattr(measuring, "_run_child", child)
    m = measure((64, 64, 3), TINY, batch=32)
    assert asked == [[16], [32]]
    assert m.peaks == (1160, 1320) and m.per_sample_bytes == 10 and m.fixed_bytes == 1000
    assert m.resident_bytes == 532  # the larger batch's child
    asked.clear()
    measure((64, 64, 3), TINY, batch=32, fresh=False)
    assert asked == [[16, 32]]


def test_a_class_measuring_at_once_takes_turns(monkeypatch):
    """Sessions of one server pressing Measure together: one child at a time (the default
    CNNLAB_MEASURE_SLOTS), every measurement answered; one that gets no turn within its
    timeout says so in one line."""
    import threading
    import time

    import cnnlab.calc.measure as measuring

    lock = threading.Lock()
    running = most = 0

    def child(request, timeout_s):
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.2)
        with lock:
            running -= 1
        steps = [{"batch": b, "peak": 1000 + 10 * b, "tensor_peak": 900 + 10 * b,
                  "peak_op": "op", "seconds": 0.05} for b in request["batches"]]
        return {"steps": steps, "resident": 500, "device": "CPU:0", "backend": "tf"}

    monkeypatch.setattr(measuring, "_run_child", child)
    results: list = []
    threads = [threading.Thread(target=lambda: results.append(
        measure((64, 64, 3), TINY, batch=32, timeout_s=60))) for _ in range(6)]
    wall = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - wall
    assert most == 1 and len(results) == 6
    assert all(r.per_sample_bytes == 10 for r in results)
    # Six turns of two 0.2 s children: 2.4 s in all; each says its own 0.4 s, not its wait.
    assert wall >= 2.4 and all(r.seconds < 1.2 for r in results)
    measuring._turns.acquire()  # another session's measurement holds the turn
    try:
        with pytest.raises(MeasureError) as caught:
            measure((64, 64, 3), TINY, batch=32, timeout_s=0.2)
    finally:
        measuring._turns.release()
    assert caught.value.kind == "busy" and "\n" not in str(caught.value)
    assert str(caught.value).startswith("measure: other measurements kept this server busy")


def test_a_bad_spec_gives_the_calculators_one_line_error_without_a_child():
    with pytest.raises(MeasureError) as caught:
        measure((5, 5, 3), [LayerSpec("conv", filters=4, kernel=(7, 7))], batch=4,
                timeout_s=0.001)  # a child would time out: none is started
    assert caught.value.kind == "spec"
    assert str(caught.value) == "layer 1 (conv1): kernel 7x7 is larger than its 5x5 VALID input"


def test_the_child_itself_rejects_a_bad_spec_in_one_json_line():
    request = {"input": [5, 5, 3], "layers": ["conv:4:7"], "batches": [1, 2],
               "dtype": "float32", "optimizer": "adam", "accum_steps": 1}
    proc = subprocess.run([sys.executable, "-m", "cnnlab.calc.measure"], cwd=ROOT,
                          input=json.dumps(request), capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2
    assert json.loads(proc.stdout) == {
        "error": "spec", "message": "layer 1 (conv1): kernel 7x7 is larger than its 5x5 "
        "VALID input"}


@pytest.mark.slow
def test_running_out_of_memory_is_reported_as_such_and_the_caller_survives():
    shape, layers = PRESETS["seed exercise"]  # batch 16 needs about 400 MB
    with pytest.raises(MeasureError) as caught:
        measure(shape, layers, batch=16, memory_limit_bytes=50_000_000)
    assert caught.value.kind == "oom"
    message = str(caught.value)
    assert message.startswith("measure: out of memory") and "\n" not in message
    # The caller is intact and measures the next configuration.
    assert measure((64, 64, 3), TINY, batch=8).peaks[1] > 0


def test_an_environment_cap_reaches_the_child(monkeypatch):
    monkeypatch.setenv("CNNLAB_MEASURE_MAX_BYTES", "20000000")
    with pytest.raises(MeasureError) as caught:
        measure((64, 64, 3), [parse_layer("conv:64:3:1:same"), parse_layer("flatten"),
                              parse_layer("dense:10")], batch=256)
    assert caught.value.kind == "oom", str(caught.value)


def test_a_timeout_stops_the_child():
    with pytest.raises(MeasureError) as caught:
        measure((16, 16, 3), TINY, batch=4, timeout_s=0.5)
    assert caught.value.kind == "timeout"
    assert str(caught.value).startswith("measure: no result within 0.5 s")


@pytest.mark.parametrize("returncode, stderr, capped, kind, start", [
    (-signal.SIGKILL, "", None, "oom", "measure: out of memory (the child process was killed "
     "by SIGKILL)"),
    (-signal.SIGSEGV, "", 10**8, "oom", "measure: out of memory (the training step needed "
     "more than the 100 MB"),
    (-signal.SIGSEGV, "", None, "failed", "measure: the child process crashed (SIGSEGV)"),
    (1, "tensorflow.ResourceExhaustedError: OOM when allocating tensor", None, "oom",
     "measure: out of memory in the training step"),
    (1, "ImportError: no module named tensorflow\n", None, "failed",
     "measure: the child process failed (exit 1): ImportError: no module named tensorflow"),
])
def test_a_dead_child_is_one_line(returncode, stderr, capped, kind, start):
    error = _failure(returncode, stderr, capped)
    assert error.kind == kind and str(error).startswith(start) and "\n" not in str(error)


def test_measured_batches():
    assert measure_batches(1) == (1, 2)
    assert measure_batches(8) == (4, 8)
    assert measure_batches(9) == (5, 9)
    assert measure_batches(64, accum_steps=4) == (8, 16)


def test_tensorflow_stays_out_of_the_calling_process():
    code = ("import sys, cnnlab.calc.measure, cnnlab.calc.framework_memory, "
            "cnnlab.calc.memory_gap, cnnlab.calc.memory_cases; "
            "print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True, env=dict(os.environ)).stdout
    assert out.strip() == "False"
