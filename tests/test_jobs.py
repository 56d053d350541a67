"""The training-job runner: metrics, stop, reattach, isolation, queueing, reproducibility.

Tiny model (a 4-filter conv on 8x8 images) and small data, so each run takes a second.
Tests taking `manager` or `make_manager` run on both backends: threads of this process and
a local Ray cluster (tests/ray_fixtures.py).
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from cnnlab.train.jobs import JobError, TrainingJob, TrainSetup
from cnnlab.train.manager import JobManager, max_jobs_from_env

RNG = np.random.default_rng(0)
X = RNG.random((512, 8, 8, 1), dtype=np.float32)
Y = (X.mean(axis=(1, 2, 3)) > 0.5).astype("int64")


def tiny_build(epochs: int = 1, n: int = 512, batch_size: int = 32, evaluate: bool = True):
    def build() -> TrainSetup:
        import keras

        model = keras.Sequential([
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.Dropout(0.2),
            keras.layers.Flatten(),
            keras.layers.Dense(2, activation="softmax"),
        ])
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        return TrainSetup(
            model, X[:n], Y[:n], validation_data=(X[:64], Y[:64]), epochs=epochs,
            batch_size=batch_size, info={"source": "random test images"},
            evaluate=(lambda m: dict(zip(("loss", "accuracy"),
                                         m.evaluate(X, Y, verbose=0), strict=True)))
            if evaluate else None,
        )
    return build


def slow_build():
    """Many epochs of batch size 1: runs far longer than any test waits."""
    return tiny_build(epochs=1000, n=512, batch_size=1, evaluate=False)


def wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture
def manager(make_manager):
    return make_manager(2)


def test_metrics_are_recorded(manager):
    job = manager.submit("alice", TrainingJob(tiny_build(epochs=2), seed=0, label="tiny"))
    assert job.wait(120)
    snap = job.snapshot()
    assert snap.state == "done", snap.error
    assert snap.steps_per_epoch == 16 and snap.epochs == 2
    assert len(snap.batches) == 32
    assert [b.step for b in snap.batches] == list(range(1, 33))
    assert {b.epoch for b in snap.batches} == {1, 2}
    assert all(np.isfinite(b.loss) and b.loss >= 0 for b in snap.batches)
    assert "accuracy" in snap.batches[-1].metrics
    # Keras's epoch loss is the mean of the per-batch losses we derived.
    epoch1 = [b.loss for b in snap.batches if b.epoch == 1]
    assert np.mean(epoch1) == pytest.approx(snap.epochs_log[0]["loss"], rel=1e-3)
    assert [e["epoch"] for e in snap.epochs_log] == [1, 2]
    assert {"val_loss", "val_accuracy", "loss", "accuracy"} <= set(snap.epochs_log[0])
    assert snap.progress == 1.0
    assert snap.images_per_second and snap.images_per_second > 0
    assert set(snap.result) == {"loss", "accuracy"}
    assert snap.info == {"source": "random test images"}
    assert job.model is not None and job.model.count_params() > 0


def test_stop_ends_training_at_once_and_keeps_partial_model(manager):
    """Stop ends the run at its next batch. Counted in batches, not seconds (a loaded CI
    machine, Ray's streaming): the run ends within two epochs of the Stop (512 batches an
    epoch), where a missed Stop would go on for 1,000 epochs."""
    job = manager.submit("alice", TrainingJob(slow_build(), seed=0))
    wait_for(lambda: len(job.snapshot().batches) >= 20)
    job.stop()
    at_stop = job.snapshot().batches[-1].step
    assert job.wait(60), "training did not stop"
    snap = job.snapshot()
    assert snap.state == "stopped"
    assert 20 <= snap.batches[-1].step < at_stop + 2 * 512
    assert snap.result == {}     # no evaluation after Stop
    # The partly trained model is kept and usable.
    probs = job.model.predict(X[:4], verbose=0)
    assert probs.shape == (4, 2)
    assert not job.is_alive


def test_reattach_returns_the_running_job_and_refuses_a_duplicate(manager):
    job = manager.submit("alice", TrainingJob(slow_build()))
    # A refreshed page knows only the owner token: it finds the same job object.
    assert manager.active("alice") is job
    assert manager.get("alice", job.id) is job
    with pytest.raises(JobError, match="already have a training"):
        manager.submit("alice", TrainingJob(slow_build()))
    wait_for(lambda: job.state == "running")       # Ray: once a worker has it
    assert manager.counts()["running"] == 1
    manager.stop("alice")
    assert job.wait(60)     # it ends (how soon: test_stop_ends_training_at_once..., in batches)
    assert manager.active("alice") is None
    assert manager.latest("alice") is job


def test_two_owners_are_isolated(manager):
    a = manager.submit("alice", TrainingJob(slow_build()))
    b = manager.submit("bob", TrainingJob(slow_build()))
    assert manager.get("alice", b.id) is None and manager.get("bob", a.id) is None
    assert manager.jobs_of("alice") == [a] and manager.jobs_of("bob") == [b]
    assert manager.stop("alice", b.id) is False      # alice cannot stop bob's job
    wait_for(lambda: len(b.snapshot().batches) > 0 and len(a.snapshot().batches) > 0)
    manager.stop("alice")
    assert a.wait(60)       # it ends (how soon is counted in batches elsewhere)
    assert b.state == "running"
    n = len(b.snapshot().batches)
    wait_for(lambda: len(b.snapshot().batches) > n)   # bob keeps training
    manager.stop("bob")
    assert b.wait(60)


def test_queue_is_fifo_with_positions(make_manager):
    manager = make_manager(1)
    try:
        first = manager.submit("a", TrainingJob(slow_build()))
        wait_for(lambda: first.state == "running")      # Ray: once a worker has it
        second = manager.submit("b", TrainingJob(tiny_build()))
        third = manager.submit("c", TrainingJob(tiny_build()))
        assert first.state == "running"
        assert (second.state, second.snapshot().queue_position) == ("queued", 1)
        assert (third.state, third.snapshot().queue_position) == ("queued", 2)
        assert manager.counts() == {"running": 1, "queued": 2, "max_concurrent": 1}
        # Cancelling a queued job moves the next one up; it never trains.
        manager.stop("b")
        assert second.state == "stopped" and second.snapshot().batches == ()
        assert third.snapshot().queue_position == 1
        manager.stop("a")
        assert third.wait(120)
        assert third.state == "done"
        assert third.snapshot().queue_position is None
    finally:
        manager.shutdown()


def test_same_seed_same_curve_even_when_run_together(manager):
    a = manager.submit("a", TrainingJob(tiny_build(), seed=7))
    b = manager.submit("b", TrainingJob(tiny_build(), seed=7))
    assert a.wait(120) and b.wait(120)
    losses_a = [p.loss for p in a.snapshot().batches]
    losses_b = [p.loss for p in b.snapshot().batches]
    assert len(losses_a) == 16
    assert losses_a == losses_b
    c = manager.submit("c", TrainingJob(tiny_build(), seed=8))
    assert c.wait(120)
    assert [p.loss for p in c.snapshot().batches] != losses_a


def test_a_failing_build_reports_one_line(manager):
    def broken():
        raise ValueError("kernel 9x9 is larger than its 8x8 input\nsecond line")

    job = manager.submit("alice", TrainingJob(broken))
    assert job.wait(30)
    assert job.state == "failed"
    assert job.error == "ValueError: kernel 9x9 is larger than its 8x8 input"
    assert manager.active("alice") is None


def test_max_jobs_from_env(monkeypatch):
    monkeypatch.delenv("CNNLAB_MAX_JOBS", raising=False)
    assert max_jobs_from_env() == 2
    monkeypatch.setenv("CNNLAB_MAX_JOBS", "3")
    assert max_jobs_from_env() == 3
    assert JobManager().max_concurrent == 3
    monkeypatch.setenv("CNNLAB_MAX_JOBS", "zero")
    assert max_jobs_from_env() == 2


@pytest.mark.parametrize("job_backend", ["threads"])   # Streamlit runs in this process only
def test_streamlit_cleanup_cannot_reset_a_training_job(manager):
    """Streamlit calls keras.backend.clear_session() after every script run; while a job
    trains it must not wipe the job's thread-local Keras state (its dtype policy)."""
    import keras

    seen = {}

    def build():
        keras.backend.clear_session()      # what Streamlit does, mid-build
        seen["policy"] = keras.config.dtype_policy().name
        return tiny_build()()

    job = manager.submit("alice", TrainingJob(build, dtype_policy="mixed_float16"))
    assert job.wait(120) and job.state == "done", job.error
    assert seen["policy"] == "mixed_float16"
    assert job.model.layers[0].compute_dtype == "float16"


