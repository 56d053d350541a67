"""Background training jobs for any Keras model and dataset, streamed to whoever polls them.

One mechanism for every page that trains (MNIST CNN, Inception v3 transfer learning):

    manager = JobManager()                 # one per server process (st.cache_resource)
    job = TrainingJob(build, seed=0, label="CNN, 10 epochs", config={...})
    manager.submit(owner_token, job)       # starts now, or queues (FIFO) when the limit is reached
    snap = job.snapshot()                  # thread-safe copy: curves, progress, ETA, images/s
    job.stop()                             # ends training within a batch; keeps the partial model

`build()` runs INSIDE the worker thread, after the dtype policy and the random seed are set
there (both are per-thread in Keras 3), and returns a `TrainSetup`: a compiled model and its
data. A Keras callback (`make_streaming_callback`) records per-batch and per-epoch metrics under a
lock and obeys a stop Event; it never calls Streamlit. Pages poll `snapshot()`.

Keras/TensorFlow are imported only inside the worker thread.

Living inside Streamlit: after EVERY script run (so every 0.5 s while a page polls a job),
Streamlit calls `keras.backend.clear_session()` and `gc.collect(2)`
(streamlit/runtime/scriptrunner/script_runner.py, `_clean_problem_modules` and
`runner.postScriptGC`). clear_session replaces Keras's thread-local state for *all*
threads (a running job would lose its dtype policy mid-build) and both collect garbage
over TensorFlow's ~450k objects: 0.3-1 s each time, holding the GIL, which starves the
training thread. So the first job (`_settle_keras`) freezes the objects that exist once
TensorFlow is imported (`gc.freeze()`: collections skip them; they live as long as the
process anyway) and makes clear_session a no-op while a job is training.
"""

from __future__ import annotations

import enum
import gc
import itertools
import math
import os
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any


class JobState(enum.StrEnum):
    """Where a job is in its life: queued -> running [-> stopping] -> stopped | done | failed."""

    QUEUED = "queued"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    DONE = "done"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in FINISHED


STATES = tuple(JobState)
FINISHED = (JobState.STOPPED, JobState.DONE, JobState.FAILED)
DEFAULT_MAX_JOBS = 2
# Owners keep their finished runs (for "compare runs"); older ones beyond this are dropped.
MAX_RUNS_PER_OWNER = 20

# Seeding is process-global in TensorFlow (tf.random.set_seed, op-seed counter) and Python
# (`random`, used by Keras for initializer seeds). A job holds this lock from seeding until
# its first batch starts (model built, shuffling pipeline traced), so two jobs starting
# together cannot interleave their random draws: the same seed gives the same curve.
_SEED_LOCK = threading.Lock()


class JobError(RuntimeError):
    """A request the job manager refuses (message is one line for the user)."""


@dataclass
class TrainSetup:
    """What `build()` returns: everything `model.fit` needs, plus an optional evaluation."""

    model: Any                                  # a compiled keras.Model
    x: Any                                      # arrays, tf.data.Dataset or keras PyDataset
    y: Any = None
    validation_data: Any = None                 # passed to fit as is
    epochs: int = 1
    batch_size: int | None = None               # None when x is already batched
    steps_per_epoch: int | None = None          # batches per epoch; inferred for arrays
    samples_per_epoch: int | None = None        # images per epoch (for images/s); inferred
    # Runs after a COMPLETE training (not after Stop), in the thread: e.g. test metrics.
    evaluate: Callable[[Any], Mapping[str, Any]] | None = None
    fit_kwargs: dict = field(default_factory=dict)   # class_weight, shuffle, ...
    info: dict = field(default_factory=dict)    # anything to show (data source, counts)
    context: dict = field(default_factory=dict)  # objects for later use (e.g. the test set)
    # x, y and validation_data are released when the job ends; model, info, context stay.


