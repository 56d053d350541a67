"""The training meter alone: progress, images/s, ETA and each batch's own loss, on a fake
clock (no threads, no Keras)."""

from __future__ import annotations

import math

import pytest

from cnnlab.train.meter import TrainingMeter


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += seconds


def planned(clock: FakeClock, epochs: int = 2, steps: int = 4, samples: int = 100,
            batch_size: int = 32) -> TrainingMeter:
    meter = TrainingMeter(clock=clock)
    meter.plan(epochs, steps, samples, batch_size)
    return meter


def one_epoch_begun(batches: int, max_batch_points: int) -> TrainingMeter:
    """A meter keeping at most `max_batch_points` points, training and in epoch 1 of 1
    (`batches` batches of one image)."""
    meter = TrainingMeter(clock=FakeClock(), max_batch_points=max_batch_points)
    meter.plan(1, batches, batches, 1)
    meter.train_began()
    meter.epoch_began(1)
    return meter


def run_epoch(meter: TrainingMeter, clock: FakeClock, epoch: int, batch_s: float = 1.0,
              validation_s: float = 0.0, losses=(1.0, 1.0, 1.0, 1.0)) -> None:
    meter.epoch_began(epoch)
    for batch, mean in enumerate(losses, start=1):
        clock.tick(batch_s)
        meter.batch_ended(batch, mean, {"accuracy": 0.5})
    clock.tick(validation_s)
    meter.epoch_ended(epoch, {"loss": losses[-1], "val_loss": 0.9})


def test_before_training_nothing_is_known():
    meter = planned(FakeClock())
    r = meter.reading(training=True, complete=False)
    assert (r.epoch, r.epochs, r.batch, r.steps_per_epoch) == (0, 2, 0, 4)
    assert (r.progress, r.eta_s, r.images_per_second, r.elapsed_s) == (0.0, None, None, 0.0)
    assert r.batches == () and r.epochs_log == ()


def test_the_last_batch_of_an_epoch_is_smaller():
    meter = planned(FakeClock(), steps=4, samples=100, batch_size=32)
    assert [meter.images_in_batch(b) for b in (1, 2, 3, 4)] == [32, 32, 32, 4]
    unknown = TrainingMeter(clock=FakeClock())
    unknown.plan(1, None, None, None)
    assert unknown.images_in_batch(1) == 1


def test_progress_rate_and_eta_leave_validation_out_of_the_rate():
    clock = FakeClock()
    meter = planned(clock)
    meter.train_began()
    run_epoch(meter, clock, 1, batch_s=0.5, validation_s=3.0)
    meter.epoch_began(2)
    clock.tick(0.5)
    meter.batch_ended(1, 1.0, {})
    r = meter.reading(training=True, complete=False)
    assert (r.epoch, r.batch) == (2, 1)
    assert r.progress == pytest.approx(5 / 8)
    # 100 + 32 images in 2.5 s of batches; the 3 s of validation are not training.
    assert r.images_per_second == pytest.approx(132 / 2.5)
    # 3 batches left at 0.5 s, and one more validation like the first (3 s).
    assert r.eta_s == pytest.approx(3 * 0.5 + 1 * 3.0)
    assert r.elapsed_s == pytest.approx(5.5)
    assert meter.reading(training=False, complete=False).eta_s is None


def test_finishing_freezes_the_clock_and_completion_fills_the_bar():
    clock = FakeClock()
    meter = planned(clock, epochs=3)
    meter.train_began()
    run_epoch(meter, clock, 1)
    meter.finished()
    clock.tick(60)
    stopped = meter.reading(training=False, complete=False)
    assert stopped.elapsed_s == pytest.approx(4.0) and stopped.progress == pytest.approx(1 / 3)
    assert meter.reading(training=False, complete=True).progress == 1.0


def test_each_batch_loss_is_recovered_from_kerass_running_mean():
    clock = FakeClock()
    meter = planned(clock, epochs=1, steps=4, samples=100, batch_size=32)
    meter.train_began()
    meter.epoch_began(1)
    # Batch losses 2, 1, 3 and (last, 4 images) 0.5: Keras logs the size-weighted mean.
    losses, sizes, means, seen, total = [2.0, 1.0, 3.0, 0.5], [32, 32, 32, 4], [], 0, 0.0
    for loss, size in zip(losses, sizes, strict=True):
        seen += size
        total += loss * size
        means.append(total / seen)
    points = [meter.batch_ended(b, m, {}) for b, m in enumerate(means, start=1)]
    assert [p.loss for p in points] == pytest.approx(losses)
    assert [p.mean_loss for p in points] == means
    assert [(p.step, p.epoch, p.batch) for p in points] == [(1, 1, 1), (2, 1, 2), (3, 1, 3),
                                                           (4, 1, 4)]
    # A new epoch restarts the running mean.
    meter.epoch_began(2)
    assert meter.batch_ended(1, 7.0, {}).loss == pytest.approx(7.0)


