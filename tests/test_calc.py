"""The calculator core without TensorFlow: the seed exercise's numbers, the memory model,
receptive fields, the grammar, the table and URL forms, make-it-fit and every error case.
(Shapes and parameter counts against Keras are in test_calc_keras.py.)"""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from cnnlab.calc import (
    MB,
    LayerSpec,
    SpecError,
    analyze,
    fit_options,
    format_layer,
    layers_to_rows,
    parse_input_shape,
    parse_layer,
    rows_to_layers,
    scale_filters,
)
from cnnlab.calc.presets import PRESETS, from_query, preset_config, to_query

SEED_SHAPE, SEED_LAYERS = PRESETS["seed exercise"]


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


# ----------------------------------------------------------------------- grammar

def test_grammar_defaults_follow_keras():
    assert parse_layer("conv:100:3:2:same") == LayerSpec(
        "conv", filters=100, kernel=(3, 3), strides=(2, 2), padding="same")
    assert parse_layer("conv:8:3x5") == LayerSpec("conv", filters=8, kernel=(3, 5),
                                                  strides=(1, 1))
    assert parse_layer("maxpool:3").strides == (3, 3)
    assert parse_layer("avgpool:2:1:same") == LayerSpec("avgpool", kernel=(2, 2),
                                                        strides=(1, 1), padding="same")
    assert parse_layer("dense:10:act=softmax") == LayerSpec("dense", units=10,
                                                            activation="softmax")
    assert parse_layer("dropout:0.5").rate == 0.5
    assert parse_layer("flatten") == LayerSpec("flatten")
    assert parse_layer("batchnorm").kind == "batchnorm"
    assert parse_layer("globalavgpool").kind == "globalavgpool"
    assert parse_layer("zeropad:1:2").pad == (1, 1, 2, 2)
    assert parse_layer("lrn:2:alpha=2e-05:beta=0.75").depth_radius == 2
    assert parse_layer("concat:in=a,b").inputs == ("a", "b")
    assert parse_layer("conv:4:1:bias=off").use_bias is False
    assert parse_input_shape("200x300x3") == (200, 300, 3)
    assert parse_input_shape("28x28") == (28, 28, 1)


@pytest.mark.parametrize("text, message", [
    ("conv:x:3", r"filters must be a positive integer, got 'x'"),
    ("conv:10", r"conv needs kernel"),
    ("conv:10:3:0", r"stride must be N or NxM of positive integers, got '0'"),
    ("conv:10:3:1:diagonal", r"padding must be 'valid' or 'same'"),
    ("conv:10:3:1:same:relu", r"too many fields for conv"),
    ("dropout:1.5", r"dropout rate must be in \[0, 1\)"),
    ("dropout:lots", r"dropout rate must be a number"),
    ("dense:10:act=rectify", r"unknown activation 'rectify'"),
    ("maxpool:2:groups=2", r"maxpool has no option 'groups'"),
    ("sparkle", r"unknown layer kind 'sparkle'"),
    ("", r"empty layer"),
])
def test_grammar_errors(text, message):
    with pytest.raises(SpecError, match=message):
        parse_layer(text)


@pytest.mark.parametrize("text", ["", "200x0x3", "ax2x3", "1x2x3x4"])
def test_bad_input_shapes(text):
    with pytest.raises(SpecError, match=r"^input"):
        parse_input_shape(text)


@pytest.mark.parametrize("name", list(PRESETS))
def test_text_table_and_url_forms_round_trip(name):
    input_shape, layers = PRESETS[name]

    def same_network(a, b) -> bool:
        # Equal as text and layer by layer (a default like strides=None may come back
        # spelled out as (1, 1)).
        return ([format_layer(x) for x in a] == [format_layer(x) for x in b]
                and analyze(input_shape, a).layers == analyze(input_shape, b).layers)

    assert same_network([parse_layer(format_layer(spec)) for spec in layers], layers)
    assert same_network(rows_to_layers(layers_to_rows(layers)), layers)
    config = preset_config(name, gpu_gb=12.0, optimizer="sgd")
    assert from_query(to_query(config)) == config


def test_table_rows_ignore_cells_a_kind_does_not_use_and_blank_rows():
    nan = float("nan")
    rows = [{"name": None, "kind": "conv", "filters/units": 32.0, "kernel": "3",
             "stride": None, "padding": "same", "activation": "relu", "rate": nan,
             "inputs": "", "options": None},
            {"name": "", "kind": "maxpool", "filters/units": 99.0, "kernel": "2",
             "stride": "", "padding": "valid", "activation": "", "rate": 0.3,
             "inputs": None, "options": ""},
            {column: None for column in ("name", "kind", "filters/units", "kernel")}]
    assert rows_to_layers(rows) == [parse_layer("conv:32:3:1:same:act=relu"),
                                    parse_layer("maxpool:2")]


def test_a_bad_table_cell_names_the_row():
    rows = layers_to_rows(PRESETS["seed MNIST CNN"][1])
    rows[2]["kernel"] = "3y"
    with pytest.raises(SpecError, match=r"^layer 3 \(conv2\): kernel must be N or NxM"):
        rows_to_layers(rows)
    rows[2]["kernel"] = "3"
    rows[2]["options"] = "groups"
    with pytest.raises(SpecError, match=r"^layer 3 \(conv2\): option 'groups' must look like key=value"):
        rows_to_layers(rows)


