"""The seed's network, its calculator twin, and the after-training views, Keras as oracle."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PIL import Image, ImageDraw
from scipy.signal import correlate2d

from cnnlab.calc.analysis import analyze
from cnnlab.errors import ConfigError
from cnnlab.train import runs
from cnnlab.train.charts import smooth
from cnnlab.train.config import TrainConfig, dense_preset, dense_units_for_budget
from cnnlab.train.datasets import mnist_sample
from cnnlab.train.digit import predict_one, preprocess_digit
from cnnlab.train.export import load_model_bytes, model_bytes
from cnnlab.train.inside import activation_maps, first_layer_filters
from cnnlab.train.jobs import TrainingJob, TrainSetup
from cnnlab.train.manager import JobManager
from cnnlab.train.metrics import confusion_matrix, worst_mistakes
from cnnlab.train.model import build_model, prepare


def test_default_is_the_seed_network_exactly():
    config = TrainConfig()
    assert (config.batch_size, config.epochs, config.optimizer) == (64, 10, "adam")
    model = build_model(config)
    kinds = [(type(layer).__name__, layer.get_config()) for layer in model.layers]
    assert [k for k, _ in kinds] == ["Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D",
                                     "Flatten", "Dense", "Dense"]
    conv1, pool1, conv2, pool2, _, dense, out = (c for _, c in kinds)
    assert (conv1["filters"], conv1["kernel_size"], conv1["activation"]) == (32, (3, 3), "relu")
    assert (conv2["filters"], conv2["kernel_size"], conv2["activation"]) == (64, (3, 3), "relu")
    assert pool1["pool_size"] == pool2["pool_size"] == (2, 2)
    assert (dense["units"], dense["activation"]) == (128, "relu")
    assert (out["units"], out["activation"]) == (10, "softmax")
    assert type(model.optimizer).__name__ == "Adam"
    assert model.optimizer.learning_rate.numpy() == pytest.approx(0.001)
    assert model.loss == "categorical_crossentropy"
    assert model.count_params() == 225_034


@pytest.mark.parametrize("config", [
    TrainConfig(),
    TrainConfig(filters=(16, 8), kernels=(5, 3), dense_units=64, dropout=0.5),
    dense_preset(),
    dense_preset(TrainConfig(dropout=0.2, dense_preset_units=100)),
], ids=["seed", "edited", "dense", "dense-edited"])
def test_calculator_spec_matches_keras(config):
    model = build_model(config)
    stats = analyze((28, 28, 1), config.layer_specs())
    assert stats.total_params == model.count_params()
    keras_shapes = [tuple(layer.output.shape[1:]) for layer in model.layers]
    assert [s.output_shape for s in stats.layers] == keras_shapes


def test_dense_preset_has_a_similar_budget():
    cnn, dense = build_model(TrainConfig()), build_model(dense_preset())
    assert [type(layer).__name__ for layer in dense.layers] == ["Flatten", "Dense", "Dense"]
    assert abs(dense.count_params() - cnn.count_params()) / cnn.count_params() < 0.01


def test_dense_preset_units_follow_the_cnns_parameter_count():
    # 784-h-10: (784h + h) + (10h + 10) = 795h + 10 parameters.
    assert dense_units_for_budget(795 * 283 + 10) == 283
    assert dense_preset().dense_preset_units == 283           # the seed CNN's 225,034
    assert TrainConfig(architecture="dense").dense_preset_units == 283
    edited = TrainConfig(filters=(8, 16), kernels=(5, 3), dense_units=64)
    dense = dense_preset(edited)
    assert dense.dense_preset_units != 283
    cnn_params = build_model(edited).count_params()
    # The nearest h: the budgets (both counted by Keras) differ by at most half of one
    # hidden unit's 795 parameters.
    assert abs(build_model(dense).count_params() - cnn_params) <= 795 / 2
    # Units given by hand are kept.
    assert dense_preset(TrainConfig(dense_preset_units=100)).dense_preset_units == 100


def test_a_dense_net_without_a_cnn_to_match_is_a_config_error():
    with pytest.raises(ConfigError, match="conv 2: a 13x13 kernel leaves no room"):
        TrainConfig(architecture="dense", kernels=(13, 13)).validate()
    TrainConfig(architecture="dense", kernels=(13, 13), dense_preset_units=50).validate()


def test_memory_estimate_follows_the_options():
    base = TrainConfig().stats()
    half = TrainConfig(mixed_precision=True).stats()
    assert half.memory.activations_bytes * 2 == base.memory.activations_bytes
    assert TrainConfig(batch_size=128).stats().memory.activations_bytes == \
        2 * base.memory.activations_bytes
    assert TrainConfig(optimizer="sgd").stats().memory.optimizer_bytes == 0


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"kernels": (13, 13)}, "conv 2: a 13x13 kernel leaves no room"),
    ({"filters": (0, 64)}, "conv 1: filters must be 1..512"),
    ({"dropout": 1.0}, "dropout: must be in"),
    ({"batch_size": 0}, "batch size: must be an integer"),
    ({"learning_rate": 0.0}, "learning rate"),
    ({"optimizer": "adagrad"}, "optimizer: choose one of"),
    ({"dataset": "cifar10"}, "dataset: choose one of"),
])
def test_bad_configs_give_one_line(kwargs, message):
    with pytest.raises(ConfigError, match=message) as err:
        TrainConfig(**kwargs).validate()
    assert "\n" not in str(err.value)


def test_mixed_precision_is_set_in_the_thread_that_builds():
    import keras

    seen = {}

    def worker():
        keras.config.set_dtype_policy("mixed_float16")
        model = build_model(TrainConfig(mixed_precision=True))
        seen["conv"] = model.layers[0].compute_dtype
        seen["out"] = model.layers[-1].compute_dtype
        seen["optimizer"] = type(model.optimizer).__name__

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == {"conv": "float16", "out": "float32", "optimizer": "LossScaleOptimizer"}
    assert keras.config.dtype_policy().name == "float32"   # this thread is untouched
    # Even where the thread's policy was lost (Streamlit's clear_session resets Keras's
    # thread-local state), the layers keep the configured precision.
    model = build_model(TrainConfig(mixed_precision=True))
    assert model.layers[0].compute_dtype == "float16"
    assert type(model.optimizer).__name__ == "LossScaleOptimizer"


@pytest.fixture(scope="module")
def model():
    return build_model(TrainConfig(filters=(4, 8), dense_units=16))


def test_filters_and_activation_maps_are_the_convolution(model):
    image = mnist_sample().x_test[0].astype(np.float32) / 255.0
    filters = first_layer_filters(model)
    assert filters.shape == (4, 3, 3)
    maps = activation_maps(model, image[..., None])
    assert [(name, m.shape) for name, m in maps] == [("conv1", (26, 26, 4)), ("conv2", (11, 11, 8))]
    bias = model.layers[0].get_weights()[1]
    for f in range(4):
        expected = np.maximum(correlate2d(image, filters[f], mode="valid") + bias[f], 0)
        np.testing.assert_allclose(maps[0][1][..., f], expected, atol=1e-5)


def test_confusion_matrix_and_worst_mistakes():
    y_true = np.array([0, 0, 1, 2, 2, 2])
    y_pred = np.array([0, 1, 1, 2, 0, 2])
    counts = confusion_matrix(y_true, y_pred, 3)
    assert counts.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    probs = np.full((6, 3), 0.1, np.float32)
    probs[np.arange(6), y_pred] = [0.8, 0.6, 0.8, 0.8, 0.95, 0.8]
    mistakes = worst_mistakes(probs, y_true, k=5)
    assert [(m.index, m.true, m.predicted) for m in mistakes] == [(4, 2, 0), (1, 0, 1)]
    assert mistakes[0].confidence == pytest.approx(0.95)


def test_preprocessing_a_photo_of_a_digit_recovers_mnist():
    # A real MNIST digit, printed dark on white paper at 10x: the preprocessing must give
    # back (nearly) the MNIST image, since MNIST was made by this very procedure.
    digit = mnist_sample().x_test[3]
    paper = Image.fromarray(255 - digit).resize((280, 280), Image.Resampling.BICUBIC)
    steps = preprocess_digit(paper.convert("RGB"))
    assert steps.inverted and not steps.empty
    assert max(steps.fitted.shape) == 20
    assert steps.x.shape == (28, 28, 1) and steps.x.dtype == np.float32
    corr = np.corrcoef(steps.centered.ravel(), digit.ravel())[0, 1]
    assert corr > 0.9


def test_preprocessing_a_canvas_drawing():
    canvas = Image.new("RGBA", (280, 280), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).line([(140, 40), (140, 240)], fill=(255, 255, 255, 255), width=20)
    steps = preprocess_digit(np.asarray(canvas))
    assert not steps.inverted
    ys, xs = np.nonzero(steps.centered)
    assert ys.max() - ys.min() + 1 == 20            # the long side is 20 pixels
    assert abs(xs.mean() - 14) < 1.5                 # centred by mass
    assert preprocess_digit(np.zeros((100, 100, 4), np.uint8)).empty


def test_model_download_round_trip(model):
    x = mnist_sample().x_test[:1].astype(np.float32)[..., None] / 255.0
    restored = load_model_bytes(model_bytes(model))
    np.testing.assert_allclose(predict_one(restored, x[0]), predict_one(model, x[0]), atol=1e-6)


def test_smoothing():
    assert np.allclose(smooth([2.0] * 5), 2.0)
    noisy = np.array([1.0, 0.0] * 50)
    assert smooth(noisy)[-10:].std() < noisy[-10:].std() / 3


def _snapshot(losses_by_epoch: list[list[float]], val_loss: list[float]):
    from cnnlab.train.jobs import JobSnapshot
    from cnnlab.train.meter import BatchPoint

    points, step = [], 0
    for epoch, losses in enumerate(losses_by_epoch, start=1):
        for batch, loss in enumerate(losses, start=1):
            step += 1
            points.append(BatchPoint(step, epoch, batch, loss, loss, {"accuracy": 0.5}, step))
    epochs_log = tuple({"epoch": e, "loss": 1.0, "val_loss": v, "val_accuracy": 0.9}
                       for e, v in enumerate(val_loss, start=1))
    return JobSnapshot("job-x", "run x", "running", None, None, len(val_loss) + 1, 3,
                       len(losses_by_epoch[-1]), len(losses_by_epoch[0]), 0.5, 1.0, 100.0, 1.0,
                       tuple(points), epochs_log, {}, {}, {}, 0)


def test_live_chart_shows_every_batch_and_each_validation():
    from cnnlab.train import charts as train_charts

    snap = _snapshot([[2.0, 1.5, 1.0, 0.8], [0.7, 0.6]], [0.9])
    fig = train_charts.live_figure(snap)
    raw, smoothed, val = fig.data[0], fig.data[1], fig.data[2]
    assert list(raw.y) == [2.0, 1.5, 1.0, 0.8, 0.7, 0.6]
    assert list(raw.x) == [0.25, 0.5, 0.75, 1.0, 1.25, 1.5]   # batches placed in epochs
    assert list(smoothed.y) == pytest.approx(smooth([2.0, 1.5, 1.0, 0.8, 0.7, 0.6]).tolist())
    assert (list(val.x), list(val.y)) == ([1], [0.9])
    compare = train_charts.compare_figure([snap, snap])
    assert len(compare.data) == 6


def test_confusion_chart_cells_carry_their_class_pair():
    from cnnlab.train import charts as train_charts

    counts = np.arange(9).reshape(3, 3)
    fig = train_charts.confusion_figure(counts, ["a", "b", "c"])
    cells = fig.data[1]
    assert len(cells.customdata) == 9
    # Clicking the cell (true "c", predicted "b") reports exactly that pair and its count.
    i = [tuple(c[:2]) for c in cells.customdata].index((2, 1))
    assert (cells.y[i], cells.x[i], cells.customdata[i][2]) == ("c", "b", 7)


def test_mosaic_tiles_images_with_gaps():
    from cnnlab.train.charts import mosaic

    tiles, index = mosaic(np.ones((5, 3, 3), np.float32), cols=2)
    assert tiles.shape == (3 * 4 - 1, 2 * 4 - 1)
    assert np.isnan(tiles).sum() == tiles.size - 5 * 9
    assert set(np.unique(index)) == {-1, 1, 2, 3, 4, 5}


def test_runs_compare_table_and_results_kept_with_the_run():
    config = TrainConfig(filters=(4, 8), dense_units=16, epochs=1, batch_size=128)
    sample = mnist_sample()
    data = prepare(sample, config.validation_fraction, config.seed)

    def build() -> TrainSetup:
        return TrainSetup(build_model(config), data.x_train[:512], data.y_train[:512],
                          validation_data=(data.x_val, data.y_val), epochs=1, batch_size=128,
                          info={"params": 5_000}, context={"dataset": sample})

    manager = JobManager(max_concurrent=1)
    try:
        job = manager.submit("alice", TrainingJob(build, seed=0, label="tiny"))
        assert job.wait(120) and job.state == "done", job.error
        failed = manager.submit("alice", TrainingJob(lambda: 1 / 0))
        assert failed.wait(30) and failed.state == "failed"
    finally:
        manager.shutdown()
    assert runs.ended_runs([job, failed]) == [job] and runs.inspectable(job)
    assert not runs.inspectable(failed) and not runs.inspectable(None)
    [row] = runs.compare_rows([job])
    snap = job.snapshot()
    assert row == {"run": job.id, "configuration": "tiny", "state": "done",
                   "parameters": "5,000", "epochs": 1,
                   "val acc.": f"{snap.epochs_log[-1]['val_accuracy']:.1%}", "test acc.": "",
                   "images/s": f"{snap.images_per_second:,.0f}"}
    # The test report is predicted once, inside the given context (the page's spinner).
    entered = []

    class Spinner:
        def __enter__(self):
            entered.append(True)

        def __exit__(self, *exc):
            return False

    report = runs.report_of(job, Spinner())
    assert runs.dataset_of(job) is sample and report.confusion.sum() == sample.n_test
    assert runs.report_of(job, Spinner()) is report and entered == [True]
    data_bytes = runs.keras_file(job)
    assert runs.keras_file(job) is data_bytes and len(data_bytes) > 10_000