def test_finished_runs_release_their_training_arrays(manager):
    job = manager.submit("alice", TrainingJob(tiny_build()))
    assert job.wait(120) and job.state == "done"
    assert job.setup.x is None and job.setup.validation_data is None
    assert job.setup.info == {"source": "random test images"} and job.model is not None


def test_a_job_stopped_before_its_start_never_trains():
    finished = []
    job = TrainingJob(tiny_build())
    job.stop()                         # while queued: nothing runs yet
    assert job.state == "queued" and job.stop_requested
    job.start(finished.append)
    assert job.wait(5) and job.state == "stopped" and finished == [job]
    assert job.snapshot().batches == () and job.model is None and not job.is_alive
    cancelled = TrainingJob(tiny_build())
    cancelled.set_queue_position(2)
    cancelled.cancel()                 # taken out of the queue by its manager
    assert cancelled.wait(0) and cancelled.state == "stopped"
    assert cancelled.snapshot().queue_position is None


def test_streamlit_post_run_clear_session_skips_the_full_collection(monkeypatch):
    """Streamlit calls keras.backend.clear_session() after every script run; once cnnlab has
    Keras, that call resets Keras' state without gc.collect() (most of a page load's CPU
    after training), while an explicit clear_session(free_memory=True) still collects."""
    import gc

    import keras

    from cnnlab.train.streaming import settle_keras

    settle_keras(keras)
    collections = []
    real_collect = gc.collect
    monkeypatch.setattr(gc, "collect", lambda *a: collections.append(a) or real_collect(*a))
    keras.backend.clear_session()
    assert collections == []
    keras.backend.clear_session(free_memory=True)
    assert collections


