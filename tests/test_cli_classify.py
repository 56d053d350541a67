"""`python -m cnnlab classify` and `python -m cnnlab fetch`, as a user runs them."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from cnnlab.commands import fetch
from cnnlab.vision import images, inception
from tests import ROOT
from tests.local_mirror import serve_directory


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 180):
    full_env = {k: v for k, v in os.environ.items()
                if k not in (inception.ENV_WEIGHTS, inception.ENV_WEIGHTS_NOTOP)}
    full_env.update(TF_CPP_MIN_LOG_LEVEL="2", **(env or {}))
    return subprocess.run([sys.executable, "-m", "cnnlab", *args], capture_output=True,
                          text=True, cwd=ROOT, env=full_env, timeout=timeout)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    (folder / "chelsea.jpg").write_bytes(images.sample_photo_bytes("chelsea"))
    (folder / "rocket.png").write_bytes(images.sample_photo_bytes("rocket", "PNG"))
    (folder / "broken.png").write_bytes(images.sample_photo_bytes("coffee", "PNG")[:5000])
    (folder / "notes.jpg").write_text("not a photo")
    return folder


def test_classify_json_good_files_printed_bad_file_named_exit_2(files, inception_classifier,
                                                                monkeypatch, capsys):
    from cnnlab.__main__ import main

    monkeypatch.setattr(inception, "load_classifier", lambda weights="auto": inception_classifier)
    code = main(["classify", str(files / "chelsea.jpg"), str(files / "broken.png"),
                 str(files / "rocket.png"), "--json", "--top", "5"])
    out, err = capsys.readouterr()
    assert code == 2
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["file"] for line in lines] == ["chelsea.jpg", "rocket.png"]
    for line, name in zip(lines, ("chelsea.jpg", "rocket.png"), strict=True):
        assert line["untrained"] is False and len(line["top"]) == 5
        expected = inception_classifier.classify(images.read_image(files / name), k=5).top
        assert [t["wnid"] for t in line["top"]] == [w for w, _, _ in expected]
        np.testing.assert_allclose([t["probability"] for t in line["top"]],
                                   [p for *_, p in expected], atol=2e-6)
    assert err.strip().splitlines() == [
        "error: broken.png: truncated or corrupt image data (image file is truncated)"]


def test_classify_with_weights_file_from_the_environment(files, inception_weights):
    """The real entry point, weights named by CNNLAB_INCEPTION_WEIGHTS, one good file."""
    proc = cli("classify", str(files / "rocket.png"), "--top", "2",
               env={inception.ENV_WEIGHTS: str(inception_weights)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout.splitlines()
    assert out[0].startswith("rocket.png  (") and len(out) == 3


def test_classify_text_output(files, inception_classifier, monkeypatch, capsys):
    from cnnlab.__main__ import main

    monkeypatch.setattr(inception, "load_classifier", lambda weights="auto": inception_classifier)
    assert main(["classify", str(files / "chelsea.jpg"), "--top", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("chelsea.jpg  (") and out[0].endswith(" ms)")
    top = inception_classifier.classify(images.read_image(files / "chelsea.jpg"), k=3).top
    assert len(out) == 4
    for line, (wnid, label, prob) in zip(out[1:], top, strict=True):
        assert label in line and wnid in line and f"{prob * 100:6.2f}%" in line


def test_classify_only_bad_files_needs_no_model(files):
    proc = cli("classify", str(files / "notes.jpg"), str(files / "missing.gif"))
    assert proc.returncode == 2 and proc.stdout == ""
    assert "error: notes.jpg: not an image" in proc.stderr
    assert "error: missing.gif: no such file" in proc.stderr


def test_classify_streams_one_file_at_a_time(files, monkeypatch, capsys):
    """Read, classify, print, then the next file: never every file decoded first."""
    from cnnlab.__main__ import main

    events: list[str] = []
    read_image = images.read_image

    def reading(path, **kwargs):
        events.append(f"read {os.path.basename(path)}")
        return read_image(path, **kwargs)

    class Recorder:
        untrained = True

        def classify(self, img, name, k=5):
            events.append(f"classify {name}")
            return inception.Classification(name, None, None, [("n0", "thing", 1.0)], 0.0, [0])

    monkeypatch.setattr(images, "read_image", reading)
    monkeypatch.setattr(inception, "load_classifier", lambda weights="auto": Recorder())
    paths = [str(files / n) for n in ("chelsea.jpg", "notes.jpg", "rocket.png", "chelsea.jpg")]
    assert main(["classify", *paths, "--json"]) == 2
    assert events == ["read chelsea.jpg", "classify chelsea.jpg", "read notes.jpg",
                      "read rocket.png", "classify rocket.png", "read chelsea.jpg",
                      "classify chelsea.jpg"]
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 3 and err.count("\n") == 1 and "notes.jpg" in err


def test_classify_without_weights_says_how_to_get_them(files, tmp_path):
    proc = cli("classify", str(files / "chelsea.jpg"), env={"KERAS_HOME": str(tmp_path)})
    assert proc.returncode == 1 and proc.stdout == ""
    assert "error: The Inception v3 ImageNet weights" in proc.stderr
    assert "python -m cnnlab fetch" in proc.stderr


def test_classify_rejects_bad_top(files):
    proc = cli("classify", str(files / "chelsea.jpg"), "--top", "0")
    assert proc.returncode == 2 and "--top must be between 1 and 1000" in proc.stderr


# ---------------------------------------------------------------- fetch

def test_fetch_offline_names_every_failure(tmp_path, monkeypatch, capsys):
    from cnnlab.__main__ import main

    monkeypatch.setattr(inception, "keras_home", lambda: tmp_path)  # an empty cache
    assert main(["fetch", "--mirror", "http://127.0.0.1:9/"]) == 1  # nothing listens there
    out, err = capsys.readouterr()
    failed = [line for line in out.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 7
    for name in ("inception_v3_weights_tf_dim_ordering_tf_kernels.h5", "_notop.h5", "mnist.npz",
                 "train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        assert any(name in line for line in failed), name
    assert "error: 7 of 7 files could not be fetched" in err
    assert main(["fetch", "--check"]) == 1
    assert capsys.readouterr().out.count("missing ") == 7


def test_fetch_downloads_verifies_and_reports_present(tmp_path, monkeypatch, capsys):
    served = tmp_path / "mirror"
    served.mkdir()
    payloads = {name: np.random.default_rng(i).bytes(50_000 + i)
                for i, name in enumerate(("a.h5", "b.npz"))}
    for name, data in payloads.items():
        (served / name).write_bytes(data)

    with serve_directory(served) as base:
        cache = tmp_path / "cache"
        items = [fetch.Download("Inception v3 weights (top)", "a.h5", str(cache), base + "a.h5",
                                hashlib.md5(payloads["a.h5"]).hexdigest(), "test"),
                 fetch.Download("MNIST", "b.npz", str(cache), base + "b.npz",
                                hashlib.sha256(payloads["b.npz"]).hexdigest(), "test")]
        monkeypatch.setattr(fetch, "catalogue", lambda mirror=None: items)
        from cnnlab.__main__ import main

        assert main(["fetch"]) == 0
        out = capsys.readouterr().out
        assert "fetched   Inception v3 weights (top): a.h5 (checksum verified)" in out
        assert (cache / "b.npz").read_bytes() == payloads["b.npz"]
        assert main(["fetch", "--check"]) == 0
        assert capsys.readouterr().out.count("present ") == 2
        assert main(["fetch", "--only", "mnist"]) == 0
        assert "a.h5" not in capsys.readouterr().out
        (cache / "a.h5").write_bytes(b"corrupted")
        assert main(["fetch", "--check"]) == 1
        assert "corrupt   Inception v3 weights (top): a.h5" in capsys.readouterr().out
