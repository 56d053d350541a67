"""Job-runner fixtures for both backends (a pytest plugin, registered in tests/conftest.py).

- `ray_cluster`: a local Ray cluster with 2 CPUs, started once per test session (only when
  a test asks for it) and shut down at the end; its value is the cluster's address, for
  other processes (a second web server, the CLI) to join.
- `job_backend`: "threads" and "ray", so a test taking it runs once per backend.
- `make_manager(slots)`: a job manager of that backend where `slots` jobs train at once
  (Ray: each job asks for 2 / slots of the cluster's 2 CPUs). Shut down after the test.
- `ray_registry`: the name of this session's run registry in the cluster (one registry keeps
  its workers, and their imported TensorFlow, from run to run, as in a real deployment).
"""

from __future__ import annotations

import uuid

import pytest

CLUSTER_CPUS = 2


@pytest.fixture(scope="session")
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=CLUSTER_CPUS, include_dashboard=False, namespace="cnnlab",
             log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="session")
def ray_registry(ray_cluster) -> str:
    return f"test-{uuid.uuid4().hex[:8]}"


# The Ray side of the shared runner tests is slow (each worker imports TensorFlow once);
# tests/test_ray_backend.py keeps Ray in the default run.
@pytest.fixture(params=["threads", pytest.param("ray", marks=pytest.mark.slow)])
def job_backend(request) -> str:
    return request.param


@pytest.fixture
def make_manager(request, job_backend):
    made = []

    def make(slots: int = 2):
        if job_backend == "threads":
            from cnnlab.train.manager import JobManager

            manager = JobManager(max_concurrent=slots)
        else:
            request.getfixturevalue("ray_cluster")
            from cnnlab.train.ray_backend import RayJobManager

            # The session's registry; a manager's runs are forgotten when it shuts down, so
            # each test starts as with a new thread manager.
            manager = RayJobManager("local", resources={"num_cpus": CLUSTER_CPUS / slots,
                                                        "num_gpus": 0},
                                    registry=request.getfixturevalue("ray_registry"))
        made.append(manager)
        return manager

    yield make
    for manager in made:
        manager.shutdown()
