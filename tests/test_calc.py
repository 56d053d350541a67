"""The calculator core without TensorFlow, module by module: the seed exercise's numbers
(analysis), the memory model (memory), every error case (spec, analysis), make it fit (fit)
and what the page and the CLI show (report). The grammar, table and URL forms are in
test_calc_grammar.py; shapes and parameter counts against Keras in test_calc_keras.py."""

from __future__ import annotations

import ast
import math
import subprocess
import sys
from dataclasses import replace

import pytest

from cnnlab.calc.analysis import analyze
from cnnlab.calc.fit import fit_options, scale_filters
from cnnlab.calc.memory import GB, MB
from cnnlab.calc.presets import PRESETS
from cnnlab.calc.report import (
    fit_rows,
    format_bytes,
    seed_exercise_note,
    stats_rows,
    totals,
    training_rows,
)
from cnnlab.calc.spec import LayerSpec, SpecError
from tests import ROOT

SEED_SHAPE, SEED_LAYERS = PRESETS["seed exercise"]
CALC_MODULES = ("spec", "analysis", "memory", "grammar", "report", "fit", "presets",
                "bookmark", "keras_oracle", "charts")


def seed(**kw):
    return analyze(SEED_SHAPE, SEED_LAYERS, **{"batch": 50, **kw})


# ----------------------------------------------------------------------- the seed exercise

def test_seed_exercise_parameters_and_maps():
    stats = seed()
    assert [layer.params for layer in stats.layers] == [2_800, 180_200, 720_400]
    assert stats.total_params == 903_400
    assert [layer.output_shape for layer in stats.layers] == [
        (100, 150, 100), (50, 75, 200), (25, 38, 400)]
    # float32 feature maps of one instance: 6 MB, 3 MB, 1.52 MB
    assert [4 * layer.activation_elems / MB for layer in stats.layers] == [6.0, 3.0, 1.52]


def test_seed_exercise_one_instance_is_about_12_6_mb():
    m = seed().memory
    # two consecutive maps (6 + 3 MB) + 3.6136 MB of float32 parameters
    assert m.inference_activation_bytes == 9_000_000
    assert m.params_bytes == 3_613_600
    assert m.inference_bytes == 12_613_600
    assert round(m.inference_bytes / MB, 1) == 12.6


def test_seed_exercise_training_batch_is_about_566_mb_before_gradients():
    m = seed(optimizer="sgd").memory
    assert m.activations_bytes == 50 * 10_520_000  # 526 MB: every map kept for backprop
    assert m.input_batch_bytes == 50 * 200 * 300 * 3 * 4  # 36 MB of input images
    assert m.before_gradients_bytes == 565_613_600
    assert round(m.before_gradients_bytes / MB) == 566
    # then gradients (SGD: no slots)
    assert m.gradients_bytes == 3_613_600
    assert m.training_bytes == 565_613_600 + 3_613_600
    terms = {term: value for term, value, _ in m.training_terms()}
    assert sum(terms.values()) == m.training_bytes


def test_seed_exercise_macs_flops_and_receptive_fields():
    stats = seed()
    assert stats.layers[0].macs == 100 * 150 * 100 * 3 * 3 * 3
    assert stats.flops == 2 * stats.total_macs
    assert [layer.receptive_field for layer in stats.layers] == [3, 7, 15]
    assert [layer.jump for layer in stats.layers] == [(2, 2), (4, 4), (8, 8)]


# ----------------------------------------------------------------------- memory model

def test_optimizer_slots_are_zero_one_two_per_trainable_parameter():
    layers = [LayerSpec("conv", filters=8, kernel=(3, 3)), LayerSpec("batchnorm"),
              LayerSpec("flatten"), LayerSpec("dense", units=3)]
    by_opt = {opt: analyze((10, 10, 2), layers, optimizer=opt).memory
              for opt in ("sgd", "momentum", "adam")}
    stats = analyze((10, 10, 2), layers)
    assert stats.non_trainable_params == 16  # BN moving mean and variance of 8 channels
    per_slot = 4 * stats.trainable_params
    assert by_opt["sgd"].optimizer_bytes == 0
    assert by_opt["momentum"].optimizer_bytes == per_slot
    assert by_opt["adam"].optimizer_bytes == 2 * per_slot
    assert by_opt["adam"].gradients_bytes == per_slot  # no gradient for moving statistics
    assert by_opt["adam"].training_bytes - by_opt["sgd"].training_bytes == 2 * per_slot


