"""AppTest tests of the calculator page: what a user sees change when they act."""

from __future__ import annotations

import random
import re

import pytest
from streamlit.testing.v1 import AppTest

from cnnlab.calc import bookmark
from cnnlab.calc import charts as calc_charts
from cnnlab.calc.analysis import analyze
from cnnlab.calc.fit import fit_options
from cnnlab.calc.framework_memory import framework_estimate
from cnnlab.calc.grammar import GRAMMAR_HELP
from cnnlab.calc.memory import GB
from cnnlab.calc.presets import PRESETS
from cnnlab.calc.report import format_bytes
from cnnlab.ui.safe import plain
from tests.apptest import APP, app_at, error_lines, run_isolated, shown

EDITOR = "calc_layers_0"  # the first layer editor's key (a new one per loaded preset)


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


errors = error_lines  # as a reader sees them (plain() escapes Markdown)


def edit(at, edited_rows=None, added_rows=None, deleted_rows=None):
    at.session_state[EDITOR] = {"edited_rows": edited_rows or {},
                                "added_rows": added_rows or [], "deleted_rows": deleted_rows or []}
    return at.run()


@pytest.fixture
def at():
    at = app_at("pages/calculator.py")
    assert not at.exception
    return at


def test_opens_on_the_seed_exercise_with_its_numbers(at):
    shown = metrics(at)
    assert shown["Parameters"] == "903,400"
    assert shown["Predict one instance"] == "12.61 MB"
    assert shown["Train one batch of 50"] == "576.45 MB"
    seed_box = " ".join(i.value for i in at.info)
    assert "903,400" in seed_box and "6.00 MB, 3.00 MB, 1.52 MB" in seed_box
    assert "565.61 MB" in seed_box  # the seed's "about 566 MB" before gradients
    assert "the seed says 480 MB" in seed_box
    assert "2,800 + 180,200 + 720,400 = **903,400**" in seed_box  # joined from the stats
    per_layer = at.dataframe[1].value
    assert list(per_layer["params"]) == [2_800, 180_200, 720_400]
    assert list(per_layer["output"]) == ["100 x 150 x 100", "50 x 75 x 200", "25 x 38 x 400"]
    assert at.query_params["preset"] == "seed exercise"
    assert at.query_params["layer"] == ["conv:100:3:2:same", "conv:200:3:2:same",
                                        "conv:400:3:2:same"]


def test_changing_batch_dtype_and_optimizer_changes_the_totals(at):
    at.number_input(key="calc_batch").set_value(10).run()
    assert metrics(at)["Train one batch of 10"] == "126.85 MB"
    assert at.query_params["batch"] == "10"
    at.selectbox(key="calc_optimizer").select("sgd").run()
    assert metrics(at)["Train one batch of 10"] == "119.63 MB"  # 2 x 3.6136 MB fewer
    at.selectbox(key="calc_dtype").select("mixed_float16").run()
    assert metrics(at)["Train one batch of 10"] == "67.03 MB"  # activations halved
    assert at.query_params["dtype"] == "mixed_float16"
    assert "12.61 MB" in at.info[0].value  # the seed box stays in float32, as the exercise


def test_preset_loads_a_new_table(at):
    at.selectbox(key="calc_preset").select("VGG16").run()
    assert not at.exception
    assert metrics(at)["Parameters"] == "138,357,544"
    assert len(at.data_editor[0].value) == len(PRESETS["VGG16"][1])
    assert at.query_params["preset"] == "VGG16"


def test_editing_a_cell_recomputes(at):
    edit(at, edited_rows={1: {"filters/units": 50}}, added_rows=[{"kind": "globalavgpool"}])
    assert not at.error
    assert metrics(at)["Parameters"] == f"{2_800 + (9 * 100 * 50 + 50) + (9 * 50 * 400 + 400):,}"
    assert at.query_params["layer"][-1] == "globalavgpool"
    assert "preset" not in at.query_params  # no longer the preset


