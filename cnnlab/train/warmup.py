"""No waiting for the first point: the server prepares TensorFlow and the seed's model in
the background once it has started, so pressing Train does not start by importing them.

`start()` is called by app.py on every script run; the first call in a Streamlit server
starts one daemon thread (later calls return at once). After `DELAY_S` the thread, in small
steps, and before each one waiting while a page's script is running (so it never delays
Home or the Calculator; `os.nice` would lower the whole server), and inside each step
giving way to pages every few hundred Python calls (`_Polite`: importing TensorFlow is one
long step; measured, Calculator runs during the warm-up stay at their usual 60-150 ms):

1. imports TensorFlow, through `import keras` as every job does (the one long step: most
   of the 10-20 s a cold Train click waited);
2. imports Keras and settles it for Streamlit (`cnnlab.train.streaming.settle_keras`: the
   `clear_session()` Streamlit calls after every script run once Keras is imported skips its
   full garbage collection, and TensorFlow's objects are frozen out of the collector, so
   the warm-up does not make every page slower afterwards);
3. loads the seed's dataset (cached by cnnlab.train.datasets for every later run);
4. trains the seed's CNN for one epoch on a few hundred of those images through the same
   job runner, callbacks and snapshots as a real run (`job_for(..., extend=add_snapshots)`),
   outside the JobManager: Keras's lazily loaded modules, tf.data, autograph's conversion of
   `train_step`, the first traces and oneDNN's kernels are ready. Compiled functions belong
   to their model, so the traced model itself is kept (cnnlab.train.prepared): the first
   run of the seed's configuration trains it, with its own seed's initial weights, and
   does not trace again.

A real run that starts meanwhile needs the same work done: the warm-up steps aside (no
further step, its own brief run stopped at its next batch) rather than compete with it for
the CPU and the seed lock; imports in progress are shared (Python's import lock).

Off with CNNLAB_WARMUP=0; never in AppTest (Streamlit's test runtime is a mock) or outside
a server. `status()` tells how far it got; the server log gets one line when it is done.
"""

from __future__ import annotations

import os
import sys
import threading
import time

import numpy as np

DELAY_S = float(os.environ.get("CNNLAB_WARMUP_DELAY", "2"))
PAGE_WAIT_S = 20.0        # at most this long waiting for pages before each step
WARM_IMAGES = 512         # training images of the warm-up epoch
_LOCK = threading.Lock()
_STATE: dict = {"state": "off", "step": None, "seconds": {}, "error": None}
_THREAD: threading.Thread | None = None


def enabled() -> bool:
    return os.environ.get("CNNLAB_WARMUP", "1").strip().lower() not in ("0", "false", "no", "off")


def in_server() -> bool:
    """Whether this process is a real Streamlit server (AppTest installs a mock runtime)."""
    try:
        from streamlit.runtime import Runtime
    except ImportError:
        return False
    return Runtime.exists() and type(Runtime.instance()) is Runtime


def start(*, force: bool = False, delay_s: float | None = None) -> bool:
    """Start the warm-up once per process (a Streamlit server, unless `force`); True if this
    call started it."""
    global _THREAD
    if _THREAD is not None or not enabled() or not (force or in_server()):
        return False
    with _LOCK:
        if _THREAD is not None:
            return False
        _STATE.update(state="waiting", started=time.time())
        _THREAD = threading.Thread(target=_run, args=(DELAY_S if delay_s is None else delay_s,),
                                   name="cnnlab-warmup", daemon=True)
        _THREAD.start()
    return True


def status() -> dict:
    with _LOCK:
        return {**_STATE, "seconds": dict(_STATE["seconds"])}


def done() -> bool:
    return status()["state"] == "done"


def wait(timeout: float | None = None) -> bool:
    """Block until the warm-up has ended (done or failed); True if it has."""
    thread = _THREAD
    if thread is not None:
        thread.join(timeout)
    return status()["state"] in ("done", "skipped", "failed", "off")


def _page_threads() -> set[int]:
    """Idents of the threads running a page's script now (Streamlit starts one per run)."""
    return {t.ident for t in threading.enumerate()
            if t.name == "ScriptRunner.scriptThread" and t.is_alive() and t.ident is not None}


def _pages_running() -> bool:
    return bool(_page_threads())


class _Polite:
    """The warm-up's threads give way inside a step too (importing TensorFlow is one long
    step, tracing a model another): a trace function that, every `CHECK_EVERY` Python calls,
    sleeps while a page's script runs, so the GIL is the page's. A page that runs longer than
    `PATIENCE_S` (it may be waiting for a module this thread is importing) is not waited for
    any longer. Once a real training run has started, it waits for this work (the import it
    needs is this one): no more giving way."""

    CHECK_EVERY = 500
    PATIENCE_S = 1.0
    MAX_PAUSE_S = 1.0

    def __init__(self) -> None:
        self.calls = 0
        self.seen: dict[int, float] = {}    # page thread -> when this thread first waited for it
        self.urgent = False                 # a real run waits for this thread's work

    def __call__(self, frame, event, arg):
        self.calls += 1
        if self.calls % self.CHECK_EVERY == 0 and not self.urgent:
            self.urgent = _real_run_training(own=threading.current_thread().name)
            if self.urgent:
                sys.settrace(None)      # full speed, without this function's own cost
            else:
                self.give_way()
        return None     # no line tracing

    def give_way(self) -> None:
        deadline = time.monotonic() + self.MAX_PAUSE_S
        while True:
            now = time.monotonic()
            running = _page_threads()
            self.seen = {i: t for i, t in self.seen.items() if i in running}
            if not any(now - self.seen.setdefault(i, now) < self.PATIENCE_S for i in running) \
                    or now > deadline:
                return
            time.sleep(0.002)