def test_mixed_precision_halves_activations_only():
    f32, f16 = seed().memory, seed(dtype="mixed_float16").memory
    assert f16.activations_bytes * 2 == f32.activations_bytes
    assert f16.params_bytes == f32.params_bytes  # 32-bit master weights
    assert f16.input_batch_bytes == f32.input_batch_bytes  # images fed as float32
    assert f16.gradients_bytes == f32.gradients_bytes
    # one instance: conv1 + conv2 at 2 bytes beats input (float32) + conv1 at 2 bytes
    assert f16.inference_activation_bytes == 2 * (1_500_000 + 750_000)


def test_gradient_accumulation_runs_micro_batches_and_adds_a_buffer():
    plain, accum = seed().memory, seed(accum_steps=3).memory
    assert accum.micro_batch == 17
    assert accum.activations_bytes == 17 * 10_520_000
    assert accum.accumulator_bytes == 4 * 903_400
    assert accum.training_bytes < plain.training_bytes


def test_largest_batch_that_fits_is_exact():
    stats = seed()
    gpu = 1e9
    best = stats.max_batch(gpu)
    assert stats.at(batch=best).training_bytes <= gpu < stats.at(batch=best + 1).training_bytes
    assert stats.max_batch(stats.memory.fixed_bytes) == 0


def test_inference_peak_keeps_skip_connections_alive():
    # x -> a -> b -> add(a, b): while b runs, a is still needed by the add
    layers = [LayerSpec("conv", "a", filters=4, kernel=(1, 1)),
              LayerSpec("conv", "b", filters=4, kernel=(1, 1)),
              LayerSpec("conv", "c", filters=4, kernel=(1, 1)),
              LayerSpec("add", "s", inputs=("a", "c"))]
    stats = analyze((10, 10, 1), layers)
    per_map = 10 * 10 * 4 * 4
    # running c: a (held for the add) + b (its input) + c; running s: a + c + s
    assert stats.memory.inference_activation_bytes == 3 * per_map
    chain = analyze((10, 10, 1), layers[:3])
    assert chain.memory.inference_activation_bytes == 2 * per_map


def test_vgg16_numbers():
    stats = analyze(*PRESETS["VGG16"])
    assert stats.total_params == 138_357_544
    assert stats.layers[[layer.name for layer in stats.layers].index("block5_conv3")] \
        .receptive_field == 196
    assert round(stats.total_macs / 1e9, 2) == 15.47  # the usual "15.5 GMACs"


@pytest.mark.parametrize("name, params", [("LeNet-5", 61_706), ("AlexNet", 60_965_224),
                                          ("seed MNIST CNN", 225_034)])
def test_preset_parameter_counts(name, params):
    assert analyze(*PRESETS[name]).total_params == params


def test_concat_and_add_shapes():
    layers = [LayerSpec("conv", "a", filters=3, kernel=(3, 3), padding="same"),
              LayerSpec("conv", "b", filters=5, kernel=(1, 1), inputs=("input",)),
              LayerSpec("concat", "cat", inputs=("a", "b")),
              LayerSpec("zeropad", pad=(1, 2, 3, 4)),
              LayerSpec("globalavgpool")]
    stats = analyze((6, 7, 2), layers)
    assert stats.layers[2].output_shape == (6, 7, 8)
    assert stats.layers[3].output_shape == (9, 14, 8)
    assert stats.output_shape == (8,)


# ----------------------------------------------------------------------- errors

