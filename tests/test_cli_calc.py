"""`python -m cnnlab calc`: the issue's command, the JSON schema, the table, bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cnnlab.__main__ import main
from cnnlab.calc.grammar import GRAMMAR_HELP
from cnnlab.calc.memory import MEMORY_ASSUMPTIONS
from cnnlab.calc.spec import LIMITS
from tests import ROOT

EXERCISE = ["calc", "--input", "200x300x3", "--layer", "conv:100:3:2:same", "--layer",
            "conv:200:3:2:same", "--layer", "conv:400:3:2:same", "--batch", "50"]


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_issue_command_prints_the_json_object():
    proc = subprocess.run([sys.executable, "-m", "cnnlab", *EXERCISE, "--json"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert [(layer["kind"], layer["output_shape"], layer["params"])
            for layer in result["layers"]] == [("conv", [100, 150, 100], 2_800),
                                               ("conv", [50, 75, 200], 180_200),
                                               ("conv", [25, 38, 400], 720_400)]
    assert result["total_params"] == 903_400
    memory = result["memory"]
    assert memory["params_bytes"] == 3_613_600
    assert memory["inference_bytes"] == 12_613_600  # about 12.6 MB
    assert memory["before_gradients_bytes"] == 565_613_600  # about 566 MB
    # Adam: + gradients + 2 slots per parameter
    assert memory["training_bytes"] == 565_613_600 + 3 * 3_613_600
    assert sum(memory["training_terms"].values()) == memory["training_bytes"]


def test_options_change_the_memory(capsys):
    def training(*extra: str) -> int:
        code, out, _ = run_cli(capsys, *EXERCISE, "--json", *extra)
        assert code == 0
        return json.loads(out)["memory"]["training_bytes"]

    adam, sgd = training(), training("--optimizer", "sgd")
    assert adam - sgd == 2 * 3_613_600
    assert training("--optimizer", "momentum") - sgd == 3_613_600
    assert training("--dtype", "mixed_float16") == adam - 263_000_000
    assert training("--accum", "2") < adam
    code, out, _ = run_cli(capsys, *EXERCISE, "--json", "--gpu", "0.3")
    memory = json.loads(out)["memory"]
    assert memory["max_batch_textbook"] == 25
    assert memory["max_batch_from"] == "framework"
    assert memory["max_batch"] == memory["max_batch_framework"] < 25


def test_readable_table(capsys):
    code, out, err = run_cli(capsys, *EXERCISE, "--gpu", "16")
    assert code == 0 and err == ""
    assert "conv3" in out and "25x38x400" in out and "720,400" in out
    assert "903,400" in out
    assert "predict one instance: 12.61 MB" in out
    assert "largest batch that fits 16 GB" in out


def test_preset_and_grammar_extensions(capsys):
    code, out, _ = run_cli(capsys, "calc", "--preset", "VGG16", "--json")
    assert code == 0
    assert json.loads(out)["total_params"] == 138_357_544
    code, out, _ = run_cli(capsys, "calc", "--input", "8x8x4", "--layer", "conv:4:1:name=a",
                           "--layer", "conv:4:3:1:same", "--layer", "add:in=a,conv1",
                           "--layer", "globalavgpool", "--layer", "dense:2:act=softmax",
                           "--json")
    assert code == 0
    layers = json.loads(out)["layers"]
    assert [layer["kind"] for layer in layers] == ["conv", "conv", "add", "globalavgpool",
                                                    "dense"]
    assert layers[2]["inputs"] == ["a", "conv1"]


@pytest.mark.parametrize("argv, message", [
    (["--input", "5x5x3", "--layer", "conv:10:7"],
     "calc: layer 1 (conv1): kernel 7x7 is larger than its 5x5 VALID input"),
    (["--input", "5x5x3", "--layer", "conv:10:3:0"],
     "calc: --layer 1 (conv:10:3:0): stride must be N or NxM of positive integers, got '0'"),
    (["--input", "5x5x3", "--layer", "conv:-1:3"],
     "calc: --layer 1 (conv:-1:3): filters must be a positive integer, got '-1'"),
    (["--input", "5x5x3", "--layer", "wobble:3"], "calc: --layer 1 (wobble:3): unknown layer"),
    (["--input", "5x5xq", "--layer", "flatten"], "calc: input '5x5xq': every size must be"),
    (["--layer", "flatten"], "calc: --input: required"),
    (["--input", "5x5x3"], "calc: --layer: give at least one layer"),
    (["--input", "5x5x3", "--layer", "flatten", "--batch", "0"], "calc: --batch: must be"),
    (["--input", "5x5x3", "--layer", "flatten", "--dtype", "int8"], "calc: --dtype: must be"),
    (["--input", "5x5x3", "--layer", "flatten", "--optimizer", "lion"],
     "calc: --optimizer: must be"),
    (["--input", "5x5x3", "--layer", "flatten", "--gpu", "lots"], "calc: --gpu: must be"),
    (["--preset", "ZFNet"], "calc: --preset: unknown preset 'ZFNet'"),
])
def test_bad_input_exits_2_with_one_line(capsys, argv, message):
    code, out, err = run_cli(capsys, "calc", *argv)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith(message), err


def test_bad_layer_in_a_real_process_has_no_traceback():
    proc = subprocess.run([sys.executable, "-m", "cnnlab", "calc", "--input", "28x28x1",
                           "--layer", "conv:32:3", "--layer", "dense:x"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr == ("calc: --layer 2 (dense:x): units must be a positive integer, "
                           "got 'x'\n")


def test_help_prints_the_grammar_and_the_memory_model(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["calc", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert f"Layer grammar:\n{GRAMMAR_HELP}\n" in out
    flat = " ".join(out.split())
    assert all(" ".join(line.split()) in flat for line in MEMORY_ASSUMPTIONS)
    assert "optimizer slots per parameter: sgd 0, momentum 1, adam 2" in flat


# ----------------------------------------------------------------------- hostile input (issue 15)

HUGE = "1" + "0" * 400  # `conv:1<400 zeros>:3`


def past_limit(what: str, limit: str, got: str) -> str:
    """The one line for a number past one of the calculator's limits."""
    return f"calc: {what} must be at most {limit} (the calculator's limit), got {got}\n"


