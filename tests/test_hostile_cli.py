"""Issue 15, the CLI rows: every hostile command ends with exit status 2, exactly one line on
stderr and no traceback, in a real process. (Time and memory: bench/hostile.py.)"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.test_cli_classify import cli


def assert_one_line_refusal(proc, *words: str) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-3000:]
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def hostile_files(tmp_path) -> Path:
    os.mkfifo(tmp_path / "x.png")  # nobody ever writes: a plain open() would hang
    with open(tmp_path / "huge.jpg", "wb") as f:
        f.truncate(25 * 1024 * 1024)  # sparse: 25 MB long, nothing on disk
    (tmp_path / "evil\nerror: fake.png").write_bytes(b"not an image at all")
    (tmp_path / "folder.png").mkdir()
    return tmp_path


def test_classify_dev_zero(hostile_files):
    line = assert_one_line_refusal(cli("classify", "/dev/zero", timeout=60),
                                   "character device", "not a regular file")
    assert line == "error: zero: is a character device, not a regular file"


def test_classify_a_fifo_named_like_an_image(hostile_files):
    assert_one_line_refusal(cli("classify", str(hostile_files / "x.png"), timeout=60),
                            "error: x.png: is a FIFO", "not a regular file")


def test_classify_a_huge_file_is_refused_by_size(hostile_files):
    assert_one_line_refusal(cli("classify", str(hostile_files / "huge.jpg"), timeout=60),
                            "huge.jpg", "25.0 MB", "the limit is 20.0 MB")


def test_a_newline_in_a_name_cannot_split_the_error(hostile_files):
    line = assert_one_line_refusal(
        cli("classify", str(hostile_files / "evil\nerror: fake.png"), timeout=60))
    assert line.startswith("error: 'evil\\nerror: fake.png': not an image")


def test_classify_a_directory(hostile_files):
    assert_one_line_refusal(cli("classify", str(hostile_files / "folder.png"), timeout=60),
                            "folder.png: is a directory")


def test_several_bad_files_one_line_each(hostile_files):
    proc = cli("classify", "/dev/zero", str(hostile_files / "x.png"),
               str(hostile_files / "evil\nerror: fake.png"), timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 3 and proc.stdout == ""


@pytest.mark.parametrize("argv", [
    ["--gpu", "inf"], ["--gpu", "1e300"], ["--layer", "conv:1" + "0" * 400 + ":3"],
], ids=["gpu-inf", "gpu-1e300", "filters-401-digits"])
def test_calc_numbers_out_of_range(argv):
    flags = ["--input", "8x8x3"] + (["--layer", "conv:8:3"] if argv[0] == "--gpu" else [])
    assert_one_line_refusal(cli("calc", *flags, *argv, timeout=120))


def test_train_seed_out_of_range():
    for seed in (str(2**64), "-1", "1e3", "9" * 5000):
        assert_one_line_refusal(cli("train", "--seed", seed, "--epochs", "1", timeout=300),
                                "--seed")