ERRORS = [
    ((5, 5, 3), [LayerSpec("conv", filters=4, kernel=(7, 7))],
     r"^layer 1 \(conv1\): kernel 7x7 is larger than its 5x5 VALID input$"),
    ((8, 8, 3), [LayerSpec("conv", filters=4, kernel=(3, 3)), LayerSpec("maxpool", kernel=(9, 9))],
     r"^layer 2 \(maxpool1\): pool size 9x9 is larger than its 6x6 VALID input$"),
    ((8, 8, 3), [LayerSpec("conv", filters=4, kernel=(3, 3), strides=(0, 1))],
     r"^layer 1 \(conv1\): stride must be positive, got 0x1$"),
    ((8, 8, 3), [LayerSpec("conv", filters=0, kernel=(3, 3))],
     r"^layer 1 \(conv1\): filters must be a positive integer, got 0$"),
    ((8, 8, 3), [LayerSpec("conv", filters=2.5, kernel=(3, 3))],
     r"^layer 1 \(conv1\): filters must be a positive integer, got 2.5$"),
    ((8, 8, 3), [LayerSpec("conv", filters=2, kernel=(3, -1))],
     r"^layer 1 \(conv1\): kernel must be positive"),
    ((8, 8, 3), [LayerSpec("flatten"), LayerSpec("dense", units=-3)],
     r"^layer 2 \(dense1\): units must be a positive integer, got -3$"),
    ((8, 8, 3), [LayerSpec("pool")], r"^layer 1 \(pool1\): unknown layer kind 'pool'"),
    ((8, 8, 3), [LayerSpec("conv", filters=2, kernel=(3, 3), padding="full")],
     r"^layer 1 \(conv1\): padding must be 'valid' or 'same', got 'full'$"),
    ((8, 8, 3), [LayerSpec("conv", filters=2, kernel=(3, 3), activation="rectify")],
     r"^layer 1 \(conv1\): unknown activation 'rectify'$"),
    ((8, 8, 3), [LayerSpec("dropout", rate=1.0)],
     r"^layer 1 \(dropout1\): dropout rate must be a number in \[0, 1\), got 1.0$"),
    ((8, 8, 3), [LayerSpec("flatten"), LayerSpec("conv", filters=2, kernel=(3, 3))],
     r"^layer 2 \(conv1\): conv needs an H x W x C input, but its input is a vector of 192"),
    ((8, 8, 3), [LayerSpec("conv", "x", filters=2), LayerSpec("conv", "x", filters=2)],
     r"^layer 2 \(x\): name 'x' is already used by layer 1$"),
    ((8, 8, 3), [LayerSpec("conv", filters=2, inputs=("nowhere",))],
     r"^layer 1 \(conv1\): input 'nowhere' is not the name of an earlier layer$"),
    ((8, 8, 3), [LayerSpec("conv", "a", filters=2), LayerSpec("concat", inputs=("a",))],
     r"^layer 2 \(concat1\): concat needs two or more inputs, got 1$"),
    ((8, 8, 3), [LayerSpec("conv", "a", filters=2), LayerSpec("conv", "b", filters=2, kernel=(3, 3)),
                 LayerSpec("concat", inputs=("a", "b"))],
     r"^layer 3 \(concat1\): concat needs inputs that differ only in channels, got 8x8x2, 6x6x2$"),
    ((8, 8, 3), [LayerSpec("conv", "a", filters=2), LayerSpec("conv", "b", filters=3),
                 LayerSpec("add", inputs=("a", "b"))],
     r"^layer 3 \(add1\): add needs inputs of the same shape, got 8x8x2, 8x8x3$"),
    ((8, 8, 3), [LayerSpec("conv", "a", filters=2), LayerSpec("conv", "b", filters=2,
                                                              inputs=("input",))],
     r"^layer 1 \(a\): its output is never used"),
    ((8, 8, 3), [LayerSpec("conv", filters=4, kernel=(1, 1), groups=2)],
     r"^layer 1 \(conv1\): groups=2 must divide both the 3 input channels and the 4 filters$"),
    ((8, 8, 3), [LayerSpec("zeropad", pad=(1, -1, 0, 0))], r"^layer 1 \(zeropad1\): pad must be"),
    ((8, 8, 3), [LayerSpec("conv", "input", filters=2)], r"^layer 1 \(input\): name 'input'"),
    ((0, 8, 3), [LayerSpec("flatten")], r"^input: shape must be three positive integers"),
    ((8, 8), [LayerSpec("flatten")], r"^input: shape must be three positive integers"),
]


