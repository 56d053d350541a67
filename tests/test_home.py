from tests.apptest import app_at, run_isolated


def test_home_links_every_page():
    at = app_at()
    assert not at.exception
    assert at.title[0].value == "cnnlab"
    text = " ".join(c.value for c in at.caption)
    for word in ("AlexNet", "Parameters", "MNIST", "Inception v3", "Fine-tune"):
        assert word in text


def test_home_does_not_import_tensorflow():
    result = run_isolated("pages/home.py")
    assert result["exceptions"] == []
    assert result["tensorflow"] is False
    assert result["keras"] is False


def test_cli_help_lists_commands():
    import subprocess
    import sys

    from tests import ROOT

    proc = subprocess.run([sys.executable, "-m", "cnnlab", "--help"], capture_output=True,
                          text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0
    import re

    from cnnlab.__main__ import COMMANDS

    listed = dict(re.findall(r"^    (\w+)\s+(.+)$", proc.stdout, flags=re.M))
    assert listed == COMMANDS


def test_a_missing_command_module_fails_loudly(monkeypatch):
    import pytest

    from cnnlab import __main__

    monkeypatch.setitem(__main__.COMMANDS, "ghost", "not here")
    with pytest.raises(ModuleNotFoundError, match="cnnlab.commands.ghost"):
        __main__.build_parser()


def test_usage_errors_are_one_line_exit_2():
    import subprocess
    import sys

    from tests import ROOT

    for args, expected in [
        (["calc", "--input", "8x8x3", "--layer", "conv:8:3", "--gpu", "-inf"],
         "--gpu: must be a positive number"),
        (["calc", "--gpu"], "expected one argument"),
        (["calc", "--bogus"], "unrecognized arguments: --bogus"),
        (["nonsense"], "invalid choice"),
    ]:
        proc = subprocess.run([sys.executable, "-m", "cnnlab", *args], capture_output=True,
                              text=True, cwd=ROOT, timeout=60)
        assert proc.returncode == 2, args
        assert proc.stderr.count("\n") == 1 and expected in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr and proc.stdout == ""