def test_url_opens_a_preset_and_rejects_bad_values():
    assert from_query({"preset": "VGG16"}).layers == tuple(PRESETS["VGG16"][1])
    custom = from_query({"input": "32x32x3", "layer": ["conv:8:3", "flatten"], "batch": "7"})
    assert custom.preset is None and custom.batch == 7 and len(custom.layers) == 2
    with pytest.raises(SpecError, match="unknown preset"):
        from_query({"preset": "ZFNet"})
    with pytest.raises(SpecError, match=r"^layer 1 \(conv:0:3\): filters"):
        from_query({"layer": ["conv:0:3"]})


# ----------------------------------------------------------------------- make it fit

def test_make_it_fit_remedies_are_the_smallest_changes_that_fit():
    gpu = 300 * MB
    options = {o.remedy: o for o in fit_options(SEED_SHAPE, SEED_LAYERS, batch=50,
                                                gpu_bytes=gpu)}
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
    code = ("import sys, cnnlab.calc, cnnlab.calc.presets, cnnlab.calc.keras_oracle, cnnlab.calc.charts, "
            "cnnlab.commands.calc; print('tensorflow' in sys.modules, 'keras' in sys.modules)")
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
                                                gpu_bytes=16e9)}
    accum = options["gradient accumulation"]
    steps, micro = (int(word) for word in accum.change.split()[:4:3])
    assert accum.fits and micro == math.ceil(10**9 / steps)
    assert seed(batch=10**9, accum_steps=steps).training_bytes <= 16e9
    assert seed(batch=10**9, accum_steps=steps - 1).training_bytes > 16e9


def test_a_row_of_unknown_kind_is_named_by_its_position():
    rows = layers_to_rows(PRESETS["seed MNIST CNN"][1])
    rows[1]["kind"] = "pool"
    with pytest.raises(SpecError, match=r"^layer 2: unknown layer kind 'pool'"):
        rows_to_layers(rows)
    rows[1]["kind"] = None
    with pytest.raises(SpecError, match=r"^layer 2: unknown layer kind '\(empty\)'"):
        rows_to_layers(rows)


def test_garbage_cells_give_spec_errors_only():
    """Whatever a user types into the table, the page gets a result or one SpecError."""
    import random

    from cnnlab.calc import KINDS, TABLE_COLUMNS

    rng = random.Random(7)
    junk = [None, "", " ", "0", "-1", "3", "3x5", "2x0", "abc", "1e9", "nan", 0, -2, 3, 2.5,
            float("nan"), float("inf"), 10**12, "same", "valid", "relu", "a, b", "input",
            "groups=2", "bias=maybe", "pad=1,2", "pad=x", "=", "x=1", "depth_radius=-1",
            "alpha=nan", True]
    outcomes = {"ok": 0, "error": 0}
    for _ in range(3000):
        # Sensible rows (the seed MNIST CNN), then each cell replaced by junk now and then.
        rows = layers_to_rows(PRESETS["seed MNIST CNN"][1])
        for row in rows:
            for column in TABLE_COLUMNS:
                if rng.random() < 0.08:
                    row[column] = rng.choice(junk)
            if rng.random() < 0.05:
                row["kind"] = rng.choice([*KINDS, "pool", None, "", 3])
        try:
            layers = rows_to_layers(rows)
            analyze((rng.randint(10, 40), rng.randint(10, 40), rng.randint(1, 4)), layers,
                    batch=rng.randint(1, 64))
            outcomes["ok"] += 1
        except SpecError as error:
            assert "\n" not in str(error) and str(error).startswith(("layer ", "input"))
            outcomes["error"] += 1
    assert outcomes["ok"] > 50 and outcomes["error"] > 1000, outcomes


@pytest.mark.parametrize("query, message", [
    ({"input": "abc"}, r"^input: 'abc' must be HxWxC"),
    ({"input": "ax2x3"}, r"^input 'ax2x3': every size must be"),
    ({"input": "9999999x2x3"}, r"^input: each size must be at most"),
    ({"batch": "0"}, r"^batch/accum"),
    ({"batch": "10000000000"}, r"^batch/accum"),
    ({"batch": "8", "accum": "9"}, r"^batch/accum"),
    ({"batch": "many"}, r"^batch/accum: must be positive integers"),
    ({"gpu": "nan"}, r"^gpu: must be between 0.01 and"),
    ({"gpu": "inf"}, r"^gpu: must be between 0.01 and"),
    ({"gpu": "-1"}, r"^gpu: must be between 0.01 and"),
    ({"gpu": "0.001"}, r"^gpu: must be between 0.01 and"),
    ({"dtype": "float64"}, r"^dtype: must be one of"),
    ({"optimizer": "lion"}, r"^optimizer: must be one of"),
])
def test_bad_urls_give_one_line(query, message):
    with pytest.raises(SpecError, match=message):
        from_query(query)