@dataclass(frozen=True)
class BatchPoint:
    step: int          # global batch index, from 1
    epoch: int         # from 1
    batch: int         # within the epoch, from 1
    loss: float        # the loss of this batch alone (derived from Keras's running mean)
    mean_loss: float   # Keras's running mean over the epoch so far
    metrics: dict      # other running-mean metrics from the logs (e.g. accuracy)
    time_s: float      # seconds since training started


@dataclass(frozen=True)
class JobSnapshot:
    id: str
    label: str
    state: str
    error: str | None
    queue_position: int | None       # 1 = next to start; None when not queued
    epoch: int                       # epochs started, from 1 (0 before the first)
    epochs: int
    batch: int                       # batches finished in the current epoch
    steps_per_epoch: int | None
    progress: float                  # 0..1 over the whole training
    eta_s: float | None
    images_per_second: float | None
    elapsed_s: float
    batches: tuple[BatchPoint, ...]
    epochs_log: tuple[dict, ...]     # per-epoch logs: epoch, loss, accuracy, val_* ..., partial
    result: dict
    info: dict
    config: dict
    seed: int | None

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    @property
    def active(self) -> bool:
        return self.state in ("queued", "running", "stopping")


def make_streaming_callback(job: TrainingJob):
    """A keras.callbacks.Callback recording into `job` and stopping when `job.stop()` is called."""
    import keras

    class _Streaming(keras.callbacks.Callback):
        # Not async_safe: it must run on the training thread, in step with the model.

        def __init__(self) -> None:
            super().__init__()
            self._prev_mean = 0.0
            self._prev_seen = 0

        def on_train_begin(self, logs=None):
            job._train_started()

        def on_epoch_begin(self, epoch, logs=None):
            self._prev_mean = 0.0
            self._prev_seen = 0
            job._epoch_began(epoch + 1)

        def on_train_batch_end(self, batch, logs=None):
            logs = logs or {}
            mean = float(logs.get("loss", math.nan))
            n_batch = job._batch_samples(batch)
            seen = self._prev_seen + n_batch
            # Keras logs the running mean weighted by batch size; recover this batch's loss.
            raw = (mean * seen - self._prev_mean * self._prev_seen) / n_batch if n_batch else mean
            self._prev_mean, self._prev_seen = mean, seen
            metrics = {k: float(v) for k, v in logs.items() if k != "loss" and _is_number(v)}
            job._record_batch(batch + 1, max(raw, 0.0) if math.isfinite(raw) else mean, mean,
                              metrics, n_batch)
            if job._stop_event.is_set():
                self.model.stop_training = True

        def on_test_batch_end(self, batch, logs=None):
            # fit() still validates after a stopped epoch; cut that short too.
            if job._stop_event.is_set():
                self.model.stop_evaluating = True

        def on_epoch_end(self, epoch, logs=None):
            job._record_epoch(epoch + 1, {k: float(v) for k, v in (logs or {}).items()
                                          if _is_number(v)})
            if job._stop_event.is_set():
                self.model.stop_training = True

    return _Streaming()


def _is_number(v: Any) -> bool:
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return True


_ids = itertools.count(1)


