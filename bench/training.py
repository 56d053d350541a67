"""What live streaming costs: the app's training job vs plain `model.fit`, same model, data, process.

Both runs build the seed's CNN (same seed) and train it on the same arrays (the MNIST data
cnnlab finds: full MNIST when Keras has it, else the offline 5,000-digit sample) with the
same batch size, epochs and validation set. The job runs in its worker thread with the
streaming callback recording every batch and checking the stop Event; plain fit runs on the
main thread with verbose=0 and no callbacks. Timed: building the model + fit (the job:
submit until it has finished). Runs alternate (fit, job, fit, job, ...) after one warm-up
of each, so both see the same machine; the median of each is reported.

Last line: ratio=<job images/s / plain fit images/s>. Goal: >= 0.95.
"""

from __future__ import annotations

import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

EPOCHS = int(os.environ.get("BENCH_EPOCHS", "2"))
REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))


def main() -> int:
    from cnnlab.train.config import TrainConfig
    from cnnlab.train.datasets import load_dataset
    from cnnlab.train.jobs import JobState, TrainingJob, TrainSetup
    from cnnlab.train.manager import JobManager
    from cnnlab.train.model import build_model, prepare

    config = TrainConfig(epochs=EPOCHS)
    dataset = load_dataset("mnist")
    data = prepare(dataset, config.validation_fraction, config.seed)
    n = len(data.x_train)
    print(f"data: {dataset.describe()}; training on {n:,} images, batch {config.batch_size}, "
          f"{EPOCHS} epoch(s), {REPEATS} timed runs each")

    import keras

    def plain_fit() -> float:
        keras.utils.set_random_seed(config.seed)
        start = time.perf_counter()
        model = build_model(config)
        model.fit(data.x_train, data.y_train, validation_data=(data.x_val, data.y_val),
                  epochs=EPOCHS, batch_size=config.batch_size, verbose=0)
        return time.perf_counter() - start

    manager = JobManager(max_concurrent=1)

    def job_run() -> tuple[float, float]:
        def build() -> TrainSetup:
            return TrainSetup(build_model(config), data.x_train, data.y_train,
                              validation_data=(data.x_val, data.y_val), epochs=EPOCHS,
                              batch_size=config.batch_size)

        start = time.perf_counter()
        job = manager.submit("bench", TrainingJob(build, seed=config.seed))
        job.wait()
        elapsed = time.perf_counter() - start
        snap = job.snapshot()
        assert snap.state == JobState.DONE, snap.error
        assert len(snap.batches) == EPOCHS * snap.steps_per_epoch   # every batch streamed
        return elapsed, snap.images_per_second or 0.0

    plain_fit()          # warm-up: TensorFlow's first trace, thread pools
    job_run()
    plain_times, job_times, job_reported = [], [], []
    for _ in range(REPEATS):
        plain_times.append(plain_fit())
        elapsed, reported = job_run()
        job_times.append(elapsed)
        job_reported.append(reported)
    images = n * EPOCHS
    plain_ips = images / statistics.median(plain_times)
    job_ips = images / statistics.median(job_times)
    print(f"plain model.fit:          {plain_ips:8.0f} images/s  "
          f"(runs: {', '.join(f'{t:.2f}' for t in plain_times)} s)")
    print(f"app job, streaming on:    {job_ips:8.0f} images/s  "
          f"(runs: {', '.join(f'{t:.2f}' for t in job_times)} s)")
    print(f"job's own meter (batches only, no validation): "
          f"{statistics.median(job_reported):.0f} images/s")
    print(f"ratio={job_ips / plain_ips:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