def test_no_job_waits_on_another_jobs_preparation():
    """Issue 10: a transfer run extracts features (minutes on a CPU) inside its build(). The
    seed lock covers only a build's random draws, so a second job trains meanwhile."""
    import threading

    from cnnlab.train.jobs import random_draws, seeds_itself

    preparing = threading.Event()
    release = threading.Event()
    inner = tiny_build(epochs=1, evaluate=False)

    @seeds_itself
    def feature_pass_build() -> TrainSetup:
        with random_draws():
            setup = inner()                  # the model's random draws, under the lock
        preparing.set()
        assert release.wait(60)              # the "feature pass": no lock held
        return setup

    manager = JobManager(max_concurrent=2)
    try:
        first = manager.submit("a", TrainingJob(feature_pass_build, seed=1))
        assert preparing.wait(60)
        second = manager.submit("b", TrainingJob(tiny_build(epochs=1, evaluate=False), seed=2))
        wait_for(lambda: second.snapshot().batches, timeout=60)
        assert not release.is_set() and first.snapshot().state == "running"
        release.set()
        assert first.wait(60) and second.wait(60)
        assert first.snapshot().state == second.snapshot().state == "done"
    finally:
        release.set()
        manager.shutdown()


def test_a_build_that_does_not_say_where_it_draws_holds_the_lock_throughout():
    """The old contract stays for builds not marked `seeds_itself`: the second job waits."""
    import threading

    release = threading.Event()
    inner = tiny_build(epochs=1, evaluate=False)
    started = threading.Event()

    def slow_preparation_build() -> TrainSetup:
        started.set()
        assert release.wait(60)
        return inner()

    manager = JobManager(max_concurrent=2)
    try:
        manager.submit("a", TrainingJob(slow_preparation_build, seed=1))
        assert started.wait(60)
        second = manager.submit("b", TrainingJob(tiny_build(epochs=1, evaluate=False), seed=2))
        time.sleep(3)
        assert not second.snapshot().batches        # blocked behind the first build
        release.set()
        assert second.wait(60) and second.snapshot().state == "done"
    finally:
        release.set()
        manager.shutdown()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def finished_runs(manager, owner: str, n: int) -> list:
    runs = []
    for _ in range(n):
        job = manager.submit(owner, TrainingJob(tiny_build(epochs=1, n=64, evaluate=False)))
        assert job.wait(60)
        runs.append(job)
    return runs


