"""Serving a class: `make run` serves with Streamlit's file watcher off, `make dev` with it on,
and bench/load.py's protocol client (bench/load_client.py) still drives a real server, so the
benchmark cannot rot.

The settings are read through Streamlit's own config loader (in a child process, from the repo
root, with the flags of the command `make -n` prints), so precedence is Streamlit's, not ours.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import shlex
import subprocess
import sys
import tomllib

import pytest

from tests import ROOT

WATCH_OPTIONS = ("server.fileWatcherType", "server.runOnSave")

EFFECTIVE = """
import json, sys
from streamlit import config
flags = json.loads(sys.argv[1])
config.get_config_options(force_reparse=True, options_from_flags=flags)
print(json.dumps({name: config.get_option(name) for name in flags["_wanted"]}))
"""


def make_command(target: str) -> list[str]:
    """The `streamlit run` command `make TARGET` runs (from `make -n`, nothing executed)."""
    out = subprocess.run(["make", "-s", "-n", target], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, check=True).stdout
    lines = [line for line in out.splitlines() if "streamlit run app.py" in line]
    assert len(lines) == 1, out
    return shlex.split(lines[0])


def effective_options(command: list[str]) -> dict:
    """fileWatcherType and runOnSave as Streamlit resolves them for this command line."""
    args = command[command.index("app.py") + 1:]
    flags = {}
    for name, value in zip(args[::2], args[1::2], strict=True):
        assert name.startswith("--"), command
        flags[name[2:]] = {"true": True, "false": False}.get(value, value)
    flags["_wanted"] = list(WATCH_OPTIONS)
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLIT_")}
    out = subprocess.run([sys.executable, "-c", EFFECTIVE, json.dumps(flags)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_config_file_turns_the_watcher_and_run_on_save_off():
    server = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["server"]
    assert server["fileWatcherType"] == "none"
    assert server["runOnSave"] is False


def test_make_run_serves_without_the_watcher_and_make_dev_with_it():
    run, dev = make_command("run"), make_command("dev")
    assert effective_options(run) == {"server.fileWatcherType": "none",
                                      "server.runOnSave": False}
    assert effective_options(dev) == {"server.fileWatcherType": "auto",
                                      "server.runOnSave": True}


def load_bench(name: str = "load_client"):
    """bench/NAME.py as a module (bench/ is no package: `python bench/load.py` imports its
    sibling load_client by name, so that name is registered first)."""
    for module_name in ("load_client", name):
        if module_name not in sys.modules:
            spec = importlib.util.spec_from_file_location(module_name,
                                                          ROOT / "bench" / f"{module_name}.py")
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
    return sys.modules[name]


def test_the_benchmark_serves_as_make_run_and_make_dev_do():
    load = load_bench()
    for target, watcher in (("run", False), ("dev", True)):
        make_args = make_command(target)[2:]             # after `streamlit run`
        bench_args = load.serve_command(8501, watcher)[4:]   # after `python -m streamlit run`
        assert bench_args[:len(make_args)] == make_args
        assert bench_args[len(make_args):] == ["--server.address", "127.0.0.1"]


def test_protocol_client_opens_a_page_in_two_sessions_and_reruns_it():
    load = load_bench()
    with load.serve() as server:
        at_once = asyncio.run(load.open_at_once(server.url, "calculator", 2, timeout=120))
        again = asyncio.run(load.first_and_reruns(server.url, "calculator", 1, 2))
        proc = server.proc
    assert proc.poll() is not None, "the server must be stopped"
    assert at_once["served"] == 2 and at_once["failures"] == []
    assert at_once["exceptions"] == [] and again["exceptions"] == []
    for run in at_once["runs"]:
        assert "Calculator" in run.text().splitlines()          # the page's title
        assert "Parameters" in run.text()
    assert len(again["first"]) == 1 and len(again["reruns"]) == 2


def test_benchmark_refuses_an_unknown_page():
    load = load_bench("load")
    with pytest.raises(SystemExit, match="unknown page 'nope'"):
        load.main(["--pages", "nope"])


@pytest.mark.slow
def test_protocol_client_presses_train_in_two_sessions_with_one_slot():
    """The --train scenario end to end: with one slot, the second session waits with its
    queue position shown; both runs finish with the same figures (same seed)."""
    load = load_bench()
    with load.serve(env={"CNNLAB_MAX_JOBS": "1"}) as server:
        outcomes = asyncio.run(load.class_presses_train(server.url, 2, 1, timeout=600))
    assert [o.error for o in outcomes] == [None, None]
    assert all(o.slots == 1 for o in outcomes)
    assert sorted(bool(o.queue_positions) for o in outcomes) == [False, True]
    assert [p for o in outcomes for p in o.queue_positions][0] == 1
    assert outcomes[0].test_accuracy == outcomes[1].test_accuracy is not None
    assert all(len(o.run_ids) == 1 for o in outcomes)
    assert outcomes[0].run_ids != outcomes[1].run_ids
    assert all(o.exceptions == [] and not o.saw_a_run_before_pressing for o in outcomes)


FREED_TENSORS = """
import gc, json, os
from streamlit.testing.v1 import AppTest
at = AppTest.from_file("app.py", default_timeout=60)
at.run()                                   # the app opens, as a first visitor's session does
import tensorflow as tf

