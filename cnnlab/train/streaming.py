"""Where a training job meets Keras: the streaming callback, and Keras kept steady in Streamlit.

`streaming_callback(job)` is a Keras callback that hands every batch's and epoch's logs to
the job (`job.record_*`, under the job's lock) and sets `model.stop_training` once
`job.stop_requested`. It never calls Streamlit.

`keras_for_training()` wraps a job's build, fit and evaluation. Living inside Streamlit:
after EVERY script run (so every 0.5 s while a page polls a job), Streamlit calls
`keras.backend.clear_session()` and `gc.collect(2)`
(streamlit/runtime/scriptrunner/script_runner.py, `_clean_problem_modules` and
`runner.postScriptGC`). clear_session replaces Keras's thread-local state for *all*
threads (a running job would lose its dtype policy mid-build) and both collect garbage
over TensorFlow's ~450k objects: 0.3-1 s each time, holding the GIL, which starves the
training thread. So the first job freezes the objects that exist once TensorFlow is
imported (`gc.freeze()`: collections skip them; they live as long as the process anyway),
makes clear_session a no-op while a job is training, and drops its gc.collect() from
Streamlit's call otherwise. `settle_keras` runs wherever cnnlab imports Keras for a model.

Keras is imported only when a job trains.
"""

from __future__ import annotations

import functools
import gc
import math
import os
import sys
import threading
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, Protocol


class StreamedJob(Protocol):
    """What the callback needs of a job (cnnlab.train.jobs.TrainingJob)."""

    @property
    def stop_requested(self) -> bool: ...
    def record_train_began(self) -> None: ...
    def record_epoch_began(self, epoch: int) -> None: ...
    def record_batch(self, batch: int, mean_loss: float, metrics: dict) -> None: ...
    def record_epoch(self, epoch: int, logs: dict) -> None: ...


def streaming_callback(job: StreamedJob):
    """A keras.callbacks.Callback recording into `job` and stopping when `job.stop()` is called."""
    import keras

    class _Streaming(keras.callbacks.Callback):
        # Not async_safe: it must run on the training thread, in step with the model.

        def on_train_begin(self, logs=None):
            job.record_train_began()

        def on_epoch_begin(self, epoch, logs=None):
            job.record_epoch_began(epoch + 1)

        def on_train_batch_end(self, batch, logs=None):
            logs = logs or {}
            metrics = {k: float(v) for k, v in logs.items() if k != "loss" and _is_number(v)}
            job.record_batch(batch + 1, float(logs.get("loss", math.nan)), metrics)
            if job.stop_requested:
                self.model.stop_training = True

        def on_test_batch_end(self, batch, logs=None):
            # fit() still validates after a stopped epoch; cut that short too.
            if job.stop_requested:
                self.model.stop_evaluating = True

        def on_epoch_end(self, epoch, logs=None):
            job.record_epoch(epoch + 1, {k: float(v) for k, v in (logs or {}).items()
                                         if _is_number(v)})
            if job.stop_requested:
                self.model.stop_training = True

    return _Streaming()


def _is_number(v: Any) -> bool:
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return True


_KERAS_LOCK = threading.Lock()
_KERAS_SETTLED = False
_TRAINING = 0          # jobs inside build() or fit() right now (guarded by _KERAS_LOCK)


def _training_threads(delta: int) -> int:
    global _TRAINING
    with _KERAS_LOCK:
        _TRAINING += delta
        return _TRAINING


def settle_keras(keras) -> None:
    """Once per process, wherever cnnlab imports Keras: see the module docstring
    (Streamlit's post-run cleanup)."""
    global _KERAS_SETTLED
    with _KERAS_LOCK:
        if _KERAS_SETTLED:
            return
        _KERAS_SETTLED = True
        gc.freeze()
        original = keras.backend.clear_session

        def clear_session(*args, **kwargs):
            if _training_threads(0) > 0:
                return None   # a job is training: its thread-local Keras state must survive
            if not args and not kwargs:
                # Streamlit's call after every script run: reset Keras' state, but skip its
                # full gc.collect() (most of a page load's server CPU once TensorFlow is
                # loaded, measured with bench/load.py); Python's own GC still runs.
                return original(free_memory=False)
            return original(*args, **kwargs)

        clear_session.__doc__ = original.__doc__
        clear_session.__wrapped__ = original
        keras.backend.clear_session = clear_session


def release_memory() -> None:
    """After runs were let go: collect their models (Keras layers hold reference cycles, and
    an idle server may not run a full collection for a long time), resetting Keras' global
    state first when no job is building or training. The check and the reset happen under
    the lock a starting job takes, so none starts meanwhile."""
    keras = sys.modules.get("keras")
    with _KERAS_LOCK:
        if keras is not None and _KERAS_SETTLED and _TRAINING == 0:
            forget_traced_gradients()
            original = getattr(keras.backend.clear_session, "__wrapped__", None)
            if original is not None:
                original(free_memory=True)      # Keras' reset, then gc.collect()
                trim_heap()
                return
    gc.collect()
    trim_heap()