def test_finished_runs_are_freed_after_the_ttl():
    """Issue 10: memory that comes back. A finished run (its model included) is dropped
    CNNLAB_RUN_TTL seconds after it ended; an owner with nothing left is forgotten."""
    clock = FakeClock()
    manager = JobManager(max_concurrent=1, ttl_s=3600, clock=clock)
    freed = []
    manager.on_evict(lambda owner, jobs: freed.extend((owner, j.id) for j in jobs))
    try:
        (job,) = finished_runs(manager, "a", 1)
        assert job.model is not None and manager.jobs_of("a") == [job]
        clock.now += 3599
        assert manager.evict() == 0 and manager.jobs_of("a") == [job]
        clock.now += 2
        assert manager.evict() == 1
        assert manager.jobs_of("a") == [] and manager.kept() == 0
        assert job.model is None and job.setup is None       # the model can be collected
        assert freed == [("a", job.id)]
    finally:
        manager.shutdown()


def test_runs_past_the_ttl_go_on_a_server_nobody_clicks_on():
    """The class has left: no page calls the manager any more, yet a finished run is let go
    once the TTL has passed (the manager's sweeper), and its memory with it."""
    clock = FakeClock()
    manager = JobManager(max_concurrent=1, ttl_s=60, clock=clock)
    freed = []
    manager.on_evict(lambda owner, jobs: freed.extend(j.id for j in jobs))
    try:
        (job,) = finished_runs(manager, "a", 1)
        manager.sweep_every(0.05)
        manager.sweep_every(0.05)           # idempotent: one sweeper
        time.sleep(0.3)
        assert freed == [] and manager.kept() == 1      # not yet: the TTL has not passed
        clock.now += 61
        wait_for(lambda: freed == [job.id], timeout=10)
        assert manager.kept() == 0 and job.model is None
    finally:
        manager.shutdown()
    wait_for(lambda: not manager._sweeper.is_alive(), timeout=10)   # shutdown ends it


def test_a_dropped_runs_training_graph_is_freed():
    """TensorFlow's gradient registry kept every traced train step alive (through
    `all_reduce`'s custom gradient): about 15 MB a run, for the life of the server. Once
    runs are let go and collected, none of their graphs is left."""
    import gc

    from cnnlab.train.streaming import release_memory

    def train_graphs() -> int:
        from tensorflow.python.framework.func_graph import FuncGraph

        gc.collect()
        return sum(isinstance(o, FuncGraph) and o.name.startswith("one_step")
                   for o in gc.get_objects())

    manager = JobManager(max_concurrent=1)
    try:
        finished_runs(manager, "warm", 1)          # Keras and TensorFlow loaded
        manager.release_owner("warm")
        release_memory()
        before = train_graphs()
        finished_runs(manager, "a", 2)
        assert train_graphs() > before
        manager.release_owner("a")
        release_memory()
        assert train_graphs() == before
    finally:
        manager.shutdown()


def test_the_heap_is_trimmed_after_runs_are_collected(monkeypatch):
    from cnnlab.train import streaming

    trimmed = []
    monkeypatch.setattr(streaming, "trim_heap", lambda: trimmed.append(1) or True)
    streaming.release_memory()
    assert trimmed == [1]
    monkeypatch.undo()
    assert streaming.trim_heap() in (True, False)       # the real call (glibc) does not fail


def test_the_server_keeps_at_most_max_kept_runs_oldest_go_first():
    clock = FakeClock()
    manager = JobManager(max_concurrent=1, max_kept=3, clock=clock)
    try:
        runs = []
        for owner in "abcde":
            runs += finished_runs(manager, owner, 1)
            clock.now += 1
        manager.evict()
        assert manager.kept() == 3
        assert [manager.latest(o) for o in "abcde"] == [None, None, *runs[2:]]
    finally:
        manager.shutdown()


