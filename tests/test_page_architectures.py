"""AppTest of the Architectures page: what a user sees, each experiment, uploads."""

from __future__ import annotations

import pytest

from cnnlab.calc.analysis import analyze
from cnnlab.calc.spec import INPUT_NAME
from cnnlab.facts import fact
from cnnlab.nets import builders as A
from cnnlab.vision import images
from tests.apptest import app_at, error_lines, run_isolated

PAGE = "pages/architectures.py"


@pytest.fixture(scope="module")
def at():
    """One app session for the module: later tests continue where earlier ones left it."""
    return app_at(PAGE, timeout=120)


def _metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_page_opens_without_tensorflow():
    result = run_isolated(PAGE)
    assert result["exceptions"] == []
    assert result["titles"][-1] == "Architectures"
    # the overview, diagram, module and unit come from the pure-Python calculator
    assert result["tensorflow"] is False
    assert result["keras"] is False


def test_overview_table_has_computed_numbers(at):
    assert not at.exception
    table = at.dataframe[0].value
    by_name = table.set_index("network")
    assert by_name.loc["ResNet-50", "parameters"] == 25_636_712
    assert by_name.loc["AlexNet", "parameters"] == 60_965_224
    assert by_name.loc["GoogLeNet", "depth"] == 22
    assert by_name.loc["ResNet-152", "top-5 % (ILSVRC)"] == 3.57
    assert list(by_name.index) == [n.title for n in A.all_networks()]
    text = " ".join(m.value for m in at.markdown)
    assert "1x1 bottlenecks: module 3a on 28x28x192 has 163,696 parameters" in text
    # published numbers come with where they are published
    assert f"{fact('resnet.table2_top1_error').citation})" in text
    captions = " ".join(c.value for c in at.caption)
    assert fact("lenet5.mnist_test_error").citation in captions
    assert f"AlexNet: {fact('alexnet.top5_error').citation}" in captions


def test_block_diagram_stage_picker_lists_layers(at):
    at.selectbox(key="diagram_net").set_value("ResNet-152").run()
    at.selectbox(key="diagram_stage_resnet152").set_value("conv4").run()
    assert not at.exception
    layers = at.dataframe[1].value
    assert set(layers["block"]) == {f"conv4_block{i}" for i in range(1, 37)}
    first = layers.set_index("layer").loc["conv4_block1_0_conv"]
    assert first["output shape"] == "14 x 14 x 1024"
    assert first["parameters"] == 512 * 1024 + 1024
    assert any("Stage **conv4**" in c.value for c in at.caption)


def test_inception_module_follows_the_users_sizes(at):
    at.number_input(key="inc_c").set_value(256).run()
    at.number_input(key="inc_2_3a").set_value(200).run()  # #3x3
    assert not at.exception
    expected = analyze((28, 28, 256), A.inception_module("m", INPUT_NAME, 64, 96, 200, 16, 32, 32))
    naive = analyze((28, 28, 256), A.inception_module("m", INPUT_NAME, 64, 96, 200, 16, 32, 32,
                                                      bottleneck=False))
    metrics = _metrics(at)
    assert metrics["Parameters with 1x1 bottlenecks"] == f"{expected.total_params:,}"
    shapes = [m.value for m in at.metric if m.label == "Output shape"]
    assert shapes[0] == "28 x 28 x 328"  # the inception module's (the residual unit's is next)
    assert any(m.delta == f"naive: 28 x 28 x {64 + 200 + 32 + 256}" for m in at.metric)
    assert naive.total_params > expected.total_params


def test_residual_unit_projection_when_strided(at):
    at.selectbox(key="res_stride").set_value(2).run()
    assert not at.exception
    metric = next(m for m in at.metric if m.label == "Shortcut")
    assert metric.value == "projection"
    assert metric.delta == f"{256 * 256 + 256 + 4 * 256:,} parameters"  # 1x1 conv + BN
    assert "28 x 28 x 256" in [m.value for m in at.metric if m.label == "Output shape"]


def test_experiment_1_conv_shifts_dense_does_not(at):
    at.button(key="exp1_button").click().run()
    assert not at.exception and not at.error
    at.slider(key="exp1_dx").set_value(5).run()
    metrics = _metrics(at)
    assert metrics["Conv: response moves with the image"] == "r = 1.000"
    assert abs(float(metrics["Dense: response moves with the image"].split("= ")[1])) < 0.3


def test_experiment_2_pool_has_no_parameters(at):
    at.button(key="exp2_button").click().run()
    at.slider(key="exp2_k").set_value(3).run()
    at.slider(key="exp2_cout").set_value(16).run()
    assert not at.exception and not at.error
    metrics = _metrics(at)
    assert metrics["MaxPooling2D parameters"] == "0"
    assert metrics["Conv2D (stride) parameters"] == f"{3 * 3 * 8 * 16 + 16:,}"


def test_experiment_3_lrn_sliders_change_the_result(at):
    at.button(key="exp3_button").click().run()
    assert not at.exception and not at.error
    kept_paper = float(_metrics(at)["Activity kept"].rstrip("%"))
    at.select_slider(key="exp3_alpha").set_value(1e-2).run()
    kept_strong = float(_metrics(at)["Activity kept"].rstrip("%"))
    assert kept_strong < kept_paper < 100
    assert float(_metrics(at)["TF vs the formula"].split("= ")[1]) < 1e-3


def test_uploaded_photo_runs_the_experiments(at):
    at.radio(key="photo_source").set_value("upload").run()
    at.file_uploader(key="photo_upload").upload("coffee.png", images.sample_photo_bytes(
        "coffee", "PNG"), "image/png").run()
    assert not at.exception and not at.error
    assert _metrics(at)["Conv: response moves with the image"] == "r = 1.000"


def test_bad_upload_gives_one_line_error(at):
    at.file_uploader(key="photo_upload").upload("notes.jpg", b"this is not an image",
                                                "image/jpeg").run()
    assert not at.exception
    assert len(at.error) == 1
    assert error_lines(at)[0].startswith("notes.jpg:") and "\n" not in at.error[0].value
