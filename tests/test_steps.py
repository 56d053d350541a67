"""The Architectures walk-through (cnnlab.nets.steps): the step sequence, and the numbers that
grow step by step, against the calculator's whole blocks (themselves checked against Keras)."""

from __future__ import annotations

import pytest

from cnnlab.calc.analysis import analyze
from cnnlab.calc.spec import INPUT_NAME, LayerSpec
from cnnlab.nets import builders, step_charts, steps, summary


def test_steps_walk_the_lecture_in_order():
    assert [s.number for s in steps.STEPS] == list(range(1, steps.LAST + 1))
    sections = [s.section for s in steps.STEPS]
    order = ["overview", "network", "diagram", "inception", "residual", "experiment"]
    assert sorted(set(sections), key=order.index) == order
    assert sections == sorted(sections, key=order.index)   # each section in one run
    assert [s.part for s in steps.STEPS if s.section == "network"] == list(
        ["lenet5", "alexnet", "googlenet", "resnet"])
    assert [s.part for s in steps.STEPS if s.section == "inception"] == ["1", "2", "3", "4",
                                                                          "concat"]
    assert [s.part for s in steps.STEPS if s.section == "residual"] == ["f", "identity",
                                                                         "projection"]
    assert [s.part for s in steps.STEPS if s.section == "experiment"] == ["1", "2", "3"]
    assert steps.first_of("inception").title.endswith("the 1x1 branch")


def test_next_and_back_stop_at_the_ends():
    assert steps.following(1) == 2 and steps.preceding(2) == 1
    assert steps.following(steps.LAST) == steps.LAST
    assert steps.preceding(steps.FIRST) == steps.FIRST
    for bad in (0, steps.LAST + 1, -3):
        with pytest.raises(ValueError, match="steps are 1 to"):
            steps.step(bad)


@pytest.mark.parametrize("name", list(builders.GOOGLENET_MODULES))
def test_inception_built_up_ends_at_the_whole_module(name):
    filters = builders.GOOGLENET_MODULES[name]
    totals = steps.inception_build_up((28, 28, 192), filters)
    whole = summary.compare_inception((28, 28, 192), filters)
    last = totals[-1]
    assert last.params == whole.bottleneck.total_params
    assert last.naive_params == whole.naive.total_params
    assert last.macs == whole.bottleneck.total_macs
    assert last.channels == whole.bottleneck.output_shape[-1]
    assert last.naive_channels == whole.naive.output_shape[-1]
    # every branch adds parameters with the reduces; the naive pool branch adds none, but
    # passes all 192 input channels through
    assert all(b.params > a.params for a, b in zip(totals, totals[1:], strict=False))
    assert last.branch_naive_params == 0
    assert last.naive_channels - totals[-2].naive_channels == 192


def test_inception_3a_step_by_step():
    totals = steps.inception_build_up((28, 28, 192), (64, 96, 128, 16, 32, 32))
    assert [t.branches for t in totals] == [("1x1",), ("1x1", "3x3"), ("1x1", "3x3", "5x5"),
                                            ("1x1", "3x3", "5x5", "pool")]
    assert totals[0].params == 192 * 64 + 64
    # + 3x3 reduce -> 3x3: (192*96 + 96) + (9*96*128 + 128); naive: 9*192*128 + 128
    assert totals[1].branch_params == 192 * 96 + 96 + 9 * 96 * 128 + 128
    assert totals[1].branch_naive_params == 9 * 192 * 128 + 128
    assert totals[-1].params == 163_696 and totals[-1].naive_params == 387_296


def test_partial_modules_are_what_the_calculator_computes_for_them():
    """The totals after k branches equal the analysis of a module of those k branches."""
    filters = (64, 96, 128, 16, 32, 32)
    layers = {s.name: s for s in builders.inception_module("m", INPUT_NAME, *filters)}
    branch_layers = [["m_1x1"], ["m_3x3_reduce", "m_3x3"], ["m_5x5_reduce", "m_5x5"],
                     ["m_pool", "m_pool_proj"]]
    totals = steps.inception_build_up((28, 28, 192), filters)
    for k in range(2, 5):
        names = [n for branch in branch_layers[:k] for n in branch]
        partial = [layers[n] for n in names] + [
            LayerSpec("concat", "m_output", inputs=tuple(b[-1] for b in branch_layers[:k]))]
        stats = analyze((28, 28, 192), partial)
        assert stats.total_params == totals[k - 1].params
        assert stats.output_shape[-1] == totals[k - 1].channels


def test_residual_unit_built_up():
    same = steps.residual_build_up((56, 56, 256), 64)
    assert same.shortcut == "identity"
    assert same.residual_params == summary.residual_unit_summary((56, 56, 256), 64).stats.total_params
    assert same.identity_input == (56, 56, 256)
    # the projection that a stride of 2 needs: 1x1 conv 256 -> 256 + its batch norm
    assert same.projection_params == 256 * 256 + 256 + 4 * 256 and same.projection_stride == 2
    strided = steps.residual_build_up((56, 56, 256), 64, stride=2)
    whole = summary.residual_unit_summary((56, 56, 256), 64, stride=2)
    assert strided.shortcut == "projection"
    assert strided.residual_params + strided.projection_params == whole.stats.total_params
    assert strided.output_shape == (28, 28, 256)
    wider = steps.residual_build_up((56, 56, 64), 64)   # conv2_block1: 64 -> 256 channels
    assert wider.shortcut == "projection" and wider.projection_stride == 1
    assert wider.projection_params == 64 * 256 + 256 + 4 * 256


def test_step_figures_draw_each_step():
    totals = steps.inception_build_up((28, 28, 192), (64, 96, 128, 16, 32, 32))
    bars = [step_charts.inception_build_up_figure(totals, shown, "28x28x192")
            for shown in range(1, 6)]
    assert [len(f.data[0].x) for f in bars] == [1, 2, 3, 4, 4]
    assert list(bars[-1].data[0].y) == [t.params for t in totals]
    assert any("concatenate: 256 channels" in (a.text or "") for a in bars[-1].layout.annotations)
    assert not any("concatenate" in (a.text or "") for a in bars[3].layout.annotations)
    unit = steps.residual_build_up((56, 56, 256), 64)
    texts = {part: " ".join(a.text or "" for a in step_charts.residual_figure(
        unit, part, ["a", "b", "c"]).layout.annotations) for part in ("f", "identity", "projection")}
    assert "identity" not in texts["f"] and "projection" not in texts["f"]
    assert "identity: x itself, 0 parameters" in texts["identity"]
    assert f"projection: {unit.projection_params:,} parameters" in texts["projection"]