def test_a_bad_cell_shows_one_error_beside_the_table_and_never_a_traceback(at):
    edit(at, edited_rows={1: {"kernel": "3y"}})
    assert not at.exception
    assert errors(at) == [
        "layer 2 (conv2): kernel must be N or NxM of positive integers, got '3y'"]
    assert metrics(at)["Parameters"] == "903,400"  # the last valid network stays shown
    edit(at, edited_rows={2: {"kernel": "300", "padding": "valid"}})
    assert errors(at) == [
        "layer 3 (conv3): kernel 300x300 is larger than its 50x75 VALID input"]
    edit(at, deleted_rows=[0, 1, 2])
    assert errors(at) == ["the network has no layers: add a row"]
    assert not at.exception


def test_the_url_opens_the_same_view():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=30)
    at.query_params.update({"preset": "AlexNet", "batch": "64", "gpu": "8"})
    at.run()
    at.switch_page("pages/calculator.py").run()
    assert not at.exception
    assert metrics(at)["Parameters"] == "60,965,224"
    assert at.number_input(key="calc_batch").value == 64
    assert at.number_input(key="calc_gpu").value == 8.0

    at = AppTest.from_file(APP, default_timeout=30)
    at.query_params.update({"input": "28x28x1", "layer": ["conv:8:3", "flatten", "dense:10"],
                            "batch": "4"})
    at.run()
    at.switch_page("pages/calculator.py").run()
    assert metrics(at)["Parameters"] == f"{8 * 9 + 8 + 26 * 26 * 8 * 10 + 10:,}"


def test_a_bad_url_says_so_and_opens_the_default():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=30)
    at.query_params.update({"layer": ["conv:0:3"]})
    at.run()
    at.switch_page("pages/calculator.py").run()
    assert not at.exception
    assert errors(at)[0].startswith("The link's configuration is not valid: layer 1 "
                                        "(conv:0:3): filters must be a positive integer")
    assert metrics(at)["Parameters"] == "903,400"


def test_make_it_fit_panel(at):
    at.number_input(key="calc_gpu").set_value(0.3).run()
    fit = at.dataframe[-1].value.set_index("remedy")
    shape, layers = PRESETS["seed exercise"]
    # The headline and the remedies use the framework model; the textbook count is beside.
    largest = framework_estimate(shape, layers, batch=50).max_batch(0.3 * GB)
    assert 1 < largest < 25  # Keras keeps more per sample than the textbook's 25 allow
    assert fit.loc["smaller batch", "change"] == f"batch {largest} (from 50)"
    assert bool(fit.loc["smaller batch", "fits"]) is True
    assert fit.loc["smaller batch", "textbook count"] == format_bytes(
        analyze(shape, layers, batch=largest).training_bytes)
    expected = {o.remedy: o for o in fit_options(shape, layers, batch=50, gpu_bytes=0.3 * GB)}
    assert fit.loc["gradient accumulation", "change"] == \
        expected["gradient accumulation"].change
    assert bool(fit.loc["mixed precision", "fits"]) is expected["mixed precision"].fits
    metric = next(m for m in at.metric if m.label == "Largest batch that fits")
    assert metric.value == f"{largest:,}"
    assert metric.delta == "textbook: 25"


@pytest.mark.slow
def test_measure_on_this_machine_shows_measured_beside_both_models():
    at = app_at("pages/calculator.py")
    at.selectbox(key="calc_preset").set_value("LeNet-5").run()
    at.number_input(key="calc_batch").set_value(1024).run()
    at.number_input(key="calc_measure_batch").set_value(1024).run()
    at.button(key="calc_measure").click().run(timeout=300)
    assert not at.exception and not at.error
    table = next(df.value for df in at.dataframe if "framework / measured" in df.value)
    row = table.set_index("").loc["per sample"]
    assert row["measured"] > 0 and 0.5 < row["framework / measured"] < 2
    gap = " ".join(shown(m.value) for m in at.markdown)
    assert "Measured on CPU:0" in gap and "TensorFlow peaked in" in gap
    # The headline now leads with the measured line.
    metric = next(m for m in at.metric if m.label == "Largest batch that fits")
    assert "measured line" in metric.help