class TrainingJob:
    """One training run in its own thread. All public reads go through `snapshot()`."""

    def __init__(self, build: Callable[[], TrainSetup], *, seed: int | None = None,
                 dtype_policy: str = "float32", label: str = "", config: Mapping | None = None,
                 max_batch_points: int = 20_000) -> None:
        self.id = f"job-{next(_ids)}"
        self.label = label or self.id
        self.seed = seed
        self.dtype_policy = dtype_policy
        self.config = dict(config or {})
        self._build = build
        self._lock = threading.Lock()
        self._stop_event = threading.Event()
        self._done_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._on_finish: Callable[[TrainingJob], None] | None = None
        self._max_points = max_batch_points
        # Guarded by _lock:
        self._state = "queued"
        self._error: str | None = None
        self._queue_position: int | None = None
        self._batches: deque[BatchPoint] = deque(maxlen=max_batch_points)
        self._epochs_log: list[dict] = []
        self._epoch = 0
        self._batch = 0
        self._epochs = 0
        self._steps: int | None = None
        self._samples: int | None = None
        self._batch_size: int | None = None
        self._step = 0
        self._t_start: float | None = None
        self._t_end: float | None = None
        self._train_time = 0.0          # seconds spent in training batches (not validation)
        self._train_images = 0
        self._t_batch_start: float | None = None
        self._epoch_val_time: list[float] = []
        self._t_epoch_batches_end: float | None = None
        self._result: dict = {}
        self._info: dict = {}
        self.model = None               # the (partly) trained keras.Model once training began
        self.setup: TrainSetup | None = None
        self.owner: str | None = None
        # Results derived after training (analyses, the .keras bytes), cached by the pages.
        self.extras: dict[str, Any] = {}
        self._holds_seed_lock = False

    # ---- public API -------------------------------------------------------------------------
    @property
    def state(self) -> str:
        with self._lock:
            return self._state

    @property
    def error(self) -> str | None:
        with self._lock:
            return self._error

    @property
    def result(self) -> dict:
        with self._lock:
            return dict(self._result)

    def stop(self) -> None:
        """Ask the job to stop: a queued job is cancelled; a running one stops after the
        current batch (its partly trained model is kept)."""
        self._stop_event.set()
        with self._lock:
            if self._state == "running":
                self._state = "stopping"

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job has finished; True when it has."""
        return self._done_event.wait(timeout)

    @property
    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def snapshot(self) -> JobSnapshot:
        with self._lock:
            now = self._t_end or time.monotonic()
            elapsed = (now - self._t_start) if self._t_start else 0.0
            total = (self._steps or 0) * self._epochs
            done = self._step
            progress = min(done / total, 1.0) if total else 0.0
            if self._state == "done":
                progress = 1.0
            ips = (self._train_images / self._train_time) if self._train_time > 0 else None
            eta = None
            if self._state in ("running", "stopping") and done and total:
                per_batch = self._train_time / done
                val = (sum(self._epoch_val_time) / len(self._epoch_val_time)
                       if self._epoch_val_time else 0.0)
                epochs_left = self._epochs - len(self._epochs_log)
                eta = max(total - done, 0) * per_batch + max(epochs_left, 0) * val
            return JobSnapshot(
                id=self.id, label=self.label, state=self._state, error=self._error,
                queue_position=self._queue_position, epoch=self._epoch, epochs=self._epochs,
                batch=self._batch, steps_per_epoch=self._steps, progress=progress, eta_s=eta,
                images_per_second=ips, elapsed_s=elapsed, batches=tuple(self._batches),
                epochs_log=tuple(dict(e) for e in self._epochs_log), result=dict(self._result),
                info=dict(self._info), config=dict(self.config), seed=self.seed,
            )

    # ---- called by the manager ---------------------------------------------------------------
    def _set_queue_position(self, position: int | None) -> None:
        with self._lock:
            self._queue_position = position

    def _start(self, on_finish: Callable[[TrainingJob], None]) -> None:
        self._on_finish = on_finish
        with self._lock:
            self._queue_position = None
            if self._stop_event.is_set():   # cancelled while queued
                self._state = "stopped"
                cancelled = True
            else:
                self._state = "running"
                cancelled = False
        if cancelled:
            self._finish()
            return
        self._thread = threading.Thread(target=self._run, name=f"cnnlab-{self.id}", daemon=True)
        self._thread.start()

    def _cancel_queued(self) -> None:
        with self._lock:
            self._state = "stopped"
            self._queue_position = None
        self._done_event.set()

    # ---- the worker thread ------------------------------------------------------------------
    def _run(self) -> None:
        guarded = False
        try:
            import keras

            _settle_keras(keras)
            _training_threads(+1)
            guarded = True
            # Both are per-thread in Keras 3, so they must be set here, not by the caller.
            keras.config.set_dtype_policy(self.dtype_policy)
            # Unseeded jobs take the lock too: their random draws would shift a seeded job's.
            _SEED_LOCK.acquire()
            self._holds_seed_lock = True
            if self.seed is not None:
                keras.utils.set_random_seed(int(self.seed))
            setup = self._build()
            self.setup = setup
            self.model = setup.model
            n = _num_samples(setup.x)
            steps = setup.steps_per_epoch
            if steps is None and n is not None and setup.batch_size:
                steps = math.ceil(n / setup.batch_size)
            if steps is None:
                steps = _len_or_none(setup.x)
            with self._lock:
                self._epochs = int(setup.epochs)
                self._steps = steps
                self._samples = setup.samples_per_epoch or n
                self._batch_size = setup.batch_size
                self._info = dict(setup.info)
            callback = make_streaming_callback(self)
            callbacks = [callback, *setup.fit_kwargs.get("callbacks", [])]
            fit_kwargs = {k: v for k, v in setup.fit_kwargs.items() if k != "callbacks"}
            if self._stop_event.is_set():
                raise _Stopped
            setup.model.fit(
                setup.x, setup.y, validation_data=setup.validation_data,
                epochs=setup.epochs, batch_size=setup.batch_size,
                steps_per_epoch=setup.steps_per_epoch, callbacks=callbacks, verbose=0,
                **fit_kwargs,
            )
            self._release_seed_lock()
            if self._stop_event.is_set():
                with self._lock:
                    self._state = "stopped"
            else:
                result = dict(setup.evaluate(setup.model)) if setup.evaluate else {}
                with self._lock:
                    self._result = result
                    self._state = "done"
        except _Stopped:
            with self._lock:
                self._state = "stopped"
        except Exception as exc:  # noqa: BLE001 - reported to the user, never raised
            traceback.print_exc()
            with self._lock:
                self._state = "failed"
                self._error = _one_line(exc)
        finally:
            if guarded:
                _training_threads(-1)
            self._release_seed_lock()
            if self.setup is not None:
                # Finished runs stay listed (compare runs): keep the model and `context`,
                # drop the training arrays (full MNIST as float32 is 170 MB a run).
                self.setup.x = self.setup.y = self.setup.validation_data = None
            self._finish()

    def _release_seed_lock(self) -> None:
        # Only the worker thread calls this: on the first batch, or when the run ends early.
        if self._holds_seed_lock:
            self._holds_seed_lock = False
            _SEED_LOCK.release()

    def _finish(self) -> None:
        with self._lock:
            if self._t_start is not None and self._t_end is None:
                self._t_end = time.monotonic()
            self._queue_position = None
        self._done_event.set()
        if self._on_finish is not None:
            self._on_finish(self)

    # ---- called by the callback (training thread) ------------------------------------------
    def _train_started(self) -> None:
        # The data pipeline exists now: its shuffling seeds are drawn. Let other jobs seed.
        self._release_seed_lock()
        with self._lock:
            self._t_start = time.monotonic()
            self._t_batch_start = self._t_start

    def _epoch_began(self, epoch: int) -> None:
        now = time.monotonic()
        with self._lock:
            self._epoch = epoch
            self._batch = 0
            self._t_batch_start = now

    def _batch_samples(self, batch_index: int) -> int:
        with self._lock:
            bs, n, steps = self._batch_size, self._samples, self._steps
        if bs and n and steps and batch_index == steps - 1:
            return n - bs * (steps - 1)      # the last, smaller batch
        return bs or 1

    def _record_batch(self, batch: int, loss: float, mean_loss: float, metrics: dict,
                      n_images: int) -> None:
        now = time.monotonic()
        with self._lock:
            self._step += 1
            self._batch = batch
            if self._t_batch_start is not None:
                self._train_time += now - self._t_batch_start
            self._train_images += n_images
            self._t_batch_start = now
            self._batches.append(BatchPoint(self._step, self._epoch, batch, loss, mean_loss,
                                            metrics, now - (self._t_start or now)))

    def _record_epoch(self, epoch: int, logs: dict) -> None:
        now = time.monotonic()
        with self._lock:
            # After Stop, the epoch's batches or its validation were cut short.
            entry = {"epoch": epoch, **logs, "partial": self._stop_event.is_set()}
            self._epochs_log.append(entry)
            self._t_epoch_batches_end = self._t_batch_start
            if self._t_epoch_batches_end is not None:
                self._epoch_val_time.append(now - self._t_epoch_batches_end)
            self._t_batch_start = now


_KERAS_LOCK = threading.Lock()
_KERAS_SETTLED = False
_TRAINING = 0          # jobs inside build() or fit() right now (guarded by _KERAS_LOCK)


def _training_threads(delta: int) -> int:
    global _TRAINING
    with _KERAS_LOCK:
        _TRAINING += delta
        return _TRAINING


def _settle_keras(keras) -> None:
    """Once per process: see the module docstring (Streamlit's post-run cleanup)."""
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
            return original(*args, **kwargs)

        clear_session.__doc__ = original.__doc__
        clear_session.__wrapped__ = original
        keras.backend.clear_session = clear_session


class _Stopped(Exception):
    pass


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first}"[:300]


