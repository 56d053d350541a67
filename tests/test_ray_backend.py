"""The Ray backend's own guarantees: the same curve as threads, failures that show, one
registry for several servers, and the CLI through a cluster.

The shared runner tests (tests/test_jobs.py) also run on Ray; these are the ones only a
cluster has. The cluster is tests/ray_fixtures.py's (2 CPUs, started once per session).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from cnnlab.train import backend
from cnnlab.train.jobs import JobError, TrainingJob
from cnnlab.train.manager import JobManager
from cnnlab.train.ray_cluster import ClusterUnreachable
from tests import ROOT
from tests.test_jobs import X, slow_build, tiny_build, wait_for

NOBODY = "127.0.0.1:9"       # the discard port: nothing listens there


@pytest.fixture
def ray_manager(ray_registry):
    from cnnlab.train.ray_backend import RayJobManager

    manager = RayJobManager("local", resources={"num_cpus": 1, "num_gpus": 0},
                            registry=ray_registry)
    yield manager
    manager.shutdown()


def test_unreachable_cluster_is_one_message_and_threads_only_when_asked(monkeypatch, capsys):
    monkeypatch.setenv("CNNLAB_RAY_ADDRESS", NOBODY)
    monkeypatch.delenv("CNNLAB_RAY_FALLBACK", raising=False)
    with pytest.raises(ClusterUnreachable) as refused:
        backend.manager_from_env()
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"cannot reach the Ray cluster at '{NOBODY}' (CNNLAB_RAY_ADDRESS)")
    assert "CNNLAB_RAY_FALLBACK=threads" in message
    # A server keeps serving: no runs, and Train answers with the same line.
    monkeypatch.setattr(backend, "_SHARED", None)
    manager = backend.shared_manager()
    assert manager.jobs_of("alice") == [] and manager.active("alice") is None
    assert manager.counts() == {"running": 0, "queued": 0, "max_concurrent": 0}
    with pytest.raises(JobError, match="cannot reach the Ray cluster"):
        manager.submit("alice", TrainingJob(tiny_build()))
    assert capsys.readouterr().err.count("cannot reach the Ray cluster") == 1   # logged once
    # Asked for: threads, said once.
    monkeypatch.setenv("CNNLAB_RAY_FALLBACK", "threads")
    manager = backend.manager_from_env()
    assert isinstance(manager, JobManager) and backend.backend_name(manager) == "threads"
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Training in threads instead" in err


def test_the_train_page_says_so_when_its_cluster_is_unreachable(monkeypatch):
    from tests.apptest import app_at, error_lines

    monkeypatch.setenv("CNNLAB_RAY_ADDRESS", NOBODY)
    monkeypatch.setenv("CNNLAB_OFFLINE", "1")
    monkeypatch.setattr(backend, "_SHARED", None)
    at = app_at("pages/train.py")
    assert not at.exception
    at.button(key="train").click().run()
    assert not at.exception
    assert any(line.startswith(f"cannot reach the Ray cluster at '{NOBODY}'")
               for line in error_lines(at)), error_lines(at)


def test_the_cli_refuses_an_unreachable_cluster_in_one_line():
    env = dict(os.environ, CNNLAB_RAY_ADDRESS=NOBODY, CNNLAB_OFFLINE="1")
    env.pop("CNNLAB_RAY_FALLBACK", None)
    proc = subprocess.run([sys.executable, "-m", "cnnlab", "train", "--epochs", "1", "--json"],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines()[-1].startswith(
        f"error: cannot reach the Ray cluster at '{NOBODY}'")


def test_same_seed_same_curve_as_threads_in_another_process(ray_manager):
    """The guarantee of the default run: Ray trains the same run, elsewhere, and stops it."""
    threads = JobManager(max_concurrent=1)
    local = threads.submit("alice", TrainingJob(tiny_build(epochs=2), seed=7))
    remote = ray_manager.submit("alice", TrainingJob(tiny_build(epochs=2), seed=7))
    assert local.wait(120) and remote.wait(120)
    assert remote.state == "done", remote.error
    assert [p.loss for p in remote.snapshot().batches] == \
        [p.loss for p in local.snapshot().batches]
    assert remote.result == local.result
    assert remote.worker["pid"] != os.getpid() and remote.worker["node_id"]
    assert remote.model.count_params() == local.model.count_params()
    # Stop at the next batch, on a worker that has TensorFlow loaded now: the run ends
    # inside the epoch it was in (an epoch is 512 batches; a missed Stop would go on for
    # 1,000 epochs). Counted in batches, not seconds: CI machines are loaded.
    job = ray_manager.submit("alice", TrainingJob(slow_build(), seed=0))
    wait_for(lambda: len(job.snapshot().batches) >= 20)
    job.stop()
    assert job.wait(60)
    snap = job.snapshot()
    assert snap.state == "stopped" and snap.batches[-1].step < 512
    assert job.model.predict(X[:2], verbose=0).shape == (2, 2)


def test_a_killed_worker_fails_the_run_and_the_runner_keeps_working(ray_manager):
    job = ray_manager.submit("alice", TrainingJob(slow_build(), seed=0))
    wait_for(lambda: len(job.snapshot().batches) >= 5)
    os.kill(job.worker["pid"], signal.SIGKILL)
    assert job.wait(60)
    snap = job.snapshot()
    assert snap.state == "failed" and snap.error.startswith("worker lost")
    assert len(snap.batches) >= 5                 # the curve up to the loss stays
    assert ray_manager.active("alice") is None
    again = ray_manager.submit("alice", TrainingJob(tiny_build(), seed=0))
    assert again.wait(120) and again.state == "done", again.error
    assert [j.state for j in ray_manager.jobs_of("alice")] == ["failed", "done"]


SECOND_SERVER = textwrap.dedent("""
    import json, sys
    from cnnlab.train.ray_backend import RayJobManager
    address, registry, owner, run_id = sys.argv[1:]
    manager = RayJobManager(address, registry=registry)
    job = manager.get(owner, run_id)
    print(json.dumps({
        "found": job is not None and manager.active(owner) is job,
        "label": job.label, "points": len(job.snapshot().batches),
        "other_owner_sees": [j.id for j in manager.jobs_of("mallory")],
        "other_owner_gets": manager.get("mallory", run_id) is not None,
        "a_watch_link_finds": manager.find(run_id) is job,
        "other_owner_stops": manager.stop("mallory", run_id),
        "owner_stops": manager.stop(owner, run_id),
    }))