@pytest.mark.parametrize("input_shape, layers, message", ERRORS)
def test_bad_configuration_names_the_layer_and_the_problem(input_shape, layers, message):
    with pytest.raises(SpecError, match=message) as info:
        analyze(input_shape, layers)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("kwargs, message", [
    ({"batch": 0}, r"^batch: must be a positive integer, got 0$"),
    ({"dtype": "float16"}, r"^dtype: must be one of float32, mixed_float16"),
    ({"optimizer": "rmsprop"}, r"^optimizer: must be one of sgd, momentum, adam"),
    ({"batch": 4, "accum_steps": 5}, r"^accumulation steps: 5 is more than the batch of 4$"),
])
def test_bad_memory_settings(kwargs, message):
    with pytest.raises(SpecError, match=message):
        seed(**kwargs)



# ----------------------------------------------------------------------- make it fit

def test_make_it_fit_remedies_are_the_smallest_changes_that_fit():
    gpu = 300 * MB
    options = {o.remedy: o for o in fit_options(SEED_SHAPE, SEED_LAYERS, batch=50,
                                                gpu_bytes=gpu, model="textbook")}
    assert set(options) == {"smaller batch", "lower resolution", "fewer filters",
                            "mixed precision", "gradient accumulation"}
    for option in options.values():
        if option.fits:
            assert option.training_bytes <= gpu
    base = seed()
    assert base.training_bytes > gpu
    batch = options["smaller batch"]
    assert batch.change == "batch 25 (from 50)"
    assert base.at(batch=26).training_bytes > gpu
    accum = options["gradient accumulation"]
    assert accum.change == "2 steps of 25 (batch 50 per update)"
    mixed = options["mixed precision"]
    assert mixed.training_bytes == seed(dtype="mixed_float16").training_bytes
    assert mixed.fits is False  # 263 MB of 16-bit maps + 36 MB input + state > 300 MB
    height = int(options["lower resolution"].change.split()[1].split("x")[0])
    one_more = analyze((height + 1, round(300 * (height + 1) / 200), 3), SEED_LAYERS, batch=50)
    assert one_more.training_bytes > gpu


def test_make_it_fit_when_nothing_is_needed_or_nothing_helps():
    fine = fit_options(SEED_SHAPE, SEED_LAYERS, batch=50, gpu_bytes=10e9)
    assert all(o.fits for o in fine)
    hopeless = {o.remedy: o for o in fit_options(*PRESETS["VGG16"], batch=8, gpu_bytes=1e9)}
    assert hopeless["smaller batch"].fits is False  # 138M params x 16 bytes > 1 GB
    assert hopeless["gradient accumulation"].fits is False


def test_scale_filters_respects_groups():
    layers = scale_filters(PRESETS["AlexNet"][1], 0.3)
    analyze(PRESETS["AlexNet"][0], layers)  # still a valid network
    assert [s.filters for s in layers if s.kind == "conv"] == [28, 76, 116, 116, 76]