def _num_samples(x: Any) -> int | None:
    shape = getattr(x, "shape", None)
    if shape is not None and len(shape) > 0 and shape[0] is not None:
        return int(shape[0])
    if isinstance(x, (list, tuple)) and x and getattr(x[0], "shape", None) is not None:
        return int(x[0].shape[0])
    if isinstance(x, dict) and x:
        return _num_samples(next(iter(x.values())))
    return None


def _len_or_none(x: Any) -> int | None:
    try:
        n = len(x)
    except TypeError:
        return None
    # tf.data.Dataset raises TypeError for unknown/infinite cardinality.
    return int(n) if n >= 0 else None


def max_jobs_from_env() -> int:
    """CNNLAB_MAX_JOBS: how many jobs may train at once in this server (default 2)."""
    raw = os.environ.get("CNNLAB_MAX_JOBS", "").strip()
    if not raw:
        return DEFAULT_MAX_JOBS
    try:
        value = int(raw)
    except ValueError:
        return DEFAULT_MAX_JOBS
    return max(value, 1)


class JobManager:
    """All jobs of one server process: a concurrency limit, a FIFO queue, owners' runs.

    `owner` is an opaque per-browser token (kept in the URL's query string by the pages, so
    a refresh reattaches). An owner sees only its own jobs and has at most one active job.
    """

    def __init__(self, max_concurrent: int | None = None) -> None:
        self.max_concurrent = max_concurrent if max_concurrent is not None else max_jobs_from_env()
        self._lock = threading.RLock()
        self._running: list[TrainingJob] = []
        self._queue: deque[TrainingJob] = deque()
        self._by_owner: dict[str, list[TrainingJob]] = {}

    def submit(self, owner: str, job: TrainingJob) -> TrainingJob:
        """Start `job` for `owner` now, or queue it. Refuses a second active job per owner."""
        if not owner:
            raise JobError("a job needs an owner token")
        with self._lock:
            current = self.active(owner)
            if current is not None:
                raise JobError(f"you already have a training {current.state}; stop it first")
            job.owner = owner
            runs = self._by_owner.setdefault(owner, [])
            runs.append(job)
            # Forget the oldest finished runs beyond the cap (their models are freed).
            finished = [j for j in runs if j.state in FINISHED]
            for old in finished[: max(0, len(runs) - MAX_RUNS_PER_OWNER)]:
                runs.remove(old)
            if len(self._running) < self.max_concurrent:
                self._running.append(job)
                start = True
            else:
                self._queue.append(job)
                start = False
                self._renumber()
        if start:
            job._start(self._finished)
        return job

    def get(self, owner: str, job_id: str) -> TrainingJob | None:
        with self._lock:
            for job in self._by_owner.get(owner, []):
                if job.id == job_id:
                    return job
        return None

    def jobs_of(self, owner: str) -> list[TrainingJob]:
        """The owner's runs, oldest first."""
        with self._lock:
            return list(self._by_owner.get(owner, []))

    def active(self, owner: str) -> TrainingJob | None:
        """The owner's queued or running job, if any (what a page reattaches to)."""
        with self._lock:
            for job in self._by_owner.get(owner, []):
                if job.state in ("queued", "running", "stopping"):
                    return job
        return None

    def latest(self, owner: str) -> TrainingJob | None:
        with self._lock:
            runs = self._by_owner.get(owner, [])
            return runs[-1] if runs else None

    def stop(self, owner: str, job_id: str | None = None) -> bool:
        """Stop the owner's job (the active one by default). Only the owner can stop it."""
        job = self.get(owner, job_id) if job_id else self.active(owner)
        if job is None:
            return False
        with self._lock:
            if job in self._queue:
                self._queue.remove(job)
                self._renumber()
                job._stop_event.set()
                job._cancel_queued()
                return True
        job.stop()
        return True

    def forget(self, owner: str, job_id: str) -> None:
        """Drop a finished run (and its model) from the owner's list."""
        with self._lock:
            runs = self._by_owner.get(owner, [])
            for job in list(runs):
                if job.id == job_id and job.state in FINISHED:
                    runs.remove(job)

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {"running": len(self._running), "queued": len(self._queue),
                    "max_concurrent": self.max_concurrent}

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop everything (tests, server exit) and wait for the threads."""
        with self._lock:
            queued = list(self._queue)
            self._queue.clear()
            running = list(self._running)
        for job in queued:
            job._stop_event.set()
            job._cancel_queued()
        for job in running:
            job.stop()
        for job in running:
            job.wait(timeout)

    def _renumber(self) -> None:
        for i, queued in enumerate(self._queue, start=1):
            queued._set_queue_position(i)

    def _finished(self, job: TrainingJob) -> None:
        to_start: list[TrainingJob] = []
        with self._lock:
            if job in self._running:
                self._running.remove(job)
            while self._queue and len(self._running) < self.max_concurrent:
                nxt = self._queue.popleft()
                self._running.append(nxt)
                to_start.append(nxt)
            self._renumber()
        for nxt in to_start:
            nxt._start(self._finished)


_SHARED: JobManager | None = None
_SHARED_LOCK = threading.Lock()


def shared_manager() -> JobManager:
    """The one JobManager of this server process: every page that trains submits here, so
    CNNLAB_MAX_JOBS limits all training together."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = JobManager()
        return _SHARED


def new_owner_token() -> str:
    """An unguessable per-browser token (pages keep it in the URL's query string)."""
    import secrets

    return secrets.token_urlsafe(12)


OWNER_PARAM = "owner"          # the URL query parameter that carries the token
_OWNER_STATE_KEY = "train_owner"


def browser_owner(query_params: MutableMapping, session_state: MutableMapping,
                  page: str) -> str:
    """This browser's owner name for `page`'s jobs ("<token>:<page>").

    The token lives in the URL's query string, so a refresh (a new Streamlit session)
    reattaches to the running job, and in session_state, so a page switch that drops the
    query string keeps it. One token serves every page that trains.
    """
    token = query_params.get(OWNER_PARAM) or session_state.get(_OWNER_STATE_KEY)
    if not token:
        token = new_owner_token()
    session_state[_OWNER_STATE_KEY] = token
    if query_params.get(OWNER_PARAM) != token:
        query_params[OWNER_PARAM] = token
    return f"{token}:{page}"