def be_polite() -> None:
    """Make the calling thread give way to pages' scripts (see `_Polite`)."""
    sys.settrace(_Polite())


def _yield_to_pages(limit_s: float = PAGE_WAIT_S) -> None:
    """Sleep a moment, then until no page's script runs (at most `limit_s`)."""
    time.sleep(0.05)
    deadline = time.monotonic() + limit_s
    while _pages_running() and time.monotonic() < deadline:
        time.sleep(0.05)


class _StepAside(Exception):
    """A real training run started: it does the rest itself."""


def _real_run_training(own: str | None = None) -> bool:
    """Whether a training job's thread (cnnlab.train.jobs: "cnnlab-job-...") other than
    `own` is alive in this process."""
    return any(t.name.startswith("cnnlab-job-") and t.name != own and t.is_alive()
               for t in threading.enumerate())


def _step(name: str, work) -> None:
    _yield_to_pages()
    if _real_run_training():
        raise _StepAside
    with _LOCK:
        _STATE.update(state="running", step=name)
    t0 = time.perf_counter()
    work()
    with _LOCK:
        _STATE["seconds"][name] = round(time.perf_counter() - t0, 2)


def _run(delay_s: float) -> None:
    be_polite()
    t0 = time.monotonic()
    time.sleep(delay_s)
    found: dict = {}
    try:
        # Through `import keras`, as every other importer in cnnlab: a thread that imports
        # TensorFlow's package first while another imports Keras can deadlock on their
        # module locks (Python raises _DeadlockError in one of them).
        _step("tensorflow", lambda: __import__("keras"))
        _step("keras", _settle_keras)
        _step("data", lambda: found.update(dataset=_seed_dataset()))
        _step("seed model", lambda: _train_briefly(found["dataset"]))
        with _LOCK:
            _STATE.update(state="done", step=None, total_s=round(time.monotonic() - t0, 2))
        print(f"cnnlab warm-up: done in {time.monotonic() - t0:.1f} s {status()['seconds']}",
              file=sys.stderr, flush=True)
    except _StepAside:
        with _LOCK:
            _STATE.update(state="skipped", total_s=round(time.monotonic() - t0, 2))
        print(f"cnnlab warm-up: stepped aside after {time.monotonic() - t0:.1f} s, a training "
              f"run started {status()['seconds']}", file=sys.stderr, flush=True)
    except Exception as exc:  # noqa: BLE001 - a failed warm-up only means a colder first run
        with _LOCK:
            _STATE.update(state="failed", error=f"{type(exc).__name__}: {exc}"[:300])
        print(f"cnnlab warm-up: failed ({type(exc).__name__}: {exc})"[:300], file=sys.stderr,
              flush=True)


def _seed_dataset():
    from cnnlab.train.config import TrainConfig
    from cnnlab.train.datasets import load_dataset

    return load_dataset(TrainConfig().dataset)


def _settle_keras() -> None:
    import keras

    from cnnlab.train.streaming import settle_keras

    settle_keras(keras)


def _train_briefly(dataset) -> None:
    """One epoch of the seed's CNN on a few hundred images, as a real run trains."""
    from cnnlab.train import prepared
    from cnnlab.train.config import TrainConfig
    from cnnlab.train.datasets import Dataset
    from cnnlab.train.jobs import JobState
    from cnnlab.train.model import job_for
    from cnnlab.train.snapshots import add_snapshots

    # The first images of each class (a warm-up epoch of a few batches, every class seen).
    per_class = WARM_IMAGES // len(dataset.class_names)
    train = np.concatenate([np.flatnonzero(dataset.y_train == c)[:per_class]
                            for c in range(len(dataset.class_names))])
    test = np.arange(min(len(dataset.y_test), 128))
    tiny = Dataset(dataset.name, dataset.x_train[train], dataset.y_train[train],
                   dataset.x_test[test], dataset.y_test[test], dataset.source,
                   dataset.source_kind, dataset.class_names)
    state: list = []

    def extend(setup) -> None:     # in the job's own thread: polite there too
        be_polite()
        add_snapshots(setup)
        state[:] = prepared.optimizer_state(setup.model)   # before any step

    config = TrainConfig(epochs=1)
    job = job_for(config, tiny, extend=extend)
    job.start(on_finish=lambda _job: None)
    while not job.wait(0.1):
        if _real_run_training(own=f"cnnlab-{job.id}"):
            job.stop()      # at its next batch; the seed lock is free from its first one
    if _real_run_training(own=f"cnnlab-{job.id}"):
        job.free()
        raise _StepAside
    if job.state != JobState.DONE:
        raise RuntimeError(job.error or f"the warm-up run ended {job.state}")
    prepared.keep(config, job.model, state)   # traced: the first seed run trains this one
    job.free()