""")


@pytest.mark.slow
def test_a_second_server_finds_watches_and_stops_the_run(ray_cluster, ray_manager, ray_registry):
    job = ray_manager.submit("alice", TrainingJob(slow_build(), seed=0, label="slow run"))
    wait_for(lambda: len(job.snapshot().batches) >= 5)
    proc = subprocess.run(
        [sys.executable, "-c", SECOND_SERVER, ray_cluster, ray_registry, "alice", job.id],
        capture_output=True, text=True, cwd=ROOT, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    seen = json.loads(proc.stdout.splitlines()[-1])
    assert seen["found"] and seen["label"] == "slow run" and seen["points"] >= 5
    assert seen["other_owner_sees"] == [] and not seen["other_owner_gets"]
    assert seen["a_watch_link_finds"]          # to watch, read-only: Stop is the owner's
    assert not seen["other_owner_stops"] and seen["owner_stops"]
    assert job.wait(30) and job.state == "stopped"


@pytest.mark.slow
def test_the_cli_trains_on_the_cluster_as_in_threads(ray_cluster):
    def cli(**env: str) -> dict:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cnnlab", "train", "--dataset", "mnist", "--epochs", "1",
             "--seed", "0", "--filters", "4,8", "--json"], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, cwd=ROOT,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CNNLAB_OFFLINE="1", **env))
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
        final = json.loads(out.splitlines()[-1])
        return {**final, "cli_pid": proc.pid}

    on_ray = cli(CNNLAB_RAY_ADDRESS=ray_cluster)
    in_threads = cli()
    assert on_ray["backend"] == "ray" and in_threads["backend"] == "threads"
    assert on_ray["worker"]["pid"] != on_ray["cli_pid"] and on_ray["worker"]["node_id"]
    assert in_threads["worker"] == {"node_id": None, "pid": in_threads["cli_pid"]}
    assert on_ray["test_accuracy"] == in_threads["test_accuracy"]


@pytest.mark.slow
def test_a_transfer_run_trains_on_the_cluster_as_in_threads(ray_manager, inception_notop_weights,
                                                             tmp_path):
    """Both phases in workers: the same curve and report as in threads, and the run on the
    server gets what the worker's build made (model, counts, test images, features)."""
    import numpy as np

    from cnnlab.train.metrics import predict_probs
    from cnnlab.transfer import archive
    from cnnlab.transfer import image_folder as folders
    from cnnlab.transfer.config import TransferConfig
    from cnnlab.transfer.model import BaseWeights, head_parameters
    from cnnlab.transfer.run import TransferRun

    ws = archive.SessionWorkspace(parent=tmp_path)
    ds = archive.load_zip(archive.demo_archive(per_class=10, size=80, seed=1), "demo.zip", ws)
    split = folders.split_by_fraction(ds.labels, 0.2, 0.2, seed=0)
    weights = BaseWeights(str(inception_notop_weights), False, "random test weights")
    config = TransferConfig(image_size=75, epochs=2, batch_size=8, learning_rate=1e-2, seed=5,
                            fine_tune_blocks=1, fine_tune_epochs=1)
    local = TransferRun(ds, split, config, weights)
    local.submit(JobManager(max_concurrent=1), "a")
    remote = TransferRun(ds, split, config, weights)
    remote.submit(ray_manager, "a")
    assert local.phase1.wait(300) and remote.phase1.wait(300)
    assert remote.phase1.state == "done", remote.phase1.error
    assert remote.phase1.worker["pid"] != os.getpid()
    assert [p.loss for p in remote.phase1.snapshot().batches] == \
        [p.loss for p in local.phase1.snapshot().batches]
    assert remote.report().accuracy == local.report().accuracy
    assert remote.status() == ("phase 1 done", 1.0)
    assert remote.parameters["phase 1"].trainable == head_parameters(3)
    assert remote.feature_cache_hit is False and len(remote.cache) == 1
    assert remote.speedup() is not None
    x_test = folders.to_model_input(remote.pixels["test"])
    np.testing.assert_allclose(predict_probs(remote.model, x_test), remote.report().probs,
                               atol=1e-4)
    # Phase 2 starts from phase 1's model, in a worker too.
    assert remote.advance(ray_manager, "a")
    assert remote.phase2.wait(300) and remote.phase2.state == "done", remote.phase2.error
    assert remote.finished and remote.parameters["phase 2"].trainable > head_parameters(3)
    assert remote.report() is not None and remote.model.get_layer("head") is not None
    ws.cleanup()
