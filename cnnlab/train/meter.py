"""How far a training run has come, how fast it goes and when it will end: a pure meter.

A `TrainingMeter` is fed the events of one `model.fit` (training began, an epoch began, a
batch ended, an epoch ended) and read as a `MeterReading`. It holds no lock, starts no
thread and never imports Keras: `cnnlab.train.jobs.TrainingJob` calls it under its own lock
from the Keras callback, and tests drive it with a fake clock.

What it measures:
- progress: batches done / (batches per epoch x epochs);
- images/s: images of the training batches / the time spent in them. Validation after each
  epoch is not counted: it is the speed of training itself;
- ETA: the batches left x the mean time of a batch so far, plus the epochs left x the mean
  validation time of an epoch so far;
- each batch's own loss: Keras logs the running mean over the epoch (weighted by batch
  size), so the loss of batch n is (mean_n x seen_n - mean_(n-1) x seen_(n-1)) / images_n;
- the whole curve at a bounded cost: past `max_batch_points`, old batches are merged into
  buckets that keep their mean, min and max (`compact`), so a long run keeps its start.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class BatchPoint:
    step: int          # global batch index, from 1
    epoch: int         # from 1
    batch: int         # within the epoch, from 1
    loss: float        # the loss of this batch alone (derived from Keras's running mean)
    mean_loss: float   # Keras's running mean over the epoch so far
    metrics: dict      # other running-mean metrics from the logs (e.g. accuracy)
    time_s: float      # seconds since training started
    # A bucket of `span` consecutive batches merged to bound a long run's memory: `loss` is
    # their mean, `loss_min`/`loss_max` the extremes, `step`..`last_step` the batches it covers.
    span: int = 1
    loss_min: float | None = None
    loss_max: float | None = None
    last_step: int | None = None

    @property
    def low(self) -> float:
        return self.loss if self.loss_min is None else self.loss_min

    @property
    def high(self) -> float:
        return self.loss if self.loss_max is None else self.loss_max


def merge_points(a: BatchPoint, b: BatchPoint) -> BatchPoint:
    """Two consecutive points (or buckets) as one bucket: mean, min and max kept."""
    span = a.span + b.span
    mean = (a.loss * a.span + b.loss * b.span) / span
    metrics = {k: (a.metrics[k] * a.span + b.metrics[k] * b.span) / span
               for k in a.metrics.keys() & b.metrics.keys()
               if isinstance(a.metrics[k], (int, float)) and isinstance(b.metrics[k], (int, float))}
    return BatchPoint(a.step, a.epoch, a.batch, mean, b.mean_loss, metrics, b.time_s, span,
                      min(a.low, b.low), max(a.high, b.high), b.last_step or b.step)


def compact(points: list[BatchPoint], cap: int) -> list[BatchPoint]:
    """`points` kept under `cap`: the older half is merged pairwise into buckets (again and
    again as a run grows, so old batches end up in wide buckets and recent ones stay raw).
    The first point is never merged: a curve always starts where training started."""
    if len(points) < cap:
        return points
    half = len(points) // 2
    old = points[1:half]
    merged = [merge_points(old[i], old[i + 1]) if i + 1 < len(old) else old[i]
              for i in range(0, len(old), 2)]
    return [points[0], *merged, *points[half:]]


@dataclass(frozen=True)
class MeterReading:
    epoch: int                       # epochs started, from 1 (0 before the first)
    epochs: int
    batch: int                       # batches finished in the current epoch
    steps_per_epoch: int | None
    progress: float                  # 0..1 over the whole training
    eta_s: float | None              # None unless training and at least one batch is done
    images_per_second: float | None  # None before the first batch
    elapsed_s: float                 # since training began; frozen once it ended
    batches: tuple[BatchPoint, ...]
    epochs_log: tuple[dict, ...]     # per-epoch logs: epoch, loss, accuracy, val_* ..., partial


class TrainingMeter:
    """Counters of one training run. Not thread-safe: its owner serialises the calls."""

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 max_batch_points: int = 20_000) -> None:
        self._clock = clock
        # The plan (known once the job's build() has run).
        self._epochs = 0
        self._steps: int | None = None           # batches per epoch
        self._samples: int | None = None         # images per epoch
        self._batch_size: int | None = None
        # Where training is.
        self._epoch = 0
        self._batch = 0
        self._step = 0
        self._batches: list[BatchPoint] = []
        self._max_batch_points = max(int(max_batch_points), 8)
        self._epochs_log: list[dict] = []
        # Time.
        self._t_start: float | None = None
        self._t_end: float | None = None
        self._t_batch_start: float | None = None   # when the batch now running began
        self._train_time = 0.0                     # seconds in training batches (not validation)
        self._train_images = 0
        self._epoch_val_time: list[float] = []     # validation seconds of each finished epoch
        # Keras's running mean of the loss within the epoch, after the previous batch.
        self._prev_mean = 0.0
        self._prev_seen = 0

    # ---- events ---------------------------------------------------------------------------------
    def plan(self, epochs: int, steps_per_epoch: int | None, samples_per_epoch: int | None,
             batch_size: int | None) -> None:
        """What fit will do: epochs, batches per epoch, images per epoch, batch size."""
        self._epochs = int(epochs)
        self._steps = steps_per_epoch
        self._samples = samples_per_epoch
        self._batch_size = batch_size

    def train_began(self) -> None:
        self._t_start = self._clock()
        self._t_batch_start = self._t_start

    def epoch_began(self, epoch: int) -> None:
        """`epoch` counts from 1."""
        self._epoch = epoch
        self._batch = 0
        self._t_batch_start = self._clock()
        self._prev_mean, self._prev_seen = 0.0, 0

    def images_in_batch(self, batch: int) -> int:
        """Images in batch `batch` (from 1) of an epoch: the last one may be smaller."""
        bs, n, steps = self._batch_size, self._samples, self._steps
        if bs and n and steps and batch == steps:
            return n - bs * (steps - 1)
        return bs or 1

    def batch_ended(self, batch: int, mean_loss: float, metrics: dict) -> BatchPoint:
        """Batch `batch` (from 1) of the current epoch ended; `mean_loss` is Keras's running
        mean over the epoch so far."""
        now = self._clock()
        images = self.images_in_batch(batch)
        seen = self._prev_seen + images
        raw = ((mean_loss * seen - self._prev_mean * self._prev_seen) / images
               if images else mean_loss)
        self._prev_mean, self._prev_seen = mean_loss, seen
        loss = max(raw, 0.0) if math.isfinite(raw) else mean_loss
        self._step += 1
        self._batch = batch
        if self._t_batch_start is not None:
            self._train_time += now - self._t_batch_start
        self._train_images += images
        self._t_batch_start = now
        point = BatchPoint(self._step, self._epoch, batch, loss, mean_loss, metrics,
                           now - (self._t_start or now))
        self._batches.append(point)
        self._batches = compact(self._batches, self._max_batch_points)
        return point

    def epoch_ended(self, epoch: int, logs: dict, partial: bool = False) -> None:
        """The epoch's logs (validation included). `partial`: Stop cut its batches or its
        validation short."""
        now = self._clock()
        self._epochs_log.append({"epoch": epoch, **logs, "partial": partial})
        if self._t_batch_start is not None:     # the last batch's end: validation ran since
            self._epoch_val_time.append(now - self._t_batch_start)
        self._t_batch_start = now

    def finished(self) -> None:
        """Training ended (or never began): the elapsed time stops."""
        if self._t_start is not None and self._t_end is None:
            self._t_end = self._clock()

    # ---- reading --------------------------------------------------------------------------------
    @property
    def epochs(self) -> int:
        return self._epochs

    def reading(self, *, training: bool, complete: bool) -> MeterReading:
        """The numbers to show. `training`: the run is going on (ETA only then); `complete`:
        it ran to its end (progress 1 even if the batch count was not known)."""
        now = self._t_end or self._clock()
        elapsed = (now - self._t_start) if self._t_start else 0.0
        total = (self._steps or 0) * self._epochs
        done = self._step
        progress = 1.0 if complete else (min(done / total, 1.0) if total else 0.0)
        ips = (self._train_images / self._train_time) if self._train_time > 0 else None
        eta = None
        if training and done and total:
            per_batch = self._train_time / done
            val = (sum(self._epoch_val_time) / len(self._epoch_val_time)
                   if self._epoch_val_time else 0.0)
            epochs_left = self._epochs - len(self._epochs_log)
            eta = max(total - done, 0) * per_batch + max(epochs_left, 0) * val
        return MeterReading(
            epoch=self._epoch, epochs=self._epochs, batch=self._batch,
            steps_per_epoch=self._steps, progress=progress, eta_s=eta,
            images_per_second=ips, elapsed_s=elapsed, batches=tuple(self._batches),
            epochs_log=tuple(dict(e) for e in self._epochs_log))
