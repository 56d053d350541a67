"""The layer grammar (cnnlab.calc.grammar): the text form of the CLI, the URL and the page,
the table form, the help generated from the grammar's one table, and the URL form
(cnnlab.calc.presets) built on them."""

from __future__ import annotations

import re

import pytest

from cnnlab.calc.analysis import analyze
from cnnlab.calc.grammar import (
    FORMS,
    GRAMMAR_HELP,
    TABLE_COLUMNS,
    format_layer,
    format_layers_text,
    layer_usage,
    layers_to_rows,
    parse_input_shape,
    parse_layer,
    parse_layers_text,
    rows_to_layers,
)
from cnnlab.calc.presets import PRESETS, from_query, preset_config, to_query
from cnnlab.calc.spec import KINDS, LayerSpec, SpecError
from tests import ROOT

# ----------------------------------------------------------------------- text form

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


def test_text_of_many_layers_round_trips_and_names_the_bad_line():
    layers = PRESETS["seed MNIST CNN"][1]
    text = format_layers_text(layers)
    assert text.splitlines()[0] == "conv:32:3:act=relu"
    assert parse_layers_text(f"# the seed's CNN\n\n{text}\n") == \
        [parse_layer(format_layer(spec)) for spec in layers]
    with pytest.raises(SpecError, match=r"^line 3 \(dense:x\): units must be a positive "
                                        r"integer, got 'x'$"):
        parse_layers_text("conv:8:3\nflatten\ndense:x")
    with pytest.raises(SpecError, match=r"^text: give at least one layer, one per line$"):
        parse_layers_text("# nothing\n\n")


# ----------------------------------------------------------------------- help


def test_usage_is_read_from_the_grammar_table():
    assert set(FORMS) == set(KINDS)
    assert layer_usage("conv") == "conv:FILTERS:KERNEL[:STRIDE[:PADDING]]"
    assert layer_usage("maxpool") == "maxpool:SIZE[:STRIDE[:PADDING]]"
    assert layer_usage("dense") == "dense:UNITS"
    assert layer_usage("lrn") == "lrn[:DEPTH_RADIUS]"
    assert layer_usage("zeropad") == "zeropad:P"
    assert layer_usage("concat") == "concat:in=A,B"
    assert layer_usage("flatten") == "flatten"
    assert all(layer_usage(kind) in GRAMMAR_HELP.replace("\n", " ") for kind in KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_every_usage_in_the_help_parses(kind):
    """Fill each placeholder of the usage with a value: the parser takes every field."""
    values = {"FILTERS": "8", "KERNEL": "3", "SIZE": "2", "STRIDE": "1", "PADDING": "same",
              "UNITS": "4", "RATE": "0.5", "NAME": "relu", "DEPTH_RADIUS": "2", "P": "1",
              "A,B": "a,b"}
    kind_text, *fields = layer_usage(kind).replace("[", "").replace("]", "").split(":")
    filled = [f"{field.split('=')[0]}={values[field.split('=')[1]]}" if "=" in field
              else values[field] for field in fields]
    spec = parse_layer(":".join([kind_text, *filled]))
    assert spec.kind == kind
    assert format_layer(spec).split(":")[0] == kind


def test_the_readme_quotes_the_generated_grammar():
    readme = (ROOT / "README.md").read_text()
    quoted = re.search(r"Layer grammar \(as `python -m cnnlab calc --help` prints it\):\n"
                       r"```text\n(.*?)\n```", readme, re.S)
    assert quoted is not None, "the README's Calculator section lost its grammar block"
    assert quoted.group(1) == GRAMMAR_HELP


# ----------------------------------------------------------------------- table and URL forms

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
    with pytest.raises(SpecError, match=r"^the network has no layers: add a row$"):
        rows_to_layers([{column: None for column in TABLE_COLUMNS}])


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
