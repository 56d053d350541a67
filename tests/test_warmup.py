"""The server's warm-up: only in a real server, once, yielding to pages; when it is done,
TensorFlow, Keras (settled for Streamlit) and the seed's dataset are ready and the first
real run reuses them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from cnnlab.train import warmup
from tests import ROOT


def test_not_started_outside_a_server_or_when_off(monkeypatch):
    assert warmup.in_server() is False
    assert warmup.start() is False and warmup.status()["state"] == "off"
    monkeypatch.setenv("CNNLAB_WARMUP", "0")
    assert warmup.start(force=True) is False


def test_app_under_apptest_never_warms_up():
    """AppTest installs a mock runtime: the page tests' processes never import TensorFlow."""
    from tests.apptest import run_isolated

    result = run_isolated("pages/calculator.py")
    assert result["exceptions"] == [] and result["tensorflow"] is False


def test_it_waits_while_a_page_script_runs():
    release = threading.Event()
    page = threading.Thread(target=release.wait, name="ScriptRunner.scriptThread", daemon=True)
    page.start()
    t0 = time.monotonic()
    threading.Timer(0.6, release.set).start()
    warmup._yield_to_pages(limit_s=5)
    assert 0.5 < time.monotonic() - t0 < 3
    t0 = time.monotonic()
    page.join()
    warmup._yield_to_pages(limit_s=5)
    assert time.monotonic() - t0 < 0.5




def test_inside_a_step_it_gives_way_to_pages_but_not_to_a_waiting_run():
    polite = warmup._Polite()
    t0 = time.monotonic()
    polite.give_way()
    assert time.monotonic() - t0 < 0.1          # no page: straight on
    release = threading.Event()
    page = threading.Thread(target=release.wait, name="ScriptRunner.scriptThread", daemon=True)
    page.start()
    threading.Timer(0.3, release.set).start()
    t0 = time.monotonic()
    polite.give_way()
    assert 0.25 < time.monotonic() - t0 < 1.5   # until the page's run ended
    page.join()
    # A page that runs past PATIENCE_S is not waited for again (it may wait for us).
    stuck = threading.Event()
    page = threading.Thread(target=stuck.wait, name="ScriptRunner.scriptThread", daemon=True)
    page.start()
    try:
        polite.give_way()
        t0 = time.monotonic()
        polite.give_way()
        assert time.monotonic() - t0 < 0.1
        # A real run started: this thread's work is what it waits for; no more giving way.
        run = threading.Thread(target=stuck.wait, name="cnnlab-job-7-0badcafe", daemon=True)
        run.start()
        polite.calls = polite.CHECK_EVERY - 1
        polite(None, "call", None)
        assert polite.urgent
    finally:
        stuck.set()


def test_it_steps_aside_for_a_real_run(monkeypatch):
    """A training job's thread is alive: the warm-up does none of its steps (the run imports
    and loads what it needs; two would compete for 2 cores and the seed lock)."""
    monkeypatch.setattr(warmup, "_THREAD", None)
    monkeypatch.setattr(warmup, "_STATE", {"state": "off", "step": None, "seconds": {},
                                           "error": None})
    release = threading.Event()
    job = threading.Thread(target=release.wait, name="cnnlab-job-99-0123abcd", daemon=True)
    job.start()
    try:
        assert warmup.start(force=True, delay_s=0)
        assert warmup.wait(30)
        assert warmup.status()["state"] == "skipped" and warmup.status()["seconds"] == {}
    finally:
        release.set()


@pytest.mark.slow
def test_warm_up_prepares_what_the_first_run_uses():
    """In a fresh process: the warm-up runs its steps, settles Keras (Streamlit's
    clear_session after every script run stays cheap), caches the dataset, and a seed run
    started afterwards reaches its first batch without importing or loading anything."""
    code = textwrap.dedent("""
        import gc, json, sys, time
        from cnnlab.train import warmup
        assert "tensorflow" not in sys.modules
        assert warmup.start(force=True, delay_s=0) and not warmup.start(force=True)
        assert warmup.wait(600)
        status = warmup.status()
        from cnnlab.train import prepared
        kept = prepared.ready()
        import keras
        from cnnlab.train import datasets
        from cnnlab.train.config import TrainConfig
        from cnnlab.train.model import job_for
        t0 = time.perf_counter()
        keras.backend.clear_session()           # what Streamlit calls after every run
        clear_ms = (time.perf_counter() - t0) * 1000
        hits = datasets.mnist_sample.cache_info().hits
        job = job_for(TrainConfig(epochs=1, batch_size=256))
        t0 = time.perf_counter()
        job.start(on_finish=lambda j: None)
        while not job.snapshot().batches:
            time.sleep(0.01)
        first_batch_s = time.perf_counter() - t0
        job.stop(); job.wait()
        print(json.dumps({"status": status, "settled": hasattr(keras.backend.clear_session,
                                                                "__wrapped__"),
                          "frozen": gc.get_freeze_count(), "clear_ms": clear_ms,
                          "dataset_reused": datasets.mnist_sample.cache_info().hits > hits,
                          "first_batch_s": first_batch_s, "kept": kept}))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          timeout=900, env={**os.environ, "CNNLAB_OFFLINE": "1",
                                            "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["status"]["state"] == "done", result["status"]
    assert set(result["status"]["seconds"]) == {"data", "tensorflow", "keras", "seed model"}
    assert result["settled"] and result["frozen"] > 100_000
    assert result["dataset_reused"]
    # Its traced seed model waits for the first run of the seed's configuration.
    assert len(result["kept"]) == 1 and '"filters": [32, 64]' in result["kept"][0]
    assert result["clear_ms"] < 200
    # Importing TensorFlow alone takes longer than this on the machines cnnlab runs on.
    assert result["first_batch_s"] < result["status"]["seconds"]["tensorflow"] + 5


@pytest.mark.slow
def test_a_run_started_during_the_warm_up_trains():
    """Train pressed while the warm-up imports TensorFlow: both import through `import keras`
    (never a module-lock deadlock), the run trains, the warm-up steps aside or finishes."""
    code = textwrap.dedent("""
        import json, time
        from cnnlab.train import warmup
        from cnnlab.train.config import TrainConfig
        from cnnlab.train.model import job_for
        from cnnlab.train.snapshots import add_snapshots
        assert warmup.start(force=True, delay_s=0)
        time.sleep(0.5)                       # the warm-up is importing
        job = job_for(TrainConfig(epochs=1, filters=(4, 8), batch_size=256),
                      extend=add_snapshots)
        job.start(on_finish=lambda j: None)
        job.wait()
        warmup.wait(600)
        print(json.dumps({"job": str(job.state), "error": job.error,
                          "warmup": warmup.status()["state"]}))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          timeout=900, env={**os.environ, "CNNLAB_OFFLINE": "1",
                                            "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["job"] == "done", result["error"]
    assert result["warmup"] in ("skipped", "done")