def test_core_modules_do_not_import_tensorflow():
    modules = ", ".join(f"cnnlab.calc.{name}" for name in CALC_MODULES)
    code = (f"import sys, {modules}, cnnlab.commands.calc; "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert out.split() == ["False", "False"]


def test_analyze_is_total_over_many_layers():
    layers = [LayerSpec("conv", filters=4, kernel=(3, 3), padding="same")] * 150
    stats = analyze((32, 32, 3), layers)
    assert stats.total_params == (3 * 3 * 3 * 4 + 4) + 149 * (3 * 3 * 4 * 4 + 4)
    assert math.prod(stats.output_shape) == 32 * 32 * 4


def test_make_it_fit_stays_fast_for_huge_batches():
    options = {o.remedy: o for o in fit_options(SEED_SHAPE, SEED_LAYERS, batch=10**9,
                                                gpu_bytes=16e9, model="textbook")}
    accum = options["gradient accumulation"]
    steps, micro = (int(word) for word in accum.change.split()[:4:3])
    assert accum.fits and micro == math.ceil(10**9 / steps)
    assert seed(batch=10**9, accum_steps=steps).training_bytes <= 16e9
    assert seed(batch=10**9, accum_steps=steps - 1).training_bytes > 16e9


# ----------------------------------------------------------------------- report

def test_per_layer_rows():
    rows = stats_rows(seed())
    assert [row["params"] for row in rows] == [2_800, 180_200, 720_400]
    assert [row["output"] for row in rows] == ["100 x 150 x 100", "50 x 75 x 200",
                                               "25 x 38 x 400"]
    assert [row["receptive field"] for row in rows] == ["3", "7", "15"]
    assert [row["activation MB"] for row in rows] == [6.0, 3.0, 1.52]
    assert stats_rows(analyze((8, 8, 1), [LayerSpec("flatten")]))[0]["receptive field"] \
        == "whole input"


def test_totals_are_the_headline_numbers():
    stats = seed()
    shown = {total.label: total for total in totals(stats, 16 * GB)}
    assert list(shown) == ["Parameters", "FLOPs per instance", "Predict one instance",
                           "Train one batch of 50", "Largest batch that fits",
                           "Parameter memory"]
    assert shown["Parameters"].value == "903,400"
    assert shown["Parameters"].help == "903,400 trainable, 0 non-trainable; 3.61 MB as float32"
    assert shown["Predict one instance"].value == "12.61 MB"
    assert shown["FLOPs per instance"].value == f"{stats.flops / 1e9:,.3f} G"
    train = shown["Train one batch of 50"]
    assert (train.value, train.delta, train.over) == ("576.45 MB", "4% of 16 GB", False)
    assert shown["Largest batch that fits"].value == f"{stats.max_batch(16 * GB):,}"
    assert shown["Parameter memory"].value == "3.61 MB"
    small = {total.label: total for total in totals(stats, 0.3 * GB)}
    assert small["Train one batch of 50"].over is True
    assert small["Train one batch of 50"].delta == "192% of 0.3 GB"
    assert small["Largest batch that fits"].value == "25"


def test_training_rows_add_up_to_the_total():
    m = seed(accum_steps=2).memory
    rows = training_rows(m)
    assert [row["term"] for row in rows] == ["activations", "input batch", "parameters",
                                             "gradients", "optimizer slots", "accumulator",
                                             "total"]
    assert sum(row["MB"] for row in rows[:-1]) == pytest.approx(rows[-1]["MB"])
    assert rows[-1]["MB"] == m.training_bytes / MB


def test_fit_rows_show_each_remedy():
    options = fit_options(SEED_SHAPE, SEED_LAYERS, batch=50, gpu_bytes=300 * MB,
                          model="textbook")
    rows = fit_rows(options)
    assert [row["remedy"] for row in rows] == [o.remedy for o in options]
    assert rows[0] == {"remedy": "smaller batch", "change": "batch 25 (from 50)",
                       "training memory": format_bytes(options[0].training_bytes),
                       "textbook count": format_bytes(options[0].textbook_bytes),
                       "fits": True, "cost": options[0].cost}
    # The headline uses the framework model (issue 12): what Keras keeps is more than the
    # textbook count for this network, so fewer samples fit; the textbook value stays beside.
    framework = fit_options(SEED_SHAPE, SEED_LAYERS, batch=50, gpu_bytes=300 * MB)[0]
    assert framework.change != "batch 25 (from 50)" and framework.textbook_bytes is not None
    assert format_bytes(None) == "-" and format_bytes(2.27e9) == "2.27 GB"


def test_seed_note_is_computed_from_the_stats():
    note = seed_exercise_note(seed())
    assert "Parameters: 2,800 + 180,200 + 720,400 = **903,400**" in note
    assert "6.00 MB, 3.00 MB, 1.52 MB" in note
    assert "**12.61 MB**" in note and "**565.61 MB**" in note
    assert "the seed says 480 MB" in note
    # Another network and settings: the sum follows the layers, the note stays in float32.
    layers = [*SEED_LAYERS[:2], replace(SEED_LAYERS[2], filters=100)]
    edited = analyze(SEED_SHAPE, layers, batch=10, dtype="mixed_float16")
    note = seed_exercise_note(edited)
    assert "Parameters: 2,800 + 180,200 + 180,100 = **363,100**" in note
    float32 = edited.at(dtype="float32").memory
    assert f"**{format_bytes(float32.inference_bytes)}**" in note
    assert "the exercise asks about a batch of 50" in note


def test_the_package_init_is_only_a_docstring():
    tree = ast.parse((ROOT / "cnnlab" / "calc" / "__init__.py").read_text())
    assert len(tree.body) == 1 and isinstance(tree.body[0].value, ast.Constant)
    assert all(f"`{name}`" in ast.get_docstring(tree) for name in CALC_MODULES)