def test_text_box_replaces_the_network_or_names_the_bad_line(at):
    at.text_area[0].set_value("conv:8:3\nflatten\ndense:x").run()
    next(b for b in at.button if b.label == "Use this text").click().run()
    assert errors(at) == [
        "line 3 (dense:x): units must be a positive integer, got 'x'"]
    at.text_area[0].set_value("conv:8:3\nflatten\ndense:10").run()
    next(b for b in at.button if b.label == "Use this text").click().run()
    assert not at.error and not at.exception
    assert at.text_area[0].help == GRAMMAR_HELP  # the grammar's one statement
    assert len(at.data_editor[0].value) == 3
    assert metrics(at)["Parameters"] == f"{8 * 27 + 8 + 198 * 298 * 8 * 10 + 10:,}"


def test_calculator_page_does_not_import_tensorflow():
    result = run_isolated("pages/calculator.py")
    assert result["exceptions"] == []
    assert result["tensorflow"] is False
    assert result["keras"] is False
    assert "Calculator" in result["titles"]


def test_figures_show_the_computed_numbers():
    stats = analyze(*PRESETS["seed exercise"], batch=50)
    fig = calc_charts.layer_figure(stats)
    assert list(fig.data[0].y) == [2_800, 180_200, 720_400]
    assert list(fig.data[1].y) == [6.0, 3.0, 1.52]
    gpu = 1 * GB
    fig = calc_charts.memory_vs_batch_figure(stats, gpu)
    by_name = {trace.name: trace for trace in fig.data}
    assert set(by_name["GPU memory 1 GB"].y) == {1.0}
    line = by_name["training, float32"]
    assert line.y[list(line.x).index(50)] == pytest.approx(stats.training_bytes / GB)
    largest = stats.max_batch(gpu)
    assert by_name[f"largest that fits: {largest}"].y[0] <= 1.0
    mixed = by_name["training, mixed_float16"]
    assert mixed.y[list(mixed.x).index(50)] == pytest.approx(
        stats.at(dtype="mixed_float16").training_bytes / GB)
    assert max(line.x) >= largest


# ----------------------------------------------------------------------- hostile input (issue 15)


def open_link(query: dict) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update(query)
    at.run()
    at.switch_page("pages/calculator.py").run()
    return at


def assert_one_plain_error(at, starts: str) -> None:
    """No traceback; exactly one error box, which reads `starts...` and whose Markdown source
    is that text escaped (`plain`), so nothing in it renders as an image, link or formula."""
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.error) == 1, errors(at)
    assert errors(at)[0].startswith(starts), errors(at)[0]
    assert at.error[0].value == plain(errors(at)[0], 1000)


LINK = "The link's configuration is not valid: "