def rss():
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmRSS")).split()[1]) >> 10

x = tf.matmul(tf.ones((500, 500)), tf.ones((500, 500))); del x    # the kernels loaded
before = rss()
a = tf.random.uniform((5000, 5000)); b = tf.matmul(a, a) + 1.0     # 100 MB tensors, a run's size
during = rss()
del a, b
gc.collect()
print(json.dumps({"setting": os.environ.get("TF_ONEDNN_USE_SYSTEM_ALLOCATOR"),
                  "exceptions": [e.value for e in at.exception],
                  "before": before, "during": during, "after": rss()}))
"""


def freed_tensors(**env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if k != "TF_ONEDNN_USE_SYSTEM_ALLOCATOR"}
    proc = subprocess.run([sys.executable, "-c", FREED_TENSORS], capture_output=True, text=True,
                          cwd=ROOT, env={**clean, "TF_CPP_MIN_LOG_LEVEL": "2",
                                         "CNNLAB_WARMUP": "0", **env}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_served_app_gives_a_runs_tensor_memory_back():
    """Issue 10: the app sets `TF_ONEDNN_USE_SYSTEM_ALLOCATOR=1` before TensorFlow loads, so
    the memory of a run's freed tensors goes back to the system; oneDNN's own allocator (what
    a user's explicit `=0` keeps) pools it for the life of the process."""
    served = freed_tensors()
    assert served["setting"] == "1" and not served["exceptions"]
    assert served["during"] - served["before"] > 150                # the tensors were there
    assert served["after"] - served["before"] < 30, served          # and their memory is back
    pooled = freed_tensors(TF_ONEDNN_USE_SYSTEM_ALLOCATOR="0")      # the user's setting wins
    assert pooled["setting"] == "0"
    assert pooled["after"] - pooled["before"] > 150, pooled         # kept by the pool


def test_returnable_memory_keeps_the_users_settings():
    from cnnlab.train.streaming import SYSTEM_ALLOCATOR_ENV, returnable_memory

    env: dict[str, str] = {}
    returnable_memory(env)
    assert env == {SYSTEM_ALLOCATOR_ENV: "1"}
    mine = {SYSTEM_ALLOCATOR_ENV: "0", "MALLOC_ARENA_MAX": "8"}
    assert returnable_memory(mine) is False                  # glibc reads the user's cap itself
    assert mine == {SYSTEM_ALLOCATOR_ENV: "0", "MALLOC_ARENA_MAX": "8"}