def test_a_dip_below_zero_is_zero_and_a_diverged_loss_stays_kerass():
    meter = planned(FakeClock(), epochs=1, steps=3, samples=96, batch_size=32)
    meter.train_began()
    meter.epoch_began(1)
    meter.batch_ended(1, 1.0, {})
    assert meter.batch_ended(2, 0.4, {}).loss == 0.0     # (0.4 x 64 - 1.0 x 32) / 32 < 0
    # An infinite mean hides the batch's own loss: Keras's value is shown as it is.
    assert meter.batch_ended(3, math.inf, {}).loss == math.inf


def test_epochs_log_keeps_keras_logs_and_the_partial_flag():
    clock = FakeClock()
    meter = planned(clock)
    meter.train_began()
    run_epoch(meter, clock, 1)
    meter.epoch_began(2)
    meter.epoch_ended(2, {"loss": 0.5}, partial=True)
    log = meter.reading(training=False, complete=False).epochs_log
    assert log == ({"epoch": 1, "loss": 1.0, "val_loss": 0.9, "partial": False},
                   {"epoch": 2, "loss": 0.5, "partial": True})


def test_a_50000_batch_run_keeps_its_whole_curve_at_bounded_cost():
    """Issue 10: past the cap, old batches are merged into buckets (mean, min, max) instead
    of dropped, so the curve still starts at batch 1 and covers every batch."""
    cap = 2_000
    meter = one_epoch_begun(50_000, max_batch_points=cap)
    peak = 0
    for b in range(1, 50_001):
        # Keras logs the running mean; a constant-per-batch loss of 2 - b/50000 gives
        # means we can check the buckets against.
        meter.batch_ended(b, 1.0 + (b % 7) / 10, {"accuracy": 0.5})
        peak = max(peak, len(meter._batches))
    points = meter.reading(training=True, complete=False).batches
    assert peak <= cap and len(points) <= cap
    assert points[0].step == 1 and points[0].span == 1          # the first point, raw
    assert points[-1].step == 50_000 and points[-1].span == 1   # the latest, raw
    assert sum(p.span for p in points) == 50_000                # every batch is in one point
    covered = [(p.step, p.last_step or p.step) for p in points]
    assert all(b == a_end + 1 for (_, a_end), (b, _) in zip(covered, covered[1:], strict=False))
    buckets = [p for p in points if p.span > 1]
    assert buckets and all(p.low <= p.loss <= p.high for p in buckets)
    assert all(p.metrics["accuracy"] == 0.5 for p in buckets)


def test_bucket_mean_min_max_are_those_of_the_batches_they_hold():
    meter = one_epoch_begun(40, max_batch_points=8)
    losses = []
    mean = 0.0
    for b in range(1, 41):
        loss = float((b * 37) % 11)
        mean = (mean * (b - 1) + loss) / b              # what Keras logs: the running mean
        meter.batch_ended(b, mean, {})
        losses.append(loss)
    for p in meter.reading(training=True, complete=False).batches:
        held = losses[p.step - 1:(p.last_step or p.step)]
        assert p.loss == pytest.approx(sum(held) / len(held), abs=1e-9)
        assert p.low == pytest.approx(min(held)) and p.high == pytest.approx(max(held))


def test_the_live_chart_draws_buckets_as_a_min_max_band():
    from types import SimpleNamespace

    from cnnlab.train import charts
    from cnnlab.train.jobs import JobState

    meter = one_epoch_begun(100, max_batch_points=16)
    for b in range(1, 101):
        meter.batch_ended(b, 1.0 + (b % 3), {"accuracy": 0.5})
    r = meter.reading(training=True, complete=False)
    snap = SimpleNamespace(batches=r.batches, steps_per_epoch=100, epochs_log=(), epochs=1,
                           state=JobState.RUNNING)
    data = charts.curves_data(snap)
    assert data["bucketed"] and data["batch_x"][0] == pytest.approx(0.01)  # batch 1 is there
    band = [t for t in charts.live_figure(snap).data if t.fill == "tonexty"]
    assert len(band) == 1 and min(band[0].y) < max(data["batch_loss"])