@pytest.mark.parametrize("query, message", [
    ({"layer": "conv:10000000000000000000000:3", "input": "8x8x3"},
     "layer 1 (conv:10000000000000000000000:3): filters must be at most 1,000,000 (the "
     "calculator's limit), got '10000000000000000000000'"),
    ({"layer": "zeropad:1" + "0" * 400, "input": "8x8x3"},
     "layer 1 (zeropad:100000000000000000000000000000000000000000000000000…): pad must be at "
     "most 1,000,000 (the calculator's limit), got '1000000000000000000000000000000000000…' "
     "(401 characters)"),
    ({"input": "1000000x1000000x3", "batch": "1000000000"},
     "layer 2 (conv2): the network reaches 11,925,000,000,000,000 multiply-accumulates here, "
     "more than the calculator's limit of 10^15"),
    ({"input": "1000000x1000000x3", "layer": "conv:8:3", "batch": "1000000000"},
     "batch: training a batch of 1,000,000,000 needs 4.40e+22 bytes, more than the "
     "calculator's limit of 10^18 bytes (1 EB)"),
    ({"gpu": "inf"}, "gpu: must be between 0.01 and 1,000,000 GB, got 'inf'"),
    ({"packed": bookmark.pack("\n" * 6_000_000)},
     "packed: the layer text is more than 1,000,000 bytes once decompressed (the "
     "calculator's limit)"),
    ({"layer": "![x](https:127.0.0.1:8599):8"},
     "layer 1 (![x](https:127.0.0.1:8599):8): unknown layer kind '![x](https'"),
    ({"layer": "conv:8:3:name=$x^2$ <b>b</b> [a](x.org) **c**"},
     "layer 1 ($x^2$ <b>b</b> [a](x.org) **c**): name '$x^2$ <b>b</b> [a](x.org) **c**' must "
     "start with a letter"),
])
def test_a_hostile_link_gives_one_plain_error_and_opens_the_default(query, message):
    at = open_link(query)
    assert_one_plain_error(at, LINK + message)
    # Every character Markdown, KaTeX or HTML would act on is backslash-escaped.
    assert not re.search(r"(?<!\\)[][()$<>*!_]", at.error[0].value), at.error[0].value
    assert metrics(at)["Parameters"] == "903,400"


def test_hostile_text_and_cells_give_one_plain_error(at):
    at.text_area[0].set_value("conv:8:3\n![x](https://127.0.0.1:8599/x.png)").run()
    next(b for b in at.button if b.label == "Use this text").click().run()
    assert_one_plain_error(at, "line 2 (![x](https://127.0.0.1:8599/x.png)): unknown layer "
                               "kind '![x](https'")
    at = app_at("pages/calculator.py")
    edit(at, edited_rows={1: {"kernel": "3x2000000"}})
    assert_one_plain_error(at, "layer 2 (conv2): kernel must be at most 1,000,000 (the "
                               "calculator's limit), got '2000000'")
    edit(at, edited_rows={1: {"kernel": "3", "name": "[a](http://x.org)"}})
    assert_one_plain_error(at, "layer 2 ([a](http://x.org)): name '[a](http://x.org)' must")


def test_a_huge_number_in_the_table_is_ignored_not_a_traceback(at):
    # Streamlit drops an edit its Int64 column cannot hold (and logs it); the browser's
    # number cell stops at max_value before that.
    edit(at, edited_rows={1: {"filters/units": 10**22}})
    assert not at.exception and not at.error
    assert metrics(at)["Parameters"] == "903,400"


def use_text(at, text: str):
    at.text_area[0].set_value(text).run()
    next(b for b in at.button if b.label == "Use this text").click().run(timeout=120)
    assert not at.exception and not at.error
    return at


def test_a_long_network_is_bookmarked_packed_and_the_bookmark_reopens_it(at):
    use_text(at, "\n".join(["conv:4:3:1:same"] * 3000))
    query = dict(at.query_params)  # AppTest's query_params: a plain dict
    assert "layer" not in query and query[bookmark.PACKED_KEY]
    assert bookmark.query_chars(query) <= bookmark.MAX_QUERY_CHARS
    reopened = open_link(query)
    assert not reopened.exception and not reopened.error
    assert len(reopened.data_editor[0].value) == 3000
    assert metrics(reopened)["Parameters"] == metrics(at)["Parameters"]


def test_a_network_too_large_to_bookmark_is_offered_as_a_file(at):
    rng = random.Random(11)
    use_text(at, "\n".join(f"dropout:0.{rng.randrange(10**6):06d}" for _ in range(3000)))
    assert len(at.data_editor[0].value) == 3000
    notice = " ".join(i.value for i in at.info)
    assert "This network is too large to bookmark" in notice
    assert "over the 8,000 a link may have" in notice
    labels = [b.label for b in at.get("download_button")]
    assert "Download the layers (text)" in labels   # beside the figure downloads
    assert list(at.query_params) == []  # no stale link to another network
