"""Runs per minute: the server's threads against a Ray cluster of two nodes, same runs, one run.

A class pressing Train is a queue of identical runs: the seed's CNN, BENCH_EPOCHS epoch(s)
on the offline MNIST sample (CNNLAB_OFFLINE=1), seeds 0..BENCH_RUNS-1, submitted at once by
BENCH_RUNS owners. The same runs go to:

- threads: `JobManager(max_concurrent=2)`, in this process (what `make run` serves);
- ray: a cluster this script starts on this machine, `ray start --head --num-cpus 1` and a
  second node `ray start --address ... --num-cpus 1` (own temp dirs and ports), each run
  asking for 1 CPU (`CNNLAB_RAY_CPUS`), so both backends train 2 runs at a time.

Each backend first trains one untimed run per slot (TensorFlow's import and first trace, in
this process or in each node's worker), then the timed batch: from the first submit until
the last run has finished. (Ray starts a new worker process for each run that had to queue
and retires the idle ones, so each of those imports TensorFlow again: it prints how many
worker processes trained the batch.) Printed per backend: wall time, runs per minute, and the
slot-seconds per run (wall x slots / runs: what one run costs one slot, queueing included),
which the README's "Scaling out" extrapolates from. Everything it starts is stopped.

Last line: ratio=<Ray runs per minute / threads runs per minute>. Two 1-CPU nodes on one
2-core machine can only match the threads; on real nodes the ratio grows with the nodes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CNNLAB_OFFLINE", "1")        # the offline sample, in every worker too
os.environ.setdefault("RAY_AUTH_MODE", "token")     # the bench cluster's token (~/.ray)

RUNS = int(os.environ.get("BENCH_RUNS", "8"))
EPOCHS = int(os.environ.get("BENCH_EPOCHS", "1"))
SLOTS = 2
RAY = str(Path(sys.executable).with_name("ray"))
CLASS_SIZE = 200


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _node(args: list[str], temp: Path, log: Path) -> subprocess.Popen:
    """`ray start --block` (stopped by terminating it), on ports nobody else uses."""
    ports = [f"--{name}={_free_port()}" for name in (
        "node-manager-port", "object-manager-port", "metrics-export-port",
        "dashboard-agent-listen-port", "dashboard-agent-grpc-port", "runtime-env-agent-port")]
    return subprocess.Popen(
        [RAY, "start", "--block", "--num-cpus=1", "--object-store-memory=200000000",
         "--disable-usage-stats", f"--temp-dir={temp}", *ports, *args],
        stdout=log.open("w"), stderr=subprocess.STDOUT)


@contextlib.contextmanager
def two_node_cluster() -> Iterator[str]:
    """Head and second node on this machine; yields the head's address; stops both."""
    import ray

    root = Path(tempfile.mkdtemp(prefix="cnnlab-bench-ray-"))
    port = _free_port()
    nodes = [_node(["--head", f"--port={port}", "--include-dashboard=false",
                    f"--dashboard-port={_free_port()}", f"--ray-client-server-port={_free_port()}"],
                   root / "head", root / "head.log")]
    address = f"127.0.0.1:{port}"
    try:
        _wait_for_port(port, nodes[0], root / "head.log")
        nodes.append(_node([f"--address={address}"], root / "second", root / "second.log"))
        ray.init(address=address, namespace="cnnlab", log_to_driver=False)
        deadline = time.monotonic() + 120
        while ray.cluster_resources().get("CPU", 0) < 2:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the second node did not join; see {root}/second.log")
            time.sleep(0.5)
        yield address
    finally:
        with contextlib.suppress(Exception):
            ray.shutdown()
        for node in reversed(nodes):
            node.terminate()
        for node in reversed(nodes):
            try:
                node.wait(timeout=60)
            except subprocess.TimeoutExpired:
                node.kill()
        shutil.rmtree(root, ignore_errors=True)


def _wait_for_port(port: int, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 120
    while True:
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the head node did not start; see {log}")
        time.sleep(0.5)


def class_of(manager, runs: int, tag: str) -> tuple[float, list[float]]:
    """Submit `runs` runs at once (one owner each); wall seconds until the last has finished,
    and each run's own training seconds."""
    from cnnlab.train.config import TrainConfig
    from cnnlab.train.model import job_for

    start = time.perf_counter()
    jobs = [manager.submit(f"{tag}-{i}", job_for(TrainConfig(epochs=EPOCHS, seed=i)))
            for i in range(runs)]
    for job in jobs:
        job.wait()
    wall = time.perf_counter() - start
    for job in jobs:
        snap = job.snapshot()
        assert snap.state == "done", snap.error
    workers = {(w["node_id"], w["pid"]) for job in jobs if (w := getattr(job, "worker", None))}
    if workers:
        print(f"  {tag}: {runs} runs trained by {len(workers)} worker processes on "
              f"{len({node for node, _ in workers})} nodes", flush=True)
    return wall, [job.snapshot().elapsed_s for job in jobs]


def report(name: str, wall: float, trained: list[float]) -> float:
    per_minute = RUNS / wall * 60
    print(f"{name:8s} {RUNS} runs in {wall:6.1f} s: {per_minute:5.1f} runs/min; "
          f"{wall * SLOTS / RUNS:5.1f} slot-seconds per run (training alone: median "
          f"{statistics.median(trained):.1f} s)", flush=True)
    return per_minute


def main() -> int:
    from cnnlab.train.manager import JobManager

    print(f"{RUNS} runs of the seed CNN, {EPOCHS} epoch(s) on the offline MNIST sample, "
          f"{SLOTS} at a time; this machine: {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}", flush=True)
    threads = JobManager(max_concurrent=SLOTS)
    class_of(threads, SLOTS, "warm-threads")
    wall_threads, trained = class_of(threads, RUNS, "threads")
    threads_rate = report("threads", wall_threads, trained)

    from cnnlab.train.ray_backend import RayJobManager

    with two_node_cluster() as address:
        ray_manager = RayJobManager(address, resources={"num_cpus": 1, "num_gpus": 0})
        class_of(ray_manager, SLOTS, "warm-ray")            # one worker per node imports TF
        wall_ray, trained = class_of(ray_manager, RUNS, "ray")
        ray_rate = report("ray", wall_ray, trained)
    slot_s = wall_ray * SLOTS / RUNS
    print(f"a class of {CLASS_SIZE} on N nodes of c slots: T = ceil({CLASS_SIZE} / (N*c)) x "
          f"{slot_s:.1f} s; with c = 1: " + ", ".join(
              f"N={n}: {-(-CLASS_SIZE // n) * slot_s / 60:.1f} min" for n in (1, 2, 10, 50)))
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    print(f"ratio={ray_rate / threads_rate:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