def held_build():
    """A one-epoch build that waits for the returned event first: a run that stays active
    (running, or queued behind it) until the test releases it."""
    import threading

    release = threading.Event()
    inner = tiny_build(epochs=1, n=64, evaluate=False)

    def waiting_build() -> TrainSetup:
        assert release.wait(60)
        return inner()

    return release, waiting_build


def test_a_released_owner_keeps_nothing_and_its_running_job_goes_when_it_ends():
    manager = JobManager(max_concurrent=2)
    release, waiting_build = held_build()

    try:
        (done,) = finished_runs(manager, "a", 1)
        running = manager.submit("a", TrainingJob(waiting_build))
        manager.release_owner("a")                 # the owner's last session ended
        assert manager.jobs_of("a") == [running]   # the finished one is gone, the active stays
        assert done.model is None
        release.set()
        assert running.wait(60)
        wait_for(lambda: manager.kept() == 0)
        # the same owner coming back (a new session) starts afresh and keeps its new runs
        (again,) = finished_runs(manager, "a", 1)
        assert manager.jobs_of("a") == [again]
    finally:
        release.set()
        manager.shutdown()


def test_runs_are_let_go_when_the_owners_last_session_ends_not_on_a_refresh():
    """Issue 10: a finished run is freed when its owner's session ends. A refresh closes the
    old session before the new one opens: within the grace period nothing is let go (the
    running job keeps its results too); once the last session is gone, the runs go, the
    owner is forgotten and the model's memory is collected."""
    import gc
    import weakref

    from cnnlab.ui.owner import OwnerSessions

    later = []
    sessions = OwnerSessions(grace_s=30, schedule=lambda delay, fn: later.append((delay, fn)))
    manager = JobManager(max_concurrent=2)
    release, waiting_build = held_build()

    try:
        sessions.opened(manager, "a")
        (done,) = finished_runs(manager, "a", 1)
        running = manager.submit("a", TrainingJob(waiting_build))
        sessions.closed(manager, "a")              # a refresh: the old session ends...
        sessions.opened(manager, "a")              # ...and the new one opens
        for _, fn in later:
            fn()                                   # the grace period ran out
        later.clear()
        release.set()
        assert running.wait(60)
        assert manager.jobs_of("a") == [done, running] and done.model is not None
        model = weakref.ref(done.model)
        # The tab is closed: after the grace period the runs go, models and all.
        sessions.closed(manager, "a")
        assert sessions.open_sessions("a") == 0 and manager.jobs_of("a") == [done, running]
        ((delay, fn),) = later
        assert delay == 30
        fn()
        assert manager.kept() == 0 and manager.latest("a") is None
        assert done.model is None and running.model is None and running.extras == {}
        gc.collect()
        assert model() is None                     # nothing else held the trained model
    finally:
        release.set()
        manager.shutdown()


def test_a_shortened_ttl_shortens_the_wait_after_the_last_session():
    from cnnlab.ui.owner import OwnerSessions

    later = []
    sessions = OwnerSessions(grace_s=30, schedule=lambda delay, fn: later.append((delay, fn)))
    manager = JobManager(max_concurrent=1, ttl_s=5)
    sessions.opened(manager, "a")
    sessions.opened(manager, "a")                  # two tabs
    sessions.closed(manager, "a")
    assert later == []                             # one is still open
    sessions.closed(manager, "a")
    assert [delay for delay, _ in later] == [5]


def test_memory_is_collected_once_soon_after_runs_are_let_go(monkeypatch):
    from cnnlab.train import streaming

    calls = []
    monkeypatch.setattr(streaming, "release_memory", lambda: calls.append(time.monotonic()))
    for _ in range(3):                      # e.g. three runs of one owner let go together
        streaming.collect_soon(0.05)
    wait_for(lambda: calls, timeout=5)
    time.sleep(0.2)
    assert len(calls) == 1
    streaming.collect_soon(0.05)            # a later eviction collects again
    wait_for(lambda: len(calls) == 2, timeout=5)
