"""Background training jobs for any Keras model and dataset, streamed to whoever polls them.

One mechanism for every page that trains (MNIST CNN, Inception v3 transfer learning):

    manager = JobManager()                 # one per server process (st.cache_resource)
    job = TrainingJob(build, seed=0, label="CNN, 10 epochs", config={...})
    manager.submit(owner_token, job)       # starts now, or queues (FIFO) when the limit is reached
    snap = job.snapshot()                  # thread-safe copy: curves, progress, ETA, images/s
    job.stop()                             # ends training within a batch; keeps the partial model

`build()` runs INSIDE the worker thread, after the dtype policy and the random seed are set
there (both are per-thread in Keras 3), and returns a `TrainSetup`: a compiled model and its
data. A Keras callback (`cnnlab.train.streaming`) feeds per-batch and per-epoch logs to the
job's `TrainingMeter` (progress, ETA, images/s) under a lock and obeys a stop Event; it never
calls Streamlit. Pages poll `snapshot()`.

Keras/TensorFlow are imported only inside the worker thread.
"""

from __future__ import annotations

import enum
import itertools
import math
import secrets
import threading
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from cnnlab.train.meter import BatchPoint, TrainingMeter
from cnnlab.train.streaming import keras_for_training, streaming_callback


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


FINISHED = (JobState.STOPPED, JobState.DONE, JobState.FAILED)
ACTIVE = (JobState.QUEUED, JobState.RUNNING, JobState.STOPPING)

# Seeding is process-global in TensorFlow (tf.random.set_seed, op-seed counter) and Python
# (`random`, used by Keras for initializer seeds). A job holds this lock from seeding until
# its first batch starts (model built, shuffling pipeline traced), so two jobs starting
# together cannot interleave their random draws: the same seed gives the same curve. A
# `seeds_itself` build takes it only around its random draws (`random_draws`), so loading
# data and extracting features never hold other jobs back.
_SEED_LOCK = threading.Lock()
# The job whose worker thread this is (see `current_job`).
_CURRENT = threading.local()


def seeds_itself(build: Callable) -> Callable:
    """Mark a `build()` that takes the seed lock itself, with `random_draws()`, around the
    code that draws random numbers. Its data loading, decoding and feature extraction then
    run outside the lock: no job waits on another's preparation (issue 10)."""
    build.seeds_itself = True
    return build


@contextmanager
def random_draws(offset: int = 0, *, hold: bool = False) -> Iterator[None]:
    """Inside a `seeds_itself` build(): the process-wide seed lock, with the job's seed
    (+ offset) set, around model construction. `hold=True` keeps the lock until the job's
    first batch (fit's input pipeline draws seeds too). Outside a job: nothing to lock."""
    job = current_job()
    if job is None:
        yield
        return
    job._take_seed_lock(offset)
    try:
        yield
    finally:
        if not hold:
            job._release_seed_lock()


def current_job() -> TrainingJob | None:
    """The job running in this thread: a `build()` asks it whether Stop was pressed while it
    prepares (on any backend: it runs inside a TrainingJob wherever it trains)."""
    return getattr(_CURRENT, "job", None)


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
class JobSnapshot:
    id: str
    label: str
    state: JobState
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
        return self.state in ACTIVE


_ids = itertools.count(1)


