"""Hostile input to the calculator core (issue 15, rows 3, 6 and 11): numbers past the
calculator's limits are refused in one line naming the layer and the limit; no computed
figure can overflow; a long layer list packs into a bookmark, a decompression bomb in one is
refused. The CLI's cases are in test_cli_calc.py, the page's in test_page_calculator.py."""

from __future__ import annotations

import base64
import random
import re
import time
import zlib

import pytest

from cnnlab.calc import bookmark
from cnnlab.calc.analysis import analyze
from cnnlab.calc.grammar import (
    format_layers_text,
    parse_input_shape,
    parse_layer,
    parse_layers_text,
)
from cnnlab.calc.memory import GB
from cnnlab.calc.presets import PRESETS, CalcConfig, from_query, spec_text, to_query
from cnnlab.calc.report import format_bytes
from cnnlab.calc.spec import (
    LIMITS,
    MAX_BATCH,
    MAX_COUNT,
    MAX_LAYERS,
    MAX_SIZE,
    LayerSpec,
    LimitError,
    SpecError,
)

SEED_SHAPE, SEED_LAYERS = PRESETS["seed exercise"]
LIMIT = r"\(the calculator's limit\)"
TERA = (10**6, 10**6, 3)  # a 1,000,000 x 1,000,000 RGB input


