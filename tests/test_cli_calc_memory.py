"""`python -m cnnlab calc`: the framework model in --json, and --measure (a real training
step in a child process) with its fields and its one-line failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from cnnlab.__main__ import main
from cnnlab.calc.framework_memory import framework_estimate
from cnnlab.calc.presets import PRESETS
from tests import ROOT

SEED = ["calc", "--preset", "seed exercise", "--batch", "8"]


def cli(*argv: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cnnlab", *argv], capture_output=True,
                          text=True, cwd=ROOT, timeout=600, env=env)


def test_json_carries_the_framework_model_beside_the_textbook(capsys):
    assert main([*SEED, "--json", "--gpu", "16"]) == 0
    memory = json.loads(capsys.readouterr().out)["memory"]
    fw = memory["framework"]
    expected = framework_estimate(*PRESETS["seed exercise"], batch=8)
    assert fw["training_bytes"] == expected.training_bytes
    assert fw["per_sample_bytes"] == expected.per_sample_bytes
    assert fw["fixed_bytes"] == expected.fixed_bytes
    # The tensors' peak is the peak moment's line; the allocator (simulated) holds more.
    assert fw["tensor_bytes"] == pytest.approx(fw["fixed_bytes"] + 8 * fw["per_sample_bytes"],
                                               abs=8)
    assert fw["training_bytes"] > fw["tensor_bytes"]
    # Keras keeps more per sample than the textbook count here: a conv's input and the
    # gradients in flight, not only the outputs.
    assert fw["per_sample_bytes"] > memory["training_bytes"] // 8 > 0
    assert memory["max_batch_from"] == "framework"
    assert memory["max_batch"] == expected.max_batch(16e9) < memory["max_batch_textbook"]


def test_the_table_names_both_models(capsys):
    assert main([*SEED, "--gpu", "16"]) == 0
    out = capsys.readouterr().out
    assert "framework model (what Keras on TensorFlow keeps)" in out
    assert "(framework model); textbook" in out


def test_measure_with_a_bad_spec_is_the_calculators_one_line_error():
    proc = cli("calc", "--input", "5x5x3", "--layer", "conv:10:7", "--measure", "--json")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == "calc: layer 1 (conv1): kernel 7x7 is larger than its 5x5 VALID " \
                          "input\n"


@pytest.mark.slow
def test_the_issue_command_measures_on_this_machine():
    proc = cli(*SEED, "--measure", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    measured = result["measured"]
    assert {"peak_bytes", "per_sample_bytes", "fixed_bytes", "batches", "device",
            "backend"} <= set(measured)
    assert measured["batches"] == [4, 8] and measured["device"] == "CPU:0"
    assert measured["backend"].startswith("tensorflow 2.")
    # At least the images, one map per conv and Adam's state, at the larger batch.
    assert measured["peak_bytes"] > 8 * (200 * 300 * 3 + 1_500_000 + 750_000) * 4
    assert measured["per_sample_bytes"] > 0
    assert result["memory"]["framework"]["per_sample_bytes"] > 0


@pytest.mark.slow
def test_a_measurement_out_of_memory_is_one_line_and_the_analysis_still_prints():
    env = dict(os.environ, CNNLAB_MEASURE_MAX_BYTES="30000000")
    proc = cli(*SEED, "--measure", "--json", env=env)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("calc: measure: out of memory")
    result = json.loads(proc.stdout)
    assert result["measured"]["error"] == "oom"
    assert result["total_params"] == 903_400
