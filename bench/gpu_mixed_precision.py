"""Mixed precision on a GPU: the app's training job (cnnlab.train.jobs) on full Fashion-MNIST with
float32 and with mixed_float16, one process, same seed and data.

Prints images/s, test accuracy and the layers' compute/variable dtypes for both policies, and
the calculator's predicted training memory for both. Last line: `ratio=` mixed/float32
throughput.

Runs on any Keras 3 backend (KERAS_BACKEND=tensorflow|jax|torch). On a CPU, mixed precision
is emulated and slow: this benchmark is meant for a GPU machine.

    EPOCHS=10 FASHION_DIR=/usr/share/datasets/fashion-mnist python bench/gpu_mixed_precision.py
"""

from __future__ import annotations

import os

from cnnlab.train.config import TrainConfig
from cnnlab.train.datasets import DEBIAN_FASHION_DIR, fashion_from_idx
from cnnlab.train.jobs import JobState
from cnnlab.train.manager import JobManager
from cnnlab.train.model import job_for


def main() -> None:
    import keras

    epochs = int(os.environ.get("EPOCHS", "10"))
    dataset = fashion_from_idx(os.environ.get("FASHION_DIR", DEBIAN_FASHION_DIR))
    if os.environ.get("LIMIT"):  # a quick smoke run on part of the data
        from dataclasses import replace

        n = int(os.environ["LIMIT"])
        dataset = replace(dataset, x_train=dataset.x_train[:n], y_train=dataset.y_train[:n],
                          x_test=dataset.x_test[:n], y_test=dataset.y_test[:n])
    print(f"backend={keras.backend.backend()} devices="
          f"{[str(d) for d in __import__('jax').devices()] if keras.backend.backend() == 'jax' else '-'}")
    print(f"data: {dataset.source} train={len(dataset.x_train)} test={len(dataset.x_test)}")
    manager = JobManager(max_concurrent=1)
    throughput = {}
    for mixed in (False, True):
        config = TrainConfig(dataset="fashion_mnist", epochs=epochs, mixed_precision=mixed,
                             batch_size=int(os.environ.get("BATCH", "64")))
        job = job_for(config, dataset)
        manager.submit(f"bench-{mixed}", job)
        job.wait()
        snap = job.snapshot()
        if snap.state != JobState.DONE:
            raise SystemExit(f"{config.dtype_policy}: {snap.state} {snap.error}")
        dtypes = sorted({(layer.name, layer.compute_dtype, getattr(layer, "variable_dtype", "-"))
                         for layer in job.model.layers if layer.weights})
        stats = config.stats()
        throughput[mixed] = snap.images_per_second
        last = snap.epochs_log[-1]
        print(f"{config.dtype_policy}: {snap.images_per_second:.0f} img/s, "
              f"train {snap.elapsed_s:.1f} s, test_accuracy={snap.result.get('test_accuracy'):.4f}, "
              f"val_accuracy={last.get('val_accuracy'):.4f}")
        print(f"  layer dtypes (compute, variables): {dtypes}")
        print(f"  calculator: training batch {config.batch_size} needs "
              f"{stats.training_bytes / 2**20:.2f} MiB")
    print(f"ratio={throughput[True] / throughput[False]:.2f}")


if __name__ == "__main__":
    main()