def one_line_error(call) -> str:
    with pytest.raises(SpecError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message and len(message) < 400, message
    return message


@pytest.mark.parametrize("text, message", [
    ("conv:10000000000000000000000:3", rf"^layer 'conv:1000.*': filters must be at most "
                                       rf"1,000,000 {LIMIT}, got '10000000000000000000000'$"),
    ("conv:1" + "0" * 400 + ":3", rf"^layer 'conv:1000.*…' \(408 characters\): filters must "
                                  rf"be at most 1,000,000 {LIMIT}, got '1000.*…' "
                                  r"\(401 characters\)$"),
    ("zeropad:1" + "0" * 400, rf"pad must be at most 1,000,000 {LIMIT}, got '1000.*…' "
                              r"\(401 characters\)$"),
    ("conv:8:" + "9" * 5000, rf"kernel must be at most 1,000,000 {LIMIT}, got '9999.*…' "
                             r"\(5,000 characters\)$"),  # past Python's 4,300-digit int()
    ("conv:8:3x2000000", rf"kernel must be at most 1,000,000 {LIMIT}, got '2000000'$"),
    ("maxpool:2:1000001", rf"stride must be at most 1,000,000 {LIMIT}"),
    ("dense:1000001", rf"units must be at most 1,000,000 {LIMIT}"),
    ("conv:8:3:groups=1000001", rf"groups must be at most 1,000,000 {LIMIT}"),
    ("lrn:1000001", rf"depth_radius must be at most 1,000,000 {LIMIT}"),
    ("zeropad:1:2:3:1000001", rf"pad must be at most 1,000,000 {LIMIT}"),
    ("dropout:1e400", r"dropout rate must be a finite number, got '1e400'$"),
])
def test_grammar_refuses_numbers_past_the_limits(text, message):
    error = one_line_error(lambda: parse_layer(text))
    assert re.search(message, error), error


def test_a_layer_text_in_a_message_is_one_line_and_short():
    message = one_line_error(lambda: parse_layers_text("conv:8:3\nconv:8:" + "x" * 500))
    assert message.startswith("line 2 (conv:8:xxxx") and "…)" in message
    message = one_line_error(lambda: parse_layer("conv:8:3\u202e\n:x"))
    assert "\\u202e" in message


@pytest.mark.parametrize("text", ["1000001x8x3", "8x8x1000001", "1" + "0" * 400 + "x8x3"])
def test_input_sizes_past_the_limit(text):
    assert one_line_error(lambda: parse_input_shape(text)).startswith(
        f"input: each size must be at most 1,000,000 (the calculator's limit), got '{text[:20]}")


@pytest.mark.parametrize("input_shape, layers, batch, message", [
    # issue 15: a 1,000,000 x 1,000,000 x 3 input with batch 10^9
    (TERA, SEED_LAYERS, 10**9, r"^layer 2 \(conv2\): the network reaches "
                               r"11,925,000,000,000,000 multiply-accumulates here, more than "
                               r"the calculator's limit of 10\^15$"),
    (TERA, [LayerSpec("conv", filters=8, kernel=(3, 3))], 10**9,
     r"^batch: training a batch of 1,000,000,000 needs 4.40e\+22 bytes, more than the "
     r"calculator's limit of 10\^18 bytes \(1 EB\)$"),
    ((8, 8, 3), [LayerSpec("flatten")], MAX_BATCH + 1,
     rf"^batch: the batch must be at most 1,000,000,000 {LIMIT}, got 1000000001$"),
    ((10**6, 10**6, 10**6), [LayerSpec("flatten")], 1,
     r"^input: each size|^input: 1000000x1000000x1000000 is "),
    ((1000, 1000, 1000), [LayerSpec("flatten"), LayerSpec("dense", units=10**6)], 1,
     r"^layer 2 \(dense1\): the network reaches 1,000,000,001,000,000 parameters here"),
    ((8, 8, 3), [LayerSpec("conv", filters=10**7, kernel=(1, 1))], 1,
     rf"^layer 1 \(conv1\): filters must be at most 1,000,000 {LIMIT}, got 10000000$"),
    ((8, 8, 3), [LayerSpec("zeropad", pad=(10**7, 0, 0, 0))], 1,
     rf"^layer 1 \(zeropad1\): pad must be at most 1,000,000 {LIMIT}"),
    ((8, 8, 3), [LayerSpec("conv", filters=2, kernel=(3, 10**12))], 1,
     rf"^layer 1 \(conv1\): kernel must be at most 1,000,000 {LIMIT}"),
    # Strides multiply: the receptive field of 1x1 maps grows without the maps growing.
    ((1, 1, 1), [LayerSpec("maxpool", kernel=(1, 1), strides=(10**6, 10**6),
                           padding="same")] * 3, 1,
     r"^layer 3 \(maxpool3\): its receptive field reaches 1,000,000,000,000,000,000 input "
     r"pixels"),
    ((8, 8, 3), [LayerSpec("dropout")] * (MAX_LAYERS + 1), 1,
     r"^network: 10,001 layers, more than the calculator's limit of 10,000$"),
])
def test_analysis_refuses_networks_past_the_limits(input_shape, layers, batch, message):
    error = one_line_error(lambda: analyze(input_shape, layers, batch=batch))
    assert re.search(message, error), error


def test_a_network_at_the_limits_is_computed_exactly():
    stats = analyze(TERA, [LayerSpec("conv", filters=8, kernel=(3, 3))], batch=1)
    assert stats.total_macs == (10**6 - 2) ** 2 * 27 * 8 < MAX_COUNT
    assert stats.training_bytes / GB > 0
    assert analyze((8, 8, 3), [LayerSpec("flatten")], batch=MAX_BATCH).memory.batch == MAX_BATCH
    assert len(analyze((8, 8, 3), [LayerSpec("dropout")] * MAX_LAYERS).layers) == MAX_LAYERS
    assert parse_layer(f"conv:{MAX_SIZE}:1").filters == MAX_SIZE


def test_the_limits_are_stated_once_with_their_values():
    text = " ".join(LIMITS)
    assert "1,000,000" in text and "10,000 layers" in text and "10^15" in text
    assert "1,000,000,000 samples" in text and "10^18 bytes" in text


def test_format_bytes_never_raises():
    assert format_bytes(10**400) == "more than 10^300 GB"
    assert format_bytes(10**40) == "1.00e+31 GB"
    assert format_bytes(float("inf")) == "-" and format_bytes(float("nan")) == "-"
    assert format_bytes(2.27e9) == "2.27 GB" and format_bytes(12.61e6) == "12.61 MB"


# ----------------------------------------------------------------------- bookmarks


def config_of(text: str, shape=(8, 8, 3)) -> CalcConfig:
    return CalcConfig(shape, tuple(parse_layers_text(text)), batch=4)


def test_10000_layers_pack_into_a_bookmark_that_round_trips():
    config = config_of("\n".join(["conv:4:3:1:same"] * MAX_LAYERS))
    query = to_query(config)
    assert "layer" not in query and bookmark.PACKED_KEY in query
    assert not bookmark.too_large(query), bookmark.query_chars(query)
    assert from_query(query) == config


def test_10000_varied_layers_are_too_large_to_bookmark_and_offered_as_text():
    rng = random.Random(15)
    config = config_of("\n".join(f"dropout:0.{rng.randrange(10**6):06d}"
                                 for _ in range(MAX_LAYERS)))
    query = to_query(config)
    assert bookmark.too_large(query)
    text = spec_text(config)
    assert text.startswith("# cnnlab calculator: input 8x8x3, batch 4")
    assert tuple(parse_layers_text(text)) == config.layers


def test_short_networks_keep_readable_layer_values():
    query = to_query(config_of("conv:8:3\nflatten\ndense:10"))
    assert query["layer"] == ["conv:8:3", "flatten", "dense:10"]
    assert bookmark.PACKED_KEY not in query
    packed = {**query, bookmark.PACKED_KEY: bookmark.pack("conv:8:3\nflatten\ndense:10")}
    del packed["layer"]
    assert from_query(packed) == from_query(query)


def test_a_decompression_bomb_in_a_link_is_refused_quickly():
    bomb = bookmark.pack("\n" * 6_000_000)  # 6 MB of text in 8 KB of URL
    assert len(bomb) < bookmark.MAX_QUERY_CHARS
    start = time.perf_counter()
    message = one_line_error(lambda: from_query({bookmark.PACKED_KEY: bomb}))
    assert time.perf_counter() - start < 0.5
    assert message == ("packed: the layer text is more than 1,000,000 bytes once decompressed "
                       "(the calculator's limit)")
    with pytest.raises(LimitError):
        bookmark.unpack("A" * (bookmark.MAX_QUERY_CHARS + 1))


@pytest.mark.parametrize("value, message", [
    ("abc$", r"^packed: not a packed layer list \(bad base64url\)$"),
    ("é", r"^packed: not a packed layer list \(bad base64url\)$"),
    ("AAAA", r"^packed: not a packed layer list \(bad zlib data\)$"),
    (bookmark.pack("conv:8:3\n" * 100)[:-8], r"^packed: the packed layer list is cut short$"),
    ("eJw", r"^packed: the packed layer list is cut short$"),
])
def test_a_bad_packed_value_is_one_line(value, message):
    assert re.search(
        message, one_line_error(lambda: bookmark.unpack(value)))


def test_not_utf8_and_bad_lines_in_a_packed_value():
    raw = base64.urlsafe_b64encode(zlib.compress(b"\xff\xfe")).decode()
    assert one_line_error(lambda: bookmark.unpack(raw)) == \
        "packed: the packed layer text is not UTF-8"
    packed = bookmark.pack("conv:8:3\nconv:0:3")
    assert one_line_error(lambda: from_query({"packed": packed})).startswith(
        "line 2 (conv:0:3): filters must be a positive integer")


def test_a_link_gives_its_layers_one_way_and_at_most_the_limit():
    assert one_line_error(lambda: from_query({"layer": ["flatten"], "packed": "x"})) == \
        "layer/packed: give the layers one way, not both"
    assert one_line_error(lambda: from_query({"layer": ["dropout"] * (MAX_LAYERS + 1)})) == \
        "layer: 10,001 layers, more than the calculator's limit of 10,000"
    assert one_line_error(lambda: parse_layers_text("dropout\n" * (MAX_LAYERS + 1))) == \
        "text: 10,001 layers, more than the calculator's limit of 10,000"


@pytest.mark.parametrize("query, message", [
    ({"layer": "conv:10000000000000000000000:3", "input": "8x8x3"},
     r"^layer 1 \(conv:10000000000000000000000:3\): filters must be at most 1,000,000"),
    ({"layer": "zeropad:1" + "0" * 400, "input": "8x8x3"},
     r"^layer 1 \(zeropad:1000.*…\): pad must be at most 1,000,000"),
    ({"input": "1000000x1000000x3", "batch": "1000000000"},
     r"^layer 2 \(conv2\): the network reaches .* multiply-accumulates here"),
    ({"input": "1000000x1000000x3", "layer": "conv:8:3", "batch": "1000000000"},
     r"^batch: training a batch of 1,000,000,000 needs"),
    ({"batch": "1" + "0" * 5000}, r"^batch/accum: must be positive integers, got '1000.*…' "
                                  r"\(5,001 characters\), None$"),
    ({"gpu": "1e400"}, r"^gpu: must be between 0.01 and 1,000,000 GB, got '1e400'$"),
])
def test_links_past_the_limits_are_one_line(query, message):
    assert re.search(message, one_line_error(lambda: from_query(query)))


def test_every_packed_bookmark_reads_back_as_written():
    rng = random.Random(3)
    for _ in range(20):
        lines = [rng.choice(["conv:4:3:1:same", "batchnorm", "dropout:0.25", "maxpool:1",
                             "activation:relu", "lrn:2:alpha=2e-05:beta=0.75"])
                 for _ in range(rng.randrange(1, 400))]
        config = config_of("\n".join(lines), (16, 16, 4))
        assert from_query(to_query(config)) == config
    assert format_layers_text(config.layers).count("\n") == len(lines) - 1
