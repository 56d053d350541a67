"""Which Ray cluster trains cnnlab's jobs, and what each job asks of it: read from the
environment, checked once, refused in one line.

    CNNLAB_RAY_ADDRESS    unset: no Ray (jobs run in threads of the server, the default)
                          local: start a Ray instance on this machine
                          auto, HOST:PORT, ray://HOST:PORT: join that cluster
    CNNLAB_RAY_FALLBACK   threads: if the cluster cannot be reached, say so once and train
                          in threads; unset: refuse to train, with the reason
    CNNLAB_RAY_CPUS       CPUs each job requests (default 1)
    CNNLAB_RAY_GPUS       GPUs each job requests (default 0; e.g. 1 or 0.5 on GPU nodes)

Everything cnnlab creates in the cluster lives in the namespace "cnnlab". Ray is imported
only when a cluster is asked for.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
from collections.abc import Callable

from cnnlab.train.jobs import JobError

NAMESPACE = "cnnlab"
# Passed on to the workers, which read them when they load data or import Keras (with
# every CNNLAB_* setting but the cluster's own).
FORWARDED_ENV = ("KERAS_HOME", "TF_CPP_MIN_LOG_LEVEL")
_CONNECT_TIMEOUT_S = 3.0


class ClusterUnreachable(JobError):
    """The Ray cluster named by CNNLAB_RAY_ADDRESS cannot be reached (one line)."""


def ray_address() -> str | None:
    """CNNLAB_RAY_ADDRESS, or None: train in threads of this process."""
    return os.environ.get("CNNLAB_RAY_ADDRESS", "").strip() or None


def fallback_to_threads() -> bool:
    return os.environ.get("CNNLAB_RAY_FALLBACK", "").strip().lower() == "threads"


def _number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise ClusterUnreachable(f"{name} must be a number, got {raw!r}") from None
    if value < 0:
        raise ClusterUnreachable(f"{name} must be 0 or more, got {raw!r}")
    return value


def job_resources() -> dict[str, float]:
    """What one training job asks the cluster for: a job waits (queued) until a node has it."""
    return {"num_cpus": _number("CNNLAB_RAY_CPUS", 1.0),
            "num_gpus": _number("CNNLAB_RAY_GPUS", 0.0)}


def forwarded_env() -> dict[str, str]:
    """The environment the workers need to train as this server would (their runtime_env)."""
    return {k: v for k, v in os.environ.items()
            if k in FORWARDED_ENV or (k.startswith("CNNLAB_") and not k.startswith("CNNLAB_RAY_"))}


def unreachable_message(address: str, reason: str) -> str:
    reason = " ".join(str(reason).split())[:200]
    return (f"cannot reach the Ray cluster at {address!r} (CNNLAB_RAY_ADDRESS): {reason}. "
            "Start one with `ray start --head`, fix the address, or set "
            "CNNLAB_RAY_FALLBACK=threads to train in this server's threads.")


def _check_port(address: str) -> None:
    """A cluster address that cannot even be connected to fails in seconds, not minutes."""
    host_port = address.removeprefix("ray://")
    host, _, port = host_port.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterUnreachable(unreachable_message(
            address, "expected local, auto, HOST:PORT or ray://HOST:PORT"))
    try:
        socket.create_connection((host, int(port)), timeout=_CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise ClusterUnreachable(unreachable_message(
            address, f"nothing answers on {host}:{port} ({exc.strerror or exc})")) from None


def connect(address: str) -> None:
    """Join (or, for "local", start) the cluster, once per process. Raises ClusterUnreachable."""
    import ray

    if address not in ("local", "auto"):
        _check_port(address)
    if ray.is_initialized():
        return
    # Worker output stays in the cluster's logs (/tmp/ray/session_latest/logs): on the
    # driver's stdout it would mix with `cnnlab train --json`.
    options = {"namespace": NAMESPACE, "log_to_driver": False}
    try:
        if address == "local":
            _start_local(lambda: ray.init(include_dashboard=False, **options))
        else:
            ray.init(address=address, **options)
    except Exception as exc:  # noqa: BLE001 - ConnectionError, RuntimeError, ValueError...
        raise ClusterUnreachable(unreachable_message(address, exc)) from None


def _start_local(init: Callable[[], object]) -> None:
    """Start this machine's Ray instance from a thread that lives as long as the process.

    Ray's node processes die with the thread that started them (PR_SET_PDEATHSIG is a
    thread's, not a process's): started from a Streamlit script run, they would be killed
    when that run ends. So a daemon thread starts them and stays; when the server exits,
    they go with it."""
    if threading.current_thread() is threading.main_thread():
        init()
        return
    started: list[BaseException | None] = []
    ready = threading.Event()

    def keeper() -> None:
        try:
            init()
            started.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            started.append(exc)
        ready.set()
        if started[0] is None:
            threading.Event().wait()          # forever: Ray's processes are this thread's

    threading.Thread(target=keeper, name="cnnlab-ray-node", daemon=True).start()
    ready.wait()
    if started[0] is not None:
        raise started[0]


def warn(message: str) -> None:
    """One line on the server's stderr (the page shows the same line where it matters)."""
    print(f"cnnlab: {message}", file=sys.stderr, flush=True)