class TrainingJob:
    """One training run in its own thread: queued -> running -> stopped | done | failed.

    All public reads go through `snapshot()`; progress, ETA and images/s come from its
    `TrainingMeter`. The `JobManager` drives it with `start`, `cancel` and
    `set_queue_position`; the streaming callback with the `record_*` methods."""

    def __init__(self, build: Callable[[], TrainSetup], *, seed: int | None = None,
                 dtype_policy: str = "float32", label: str = "", config: Mapping | None = None,
                 max_batch_points: int = 20_000) -> None:
        # Unguessable: a page link names a run by its id (`?run=`), and only links that were
        # shared should let anyone else watch it.
        self.id = f"job-{next(_ids)}-{secrets.token_hex(4)}"
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
        # Guarded by _lock:
        self._state = JobState.QUEUED
        self._error: str | None = None
        self._queue_position: int | None = None
        self._meter = TrainingMeter(max_batch_points=max_batch_points)
        self._result: dict = {}
        self._info: dict = {}
        self.model = None               # the (partly) trained keras.Model once training began
        self.setup: TrainSetup | None = None
        self.owner: str | None = None
        # Results derived after training (test report, .keras bytes): cnnlab.train.runs.
        self.extras: dict[str, Any] = {}
        self._holds_seed_lock = False

    # ---- public API -------------------------------------------------------------------------
    @property
    def state(self) -> JobState:
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

    @property
    def stop_requested(self) -> bool:
        return self._stop_event.is_set()

    @property
    def build(self) -> Callable[[], TrainSetup]:
        """What this job trains: another backend (cnnlab.train.ray_backend) ships it to a
        worker and runs it there in a TrainingJob of its own."""
        return self._build

    def stop(self) -> None:
        """Ask the job to stop: a queued job is cancelled when its turn comes; a running one
        stops after the current batch (its partly trained model is kept)."""
        self._stop_event.set()
        with self._lock:
            if self._state == JobState.RUNNING:
                self._state = JobState.STOPPING

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job has finished; True when it has."""
        return self._done_event.wait(timeout)

    @property
    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def snapshot(self) -> JobSnapshot:
        with self._lock:
            m = self._meter.reading(training=self._state in (JobState.RUNNING, JobState.STOPPING),
                                    complete=self._state == JobState.DONE)
            return JobSnapshot(
                id=self.id, label=self.label, state=self._state, error=self._error,
                queue_position=self._queue_position, epoch=m.epoch, epochs=m.epochs,
                batch=m.batch, steps_per_epoch=m.steps_per_epoch, progress=m.progress,
                eta_s=m.eta_s, images_per_second=m.images_per_second, elapsed_s=m.elapsed_s,
                batches=m.batches, epochs_log=m.epochs_log, result=dict(self._result),
                info=dict(self._info), config=dict(self.config), seed=self.seed,
            )

    # ---- driven by the manager ----------------------------------------------------------------
    def set_queue_position(self, position: int | None) -> None:
        with self._lock:
            self._queue_position = position

    def start(self, on_finish: Callable[[TrainingJob], None]) -> None:
        """Start training in a new thread (or end at once if stopped while queued);
        `on_finish(job)` is called when it has finished."""
        self._on_finish = on_finish
        with self._lock:
            self._queue_position = None
            cancelled = self._stop_event.is_set()
            self._state = JobState.STOPPED if cancelled else JobState.RUNNING
        if cancelled:
            self._finish()
            return
        self._thread = threading.Thread(target=self._run, name=f"cnnlab-{self.id}", daemon=True)
        self._thread.start()

    def cancel(self) -> None:
        """End a job that never started (taken out of the queue): it is stopped, untrained."""
        self._stop_event.set()
        with self._lock:
            self._state = JobState.STOPPED
            self._queue_position = None
        self._done_event.set()

    # ---- the worker thread ------------------------------------------------------------------
    def _run(self) -> None:
        _CURRENT.job = self
        try:
            with keras_for_training() as keras:
                result = self._train(keras)
            with self._lock:
                if result is None:
                    self._state = JobState.STOPPED
                else:
                    self._result = result
                    self._state = JobState.DONE
        except Exception as exc:  # noqa: BLE001 - reported to the user, never raised
            traceback.print_exc()
            with self._lock:
                self._state = JobState.FAILED
                self._error = _one_line(exc)
        finally:
            self._release_seed_lock()
            if self.setup is not None:
                # Finished runs stay listed (compare runs): keep the model and `context`,
                # drop the training arrays (full MNIST as float32 is 170 MB a run).
                self.setup.x = self.setup.y = self.setup.validation_data = None
            self._finish()

    def _train(self, keras) -> dict | None:
        """Build and fit in this thread; the evaluation's result, or None when stopped."""
        # Both are per-thread in Keras 3, so they must be set here, not by the caller.
        keras.config.set_dtype_policy(self.dtype_policy)
        if not getattr(self._build, "seeds_itself", False):
            # The whole build under the lock (a build that does not say where it draws).
            self._take_seed_lock()
        setup = self._build()
        if not self._holds_seed_lock:
            self._take_seed_lock(reseed=False)   # until the first batch: fit draws seeds
        self.setup = setup
        self.model = setup.model
        n = _num_samples(setup.x)
        steps = setup.steps_per_epoch
        if steps is None and n is not None and setup.batch_size:
            steps = math.ceil(n / setup.batch_size)
        if steps is None:
            steps = _len_or_none(setup.x)
        with self._lock:
            self._meter.plan(setup.epochs, steps, setup.samples_per_epoch or n, setup.batch_size)
            self._info = dict(setup.info)
        callbacks = [streaming_callback(self), *setup.fit_kwargs.get("callbacks", [])]
        fit_kwargs = {k: v for k, v in setup.fit_kwargs.items() if k != "callbacks"}
        if self._stop_event.is_set():
            return None
        setup.model.fit(
            setup.x, setup.y, validation_data=setup.validation_data,
            epochs=setup.epochs, batch_size=setup.batch_size,
            steps_per_epoch=setup.steps_per_epoch, callbacks=callbacks, verbose=0,
            **fit_kwargs,
        )
        self._release_seed_lock()
        if self._stop_event.is_set():
            return None
        return dict(setup.evaluate(setup.model)) if setup.evaluate else {}

    def _take_seed_lock(self, offset: int = 0, reseed: bool = True) -> None:
        # Unseeded jobs take the lock too: their random draws would shift a seeded job's.
        if not self._holds_seed_lock:
            _SEED_LOCK.acquire()
            self._holds_seed_lock = True
        if reseed and self.seed is not None:
            import keras

            keras.utils.set_random_seed(int(self.seed) + offset)

    def _release_seed_lock(self) -> None:
        # Only the worker thread calls this: on the first batch, or when the run ends early.
        if self._holds_seed_lock:
            self._holds_seed_lock = False
            _SEED_LOCK.release()

    def _finish(self) -> None:
        with self._lock:
            self._meter.finished()
            self._queue_position = None
        self._done_event.set()
        if self._on_finish is not None:
            self._on_finish(self)

    def free(self) -> None:
        """Let go of the model, the data and whatever results hold on to (an evicted run)."""
        with self._lock:
            self.model = None
            self.setup = None
            self._result = {}
            self.extras.clear()

    # ---- called by the streaming callback (training thread) -----------------------------------
    def record_train_began(self) -> None:
        # The data pipeline exists now: its shuffling seeds are drawn. Let other jobs seed.
        self._release_seed_lock()
        with self._lock:
            self._meter.train_began()

    def record_epoch_began(self, epoch: int) -> None:
        with self._lock:
            self._meter.epoch_began(epoch)

    def record_batch(self, batch: int, mean_loss: float, metrics: dict) -> None:
        with self._lock:
            self._meter.batch_ended(batch, mean_loss, metrics)

    def record_epoch(self, epoch: int, logs: dict) -> None:
        with self._lock:
            # After Stop, the epoch's batches or its validation were cut short.
            self._meter.epoch_ended(epoch, logs, partial=self._stop_event.is_set())


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
