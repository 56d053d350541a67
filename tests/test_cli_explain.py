"""`python -m cnnlab explain`, as a user runs it: JSON fields, bad files, bad models."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from cnnlab.vision import images
from tests.test_cli_classify import cli


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A drawn digit, a broken PNG, a text file, and the Train page's (untrained) network."""
    import keras

    from cnnlab.train import config as training_config
    from cnnlab.train import model as training

    folder = tmp_path_factory.mktemp("explain")
    digit = np.zeros((56, 56), np.uint8)
    digit[10:46, 24:32] = 255                           # a thick "1"
    Image.fromarray(digit).save(folder / "one.png")
    (folder / "broken.png").write_bytes(images.sample_photo_bytes("coffee", "PNG")[:5000])
    (folder / "notes.keras").write_text("not a model")
    keras.utils.set_random_seed(0)
    training.build_model(training_config.TrainConfig(filters=(8, 16), dense_units=32)).save(folder / "digits.keras")
    return folder


def run_main(capsys, *args):
    from cnnlab.__main__ import main

    code = main(["explain", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_fields_for_every_method_with_sanity(files, capsys):
    code, out, err = run_main(capsys, str(files / "one.png"), "--model", str(files / "digits.keras"),
                              "--methods", "gradcam,gradcam++,scorecam,smoothgrad,integrated_gradients,occlusion",
                              "--sanity", "--json")
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 1                               # one JSON object
    data = json.loads(lines[0])
    assert data["file"] == "one.png" and data["untrained"] is False and 0 <= data["class"] < 10
    assert list(data["methods"]) == ["gradcam", "gradcam++", "scorecam", "smoothgrad",
                                     "integrated_gradients", "occlusion"]
    for name, entry in data["methods"].items():
        assert entry["map_shape"] == [28, 28], name
        assert entry["seconds"] > 0 and 0 <= entry["deletion_auc"] <= 1 and 0 <= entry["insertion_auc"] <= 1
        assert [s["block"] for s in entry["randomized_similarity"]] == ["output", "dense1", "conv2", "conv1"]
    assert data["methods"]["integrated_gradients"]["completeness_gap"] <= 0.01


def test_class_choice_and_text_output(files, capsys):
    code, out, err = run_main(capsys, str(files / "one.png"), "--model", str(files / "digits.keras"),
                              "--methods", "gradcam,occlusion", "--class", "7", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["class"] == 7 and list(data["methods"]) == ["gradcam", "occlusion"]
    assert "sanity" not in out and "randomized_similarity" not in data["methods"]["gradcam"]
    code, out, _ = run_main(capsys, str(files / "one.png"), "--model", str(files / "digits.keras"),
                            "--methods", "gradients")
    assert code == 0 and out.startswith("one.png: class ") and "Vanilla gradients" in out


@pytest.mark.parametrize(("args", "message"), [
    (["broken.png", "--model", "digits.keras"],
     "error: broken.png: truncated or corrupt image data (image file is truncated)"),
    (["missing.png", "--model", "digits.keras"], "error: missing.png: no such file"),
    (["one.png", "--model", "nothing.keras"], "error: nothing.keras: no such model file"),
    (["one.png", "--model", "digits.keras", "--untrained"],
     "error: --untrained applies to --model inception only"),
    (["one.png", "--model", "digits.keras", "--class", "10"], "error: --class must be in [0, 10), got 10"),
])
def test_bad_input_is_one_line_and_exit_2(files, capsys, args, message):
    args = [str(files / a) if a.endswith((".png", ".keras")) else a for a in args]
    code, out, err = run_main(capsys, *args)
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [message]


def test_a_file_that_is_not_a_model(files, capsys):
    code, _, err = run_main(capsys, str(files / "one.png"), "--model", str(files / "notes.keras"))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith("error: notes.keras: not a Keras model cnnlab can load (")


def test_unknown_method_is_refused_before_any_work(files):
    proc = cli("explain", str(files / "one.png"), "--model", "inception", "--methods", "gradcam,lime")
    assert proc.returncode == 2
    assert "unknown method lime; choose from gradcam, gradcam++, scorecam" in proc.stderr


@pytest.mark.slow
def test_untrained_inception_from_the_command_line(tmp_path):
    """The real entry point with random weights (works offline), two quick methods."""
    (tmp_path / "cat.jpg").write_bytes(images.sample_photo_bytes("chelsea"))
    proc = cli("explain", str(tmp_path / "cat.jpg"), "--model", "inception", "--untrained",
               "--methods", "gradcam,gradients", "--class", "281", "--json", timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "UNTRAINED" in proc.stderr
    data = json.loads(proc.stdout)
    assert data["untrained"] is True and data["class"] == 281 and data["label"] == "tabby"
    assert data["layer"] == "mixed10"
    for entry in data["methods"].values():
        assert entry["map_shape"] == [299, 299] and 0 <= entry["deletion_auc"] <= 1
