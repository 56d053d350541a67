"""What the pages add around `explain`, on tiny Keras models: the sanity check added to a
report already made equals the one-call cascade, the options and methods a page uses, the
pictures and figures it draws, and what a run keeps (computed once, on demand)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from cnnlab.train import runs
from cnnlab.vision.explain import METHODS, ExplainOptions, add_sanity, explain, lab
from cnnlab.vision.explain import charts as explain_charts
from cnnlab.vision.explain.features import FeatureGrid
from tests.test_explain_methods import small_cnn

FAST = ExplainOptions(faithfulness_steps=8, smoothgrad_samples=4, ig_max_steps=64)


@pytest.fixture(scope="module")
def cnn():
    return small_cnn(shape=(12, 12, 1), filters=4, classes=3, seed=3)


@pytest.fixture(scope="module")
def digit():
    return np.random.default_rng(5).uniform(0, 1, (12, 12, 1)).astype(np.float32)


def dense_net():
    import keras

    keras.utils.set_random_seed(4)
    return keras.Sequential([keras.Input((12, 12, 1)), keras.layers.Flatten(),
                             keras.layers.Dense(8, activation="relu", name="hidden"),
                             keras.layers.Dense(3, activation="softmax", name="output")])


def test_sanity_added_later_equals_the_one_call_cascade(cnn, digit):
    at_once = explain(cnn, digit, sanity=True, options=FAST)
    later = explain(cnn, digit, options=FAST)
    assert later.sanity is None and later.methods["gradcam"].verdict().startswith("not checked")
    assert add_sanity(cnn, digit, later, FAST) is later
    assert [s.block for s in later.sanity.steps] == [s.block for s in at_once.sanity.steps]
    for name in METHODS:
        ours, theirs = later.methods[name], at_once.methods[name]
        assert [b for b, _ in ours.randomized_similarity] == [b for b, _ in theirs.randomized_similarity]
        assert [r for _, r in ours.randomized_similarity] == pytest.approx(
            [r for _, r in theirs.randomized_similarity], abs=1e-6)
        assert later.methods[name].verdict() == at_once.methods[name].verdict()
    add_sanity(cnn, digit, later, ExplainOptions(faithfulness_steps=8, smoothgrad_samples=4,
                                                 ig_max_steps=64, sanity_depth=1))
    assert [len(m.randomized) for m in later.methods.values()] == [1] * len(METHODS)  # replaced


def test_most_faithful_and_the_output_range(cnn, digit):
    report = explain(cnn, digit, methods=["gradcam", "gradients", "occlusion"], options=FAST)
    best = report.most_faithful()
    assert report.methods[best["deletion"]].deletion_auc == min(
        m.deletion_auc for m in report.methods.values())
    assert report.methods[best["insertion"]].insertion_auc == max(
        m.insertion_auc for m in report.methods.values())
    low, high = report.output_range()
    curves = [v for m in report.methods.values() for v in (*m.curves.deletion, *m.curves.insertion)]
    assert (low, high) == (min(curves), max(curves)) and low <= report.output <= high


def test_scorecam_channels_from_the_environment():
    assert lab.scorecam_channels({}) == lab.PAGE_SCORECAM_CHANNELS == 256
    assert lab.scorecam_channels({lab.SCORECAM_ENV: "16"}) == 16
    assert lab.scorecam_channels({lab.SCORECAM_ENV: " ALL "}) is None
    for junk in ("0", "-3", "many", ""):
        assert lab.scorecam_channels({lab.SCORECAM_ENV: junk}) == 256
    options = lab.page_options(3, {lab.SCORECAM_ENV: "8"})
    assert (options.scorecam_channels, options.sanity_depth) == (8, 3)
    assert options == lab.page_options(3, {lab.SCORECAM_ENV: "8"})   # a cache key
    assert "16 most active of the layer's 2,048" in lab.scorecam_note(16, 2048)
    assert lab.scorecam_note(2048, 2048).startswith("Score-CAM used every channel")
    assert [lab.format_seconds(s) for s in (0.0004, 0.25, 1.0, 46.51)] == [
        "0 ms", "250 ms", "1.0 s", "46.5 s"]


def test_quick_explanations_from_the_environment():
    """CNNLAB_EXPLAIN_QUICK=1: lighter work per method, the rest as without it, a different
    cache key, and a note for the page; anything else: the full methods."""
    full = lab.page_options(2, {lab.SCORECAM_ENV: "16"})
    assert (full.smoothgrad_samples, full.ig_max_steps, full.faithfulness_steps) == (25, 256, 32)
    assert lab.quick_note({}) == ""
    for off in ("", "0", "no", "off", "junk"):
        assert lab.page_options(2, {lab.SCORECAM_ENV: "16", lab.QUICK_ENV: off}) == full
        assert lab.quick_note({lab.QUICK_ENV: off}) == ""
    for on in ("1", " true ", "YES", "on"):
        env = {lab.SCORECAM_ENV: "16", lab.QUICK_ENV: on}
        quick = lab.page_options(2, env)
        assert (quick.smoothgrad_samples, quick.ig_max_steps, quick.faithfulness_steps) == (8, 32, 8)
        assert (quick.scorecam_channels, quick.sanity_depth, quick.ig_steps) == (16, 2, 32)
        assert (quick.occlusion_overlap, full.occlusion_overlap) == (False, True)
        assert quick != full and quick == lab.page_options(2, env)    # its own cache key
        assert lab.quick_note(env).startswith("Quick explanations (`CNNLAB_EXPLAIN_QUICK=1`): "
                                              "SmoothGrad averages 8 noisy copies")


def test_methods_that_apply(cnn):
    assert lab.methods_for(cnn) == tuple(METHODS)
    assert lab.methods_for(dense_net()) == ("gradients", "smoothgrad", "integrated_gradients",
                                            "occlusion")
    assert set(lab.METHOD_NOTES) == set(METHODS)


def test_pictures_a_page_shows():
    x = np.zeros((28, 28, 1), np.float32)
    x[3, 5] = 1.0
    view = lab.digit_view(x, size=168)
    assert view.size == (168, 168) and view.mode == "RGB"
    pixels = np.asarray(view)
    assert (pixels[18:24, 30:36] == 255).all() and pixels[:18].max() == 0  # one pixel = 6 x 6
    images = np.random.default_rng(0).uniform(0, 1, (3, 28, 28, 1)).astype(np.float32)
    grid = FeatureGrid("conv1", "filter", "neuron", images, np.ones(3), np.zeros(3), (13, 13, 3, 3))
    tiles = lab.unit_tiles(grid, size=84, border=3)
    assert len(tiles) == 3 and tiles[0].size == (84, 84) and tiles[0].mode == "RGB"
    tile = np.asarray(tiles[1])
    assert (tile[:3] == 128).all() and (tile[:, -3:] == 128).all()       # the grey frame
    corner = np.rint(images[1, 13, 13, 0] * 255)
    assert (tile[3:29, 3:29] == corner).all()   # the receptive field's top-left pixel, 26x
    colour = FeatureGrid("mixed0", "filter", "channel", np.ones((2, 5, 5, 3), np.float32) * 0.5,
                         np.ones(2), np.zeros(2))
    assert lab.unit_tiles(colour, size=10)[0].mode == "RGB"


def test_figures_hold_the_report_numbers(cnn, digit):
    report = explain(cnn, digit, methods=["gradcam", "occlusion"], sanity=True, options=FAST)
    fig = explain_charts.faithfulness_figure(report)
    assert len(fig.data) == 4                          # deletion and insertion per method
    gradcam = report.methods["gradcam"]
    np.testing.assert_allclose(fig.data[0].y, gradcam.curves.deletion)
    np.testing.assert_allclose(fig.data[1].y, gradcam.curves.insertion)
    np.testing.assert_allclose(fig.data[0].x, gradcam.curves.fractions * 100)
    assert fig.data[0].name == f"Grad-CAM ({gradcam.deletion_auc:.3f} / {gradcam.insertion_auc:.3f})"
    sanity = explain_charts.sanity_figure(report)
    assert [t.name for t in sanity.data] == ["Grad-CAM", "Occlusion"]
    assert list(sanity.data[0].x) == ["trained", "+ head", "+ conv"]
    assert list(sanity.data[0].y) == [1.0] + [rho for _, rho in gradcam.randomized_similarity]


def test_a_run_keeps_its_explanations_and_features(cnn, digit):
    job = SimpleNamespace(model=cnn, extras={})
    assert runs.explanation_of(job, 4, digit, 1, FAST, compute=False) is None
    seen = []
    report = runs.explanation_of(job, 4, digit, 1, FAST, progress=lambda f, t: seen.append(f))
    assert report.class_index == 1 and list(report.methods) == list(METHODS)
    assert seen and seen[-1] == 1.0 and report.sanity is None
    assert runs.explanation_of(job, 4, digit, 1, FAST, compute=False) is report
    assert runs.explanation_of(job, 4, digit, 1, FAST, sanity=True) is report   # added in place
    assert [s.block for s in report.sanity.steps] == ["head", "conv"]
    assert runs.explanation_of(job, 4, digit, 2, FAST, compute=False) is None   # another class
    for i in range(runs.KEEP_EXPLANATIONS + 1):
        runs.explanation_of(job, i, digit, 0, FAST)
    assert len(job.extras["explanations"]) == runs.KEEP_EXPLANATIONS          # newest kept

    assert runs.features_of(job, compute=False) is None
    assert runs.feature_layers(cnn) == ["conv", "head"]
    assert runs.feature_layers(dense_net()) == ["output"]                      # no filters
    features = runs.features_of(job)
    assert [(g.layer, g.kind, len(g.images)) for g in features.grids] == [
        ("conv", "filter", 4), ("head", "class", 3)]
    assert features.steps == runs.FEATURE_STEPS
    assert runs.features_of(job) is features                                   # computed once


@pytest.mark.parametrize("config", [
    {"filters": (4, 8), "mixed_precision": True},        # float16 layers, float32 softmax
    {"filters": (4, 8), "dropout": 0.3},
    {"architecture": "dense", "dense_preset_units": 16}])  # no conv layer: no CAMs, no filters
def test_every_network_the_train_page_builds_can_be_explained(config, monkeypatch):
    from cnnlab.train.config import TrainConfig
    from cnnlab.train.model import build_model

    monkeypatch.setattr(runs, "FEATURE_STEPS", 4)
    model = build_model(TrainConfig(**config))
    job = SimpleNamespace(model=model, extras={})
    x = np.random.default_rng(0).uniform(0, 1, (28, 28, 1)).astype(np.float32)
    report = runs.explanation_of(job, 0, x, 3, lab.page_options(4, {lab.SCORECAM_ENV: "4"}),
                                 sanity=True)
    dense = config.get("architecture") == "dense"
    assert list(report.methods) == list(lab.methods_for(model))
    assert ("gradcam" in report.methods) is not dense
    assert [s.block for s in report.sanity.steps] == (
        ["output", "dense1"] if dense else ["output", "dense1", "conv2", "conv1"])
    grids = runs.features_of(job).grids
    assert [(g.layer, len(g.images)) for g in grids] == (
        [("output", 10)] if dense else [("conv1", 4), ("conv2", 8), ("output", 10)])
    assert all(np.isfinite(g.objective).all() for g in grids)