def forget_traced_gradients() -> int:
    """Let the graphs of finished runs go: TensorFlow keeps each one alive otherwise.

    Every trace of Keras' `train_step` reduces its results through the distribution
    strategy's `ReplicaContext.all_reduce`, whose `grad_wrapper` is a `tf.custom_gradient`;
    in graph mode that registers a gradient function under a new name ("CustomGradient-N")
    in TensorFlow's global gradient registry (tensorflow/python/ops/custom_gradient.py,
    `_graph_mode_decorator`; distribute/distribute_lib.py, `all_reduce`), and the function
    holds the traced graph's tensors: every run's training graph stayed in the server's
    memory for good (measured: about 15 MB a seed-CNN run, +466 MB after 30 runs). An entry
    is looked up only while its own graph is traced (a retrace registers a new one), so with
    no job building or training (the caller holds the lock jobs start under) those entries
    are dropped. Returns how many; 0 where TensorFlow's internals differ."""
    try:
        from tensorflow.python.framework import ops
    except ImportError:
        return 0
    registry = getattr(getattr(ops, "_gradient_registry", None), "_registry", None)
    if not isinstance(registry, dict):
        return 0
    stale = [name for name, entry in list(registry.items())
             if name.startswith("CustomGradient-") and _from_all_reduce(entry)]
    for name in stale:
        registry.pop(name, None)
    return len(stale)


def _from_all_reduce(entry: Any) -> bool:
    """Whether a registry entry is an `all_reduce` grad_wrapper's (see above)."""
    fn = entry.get("type") if isinstance(entry, dict) else None
    for cell in getattr(fn, "__closure__", None) or ():
        for inner in getattr(cell.cell_contents, "__closure__", None) or ():
            name = getattr(inner.cell_contents, "__qualname__", "")
            if "all_reduce" in name and "grad_wrapper" in name:
                return True
    return False


# What a finished run leaves behind, measured after 6 runs on 2 slots and release_memory()
# (the in-process test behind bench/load.py's memory figure): RSS +178 MB over the warm-up
# by default; +47 MB with both settings below, the same test loss; about 13% more CPU per run
# (the system allocator's page faults), the same wall time for one run alone (README).
SYSTEM_ALLOCATOR_ENV = "TF_ONEDNN_USE_SYSTEM_ALLOCATOR"
SERVER_MALLOC_ARENAS = 2
_M_ARENA_MAX = -8          # glibc malloc.h


def returnable_memory(env: MutableMapping[str, str] = os.environ) -> bool:
    """Settings for a server whose runs' memory must come back (issue 10); call before
    TensorFlow is imported (app.py does). The user's own settings win.

    - `TF_ONEDNN_USE_SYSTEM_ALLOCATOR=1`: TensorFlow's oneDNN CPU allocator (MklCPUAllocator,
      tensorflow/core/common_runtime/mkl_cpu_allocator.h) otherwise serves large tensors
      from a BFC allocator whose regions it never frees: about 250 MB stay mapped for the
      process's life after a few runs (mallinfo2's hblkhd). With it, they go to malloc.
    - glibc's malloc arenas capped at SERVER_MALLOC_ARENAS (`MALLOC_ARENA_MAX` unless set):
      each training thread otherwise gets an arena of its own, and a run's freed tensors
      leave them fragmented around the few small blocks still in use, pages malloc_trim
      cannot give back.
    True if the arena cap was set here (glibc only)."""
    env.setdefault(SYSTEM_ALLOCATOR_ENV, "1")
    if "MALLOC_ARENA_MAX" in env:
        return False
    try:
        import ctypes

        return bool(ctypes.CDLL("libc.so.6").mallopt(_M_ARENA_MAX, SERVER_MALLOC_ARENAS))
    except (OSError, AttributeError):
        return False


# app.py runs on every script run of every session: the settings are made once a process.
returnable_memory_once = functools.cache(returnable_memory)


def trim_heap() -> bool:
    """Hand the C heap's free pages back to the system (glibc `malloc_trim(0)`, every arena).
    Jobs train in threads, each with a malloc arena of its own; what a freed model leaves
    there stays in the server's RSS until trimmed. False where there is no glibc."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return bool(libc.malloc_trim(0))


_COLLECT_LOCK = threading.Lock()
_COLLECT_PENDING = False


def collect_soon(delay_s: float = 1.0) -> None:
    """`release_memory()` in a moment, in a thread of its own, once for any number of calls
    meanwhile (runs are often let go several at a time, e.g. a whole owner's)."""
    global _COLLECT_PENDING
    with _COLLECT_LOCK:
        if _COLLECT_PENDING:
            return
        _COLLECT_PENDING = True

    def collect() -> None:
        global _COLLECT_PENDING
        with _COLLECT_LOCK:
            _COLLECT_PENDING = False
        release_memory()

    timer = threading.Timer(delay_s, collect)
    timer.daemon = True
    timer.start()


@contextmanager
def keras_for_training() -> Iterator[Any]:
    """`with keras_for_training() as keras:` the job's work; Streamlit's clean-up cannot
    reset Keras meanwhile (see the module docstring)."""
    import keras

    settle_keras(keras)
    _training_threads(+1)
    try:
        yield keras
    finally:
        _training_threads(-1)