@pytest.mark.parametrize("argv, message", [
    *[(["--input", "8x8x3", "--layer", "conv:8:3", f"--gpu={gpu}"],
       f"calc: --gpu: must be a positive number of GB from 0.01 to 1,000,000, got '{gpu}'\n")
      for gpu in ("inf", "nan", "1e300", "-1", "0", "-inf", "0.001", "1000001")],
    # a layer's first 59 characters and the value's first 37 are shown, then "…"
    *[(["--input", "8x8x3", "--layer", layer],
       past_limit(f"--layer 1 ({layer[:59]}…): {field}", "1,000,000",
                  "'1000000000000000000000000000000000000…' (401 characters)"))
      for layer, field in ((f"conv:{HUGE}:3", "filters"), (f"zeropad:{HUGE}", "pad"))],
    (["--input", "8x8x3", "--layer", "conv:10000000000000000000000:3"],
     past_limit("--layer 1 (conv:10000000000000000000000:3): filters", "1,000,000",
                "'10000000000000000000000'")),
    (["--input", "1000000x1000000x3", "--layer", "conv:8:3", "--batch", "1000000000"],
     "calc: batch: training a batch of 1,000,000,000 needs 4.40e+22 bytes, more than the "
     "calculator's limit of 10^18 bytes (1 EB)\n"),
    (["--input", "1000001x8x3", "--layer", "flatten"],
     past_limit("input: each size", "1,000,000", "'1000001x8x3'")),
    (["--input", "8x8x3", "--layer", "flatten", "--batch", "1000000001"],
     past_limit("--batch:", "1,000,000,000", "'1000000001'")),
    (["--input", "8x8x3", "--layer", "flatten", "--batch", "1" + "0" * 5000],
     past_limit("--batch:", "1,000,000,000",
                "'1000000000000000000000000000000000000…' (5,001 characters)")),
    (["--input", "8x8x3", "--layer", "flatten", "--batch", "1e9"],
     "calc: --batch: must be a positive integer, got '1e9'\n"),
    (["--input", "8x8x3", "--layer", "flatten", "--batch", "4", "--accum", "10000000000"],
     past_limit("--accum:", "1,000,000,000", "'10000000000'")),
    (["--input", "8x8x3", "--layer", "flatten", "--batch", "4", "--accum", "5"],
     "calc: accumulation steps: 5 is more than the batch of 4\n"),
    (["--input", "8x8x3", "--layer", "conv:8:3\nx"],
     "calc: --layer 1 (conv:8:3\\nx): kernel must be N or NxM of positive integers, "
     "got '3\\nx'\n"),
    (["--input", "1x1x1", *["--layer", "maxpool:1:1000000:same"] * 3],
     "calc: layer 3 (maxpool3): its receptive field reaches 1,000,000,000,000,000,000 input "
     "pixels (strides multiply along the stack), more than the calculator's limit of 10^15\n"),
    (["--input", "8x8x3", *["--layer", "dropout"] * 10_001],
     "calc: --layer: 10,001 layers, more than the calculator's limit of 10,000\n"),
])
def test_numbers_past_the_limits_exit_2_with_one_line(capsys, argv, message):
    code, out, err = run_cli(capsys, "calc", *argv)
    assert (code, out, err) == (2, "", message)


def test_issue_15_commands_in_a_real_process_have_no_traceback():
    for argv in (["--input", "8x8x3", "--layer", "conv:8:3", "--gpu", "inf"],
                 ["--input", "8x8x3", "--layer", f"conv:{HUGE}:3"]):
        proc = subprocess.run([sys.executable, "-m", "cnnlab", "calc", *argv],
                              capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert proc.returncode == 2 and proc.stdout == ""
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr


def test_help_states_the_limits(capsys):
    with pytest.raises(SystemExit):
        main(["calc", "--help"])
    flat = " ".join(capsys.readouterr().out.split())
    assert "Limits:" in flat
    assert all(" ".join(line.split()) in flat for line in LIMITS)
