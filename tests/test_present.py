"""Presenter mode (cnnlab.ui.present), each page's view in the URL (cnnlab.ui.url_state,
cnnlab.ui.views) and the Architectures walk-through, through AppTest and on the figures."""

from __future__ import annotations

import pytest

from cnnlab.nets import builders, step_charts, steps, summary
from cnnlab.nets import charts as arch_charts
from cnnlab.ui import present
from tests.apptest import APP, app_at, shown

ARCH = "pages/architectures.py"


def _at(page: str | None = None, **query: str):
    """The app with `query` in its URL (a bookmark), switched to `page`."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update(query)
    at.run()
    if page:
        at.switch_page(page)
        at.query_params.update(query)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _sizes(node, in_font=False):
    """Every explicit font size in a figure's dict, inline <span style> sizes included."""
    import re

    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if in_font and key == "size" and isinstance(value, (int, float)):
                found.append(value)
            elif isinstance(value, str):
                found += [float(s) for s in re.findall(r"font-size:\s*([\d.]+)px", value)]
            elif key != "template":
                found += _sizes(value, key.endswith("font"))
    elif isinstance(node, list):
        for item in node:
            found += _sizes(item, in_font)
    return found


def _figures():
    rows = summary.overview()
    totals = steps.inception_build_up((28, 28, 192), builders.GOOGLENET_MODULES["3a"])
    unit = steps.residual_build_up((56, 56, 256), 64, stride=2)
    return [arch_charts.overview_figure(rows),
            arch_charts.block_diagram(builders.network("resnet50"), "conv3"),
            arch_charts.channel_bars(["a", "b"], [1, 2], [0.5, 1], "t"),
            step_charts.inception_build_up_figure(totals, 5, "28x28x192"),
            step_charts.residual_figure(unit, "projection", ["a", "b", "c"])]


@pytest.mark.parametrize("index", range(5))
def test_projector_figures_have_big_type_thick_lines_and_dark_colours(index):
    fig = _figures()[index]
    shown = present.projector_figure(fig)
    spec = shown.to_dict()
    assert min(_sizes(spec["layout"]) + _sizes(spec["data"])) >= present.MIN_FIGURE_FONT
    template = shown.layout.template.layout
    assert template.font.size >= present.MIN_FIGURE_FONT
    assert template.xaxis.tickfont.size >= present.MIN_FIGURE_FONT
    assert shown.layout.height == round((fig.layout.height or 450) * present.HEIGHT_GROWTH)
    for trace in spec["data"]:
        if trace["type"] == "scatter" and "lines" in trace.get("mode", "lines"):
            assert trace["line"]["width"] >= present.LINE_WIDTH
    assert fig.to_dict() == _figures()[index].to_dict()       # the original is untouched


def test_projector_colours_are_darker_and_greys_stay_grey():
    import colorsys

    def lightness(hex_colour):
        r, g, b = (int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5))
        return colorsys.rgb_to_hls(r, g, b)

    for pale in ("#4c78a8", "#f58518", "#72b7b2", "#eeca3b"):
        h, light, s = lightness(present._contrast(pale))
        assert light <= 0.42 + 1e-3 and s >= 0.65 - 1e-3
    _, _, s = lightness(present._contrast("#bab0ac"))
    assert s < 0.2                                            # a grey is not coloured in
    assert present._contrast("rgba(255,200,200,0.3)").endswith(",0.3)")
    assert present._contrast("Greys") == "Greys" and present._contrast(None) is None


def test_toolbar_saves_svg_and_the_download_is_offline_html():
    fig = _figures()[0]
    config = present.export_config(fig, "cnnlab-overview")
    assert config["toImageButtonOptions"]["format"] == "svg"
    assert config["toImageButtonOptions"]["width"] == 1920
    html = present.standalone_html(fig, "cnnlab-overview")
    assert "<script src=" not in html                     # plotly.js is inside, no CDN
    assert "https://cdn.plot.ly/plotly" not in html
    assert len(html) > 1_000_000 and '"format": "png"' in html and '"width": 1920' in html


def test_present_in_the_url_switches_it_on_and_survives_a_page_switch():
    at = _at(present="1")
    assert at.session_state["present"] is True
    assert at.toggle(key="present").value is True
    assert any("font-size: 24px" in h.proto.body for h in at.get("html"))
    at.switch_page("pages/calculator.py")
    at.query_params.clear()                      # a page switch drops the query string
    at.run()
    assert not at.exception
    assert at.query_params["present"] == "1" and at.session_state["present"] is True
    at.toggle(key="present").set_value(False).run()
    assert "present" not in at.query_params and not at.get("html")


def test_a_bad_present_value_is_one_line_and_ignored():
    at = _at(present="maybe<b>")
    assert at.session_state["present"] is False
    assert len(at.warning) == 1
    assert shown(at.warning[0].value) == ("Ignored present='maybe<b>' in the link: use "
                                          "present=1 or present=0.")


def test_architectures_walks_through_in_presenter_mode():
    at = _at(ARCH, present="1", step="8")
    assert at.header[0].value == steps.step(8).title
    metrics = {m.label: m.value for m in at.metric}
    totals = steps.inception_build_up((28, 28, 192), builders.GOOGLENET_MODULES["3a"])
    assert metrics["Parameters so far, with reduces"] == f"{totals[1].params:,}"
    assert metrics["Without the reduces"] == f"{totals[1].naive_params:,}"
    at.button(key="step_next").click().run()
    assert at.query_params["step"] == "9" and at.header[0].value == steps.step(9).title
    at.button(key="step_back").click().run()
    at.button(key="step_back").click().run()
    assert at.query_params["step"] == "7"
    at.selectbox(key="arch_step").set_value(13).run()
    assert at.header[0].value == steps.step(13).title
    assert {m.label: m.value for m in at.metric}["Identity shortcut"] == "0 parameters"


def test_every_step_draws_without_an_error():
    at = _at(ARCH, step="1")
    for number in range(1, steps.LAST + 1):
        at.selectbox(key="arch_step").set_value(number).run()
        assert not at.exception and not at.error, number
        assert at.header[0].value == steps.step(number).title
    assert at.query_params["step"] == str(steps.LAST)


def test_architectures_bookmark_restores_the_view():
    at = _at(ARCH, net="resnet152", stage="conv4", c="256", f3x3="200", res_f="32",
             stride="2", photo="coffee")
    assert at.selectbox(key="diagram_net").value == "ResNet-152"
    assert at.selectbox(key="diagram_stage_resnet152").value == "conv4"
    assert at.number_input(key="inc_c").value == 256
    assert at.number_input(key="inc_2_3a").value == 200
    assert at.number_input(key="res_f").value == 32
    assert at.radio(key="photo_source").value == "coffee"
    assert not at.warning
    # and the URL follows the widgets, defaults left out
    at.number_input(key="inc_hw").set_value(14).run()
    assert at.query_params["hw"] == "14" and at.query_params["net"] == "resnet152"
    at.number_input(key="inc_hw").set_value(28).run()
    assert "hw" not in at.query_params


def test_bad_values_in_a_link_are_ignored_with_one_line():
    at = _at(ARCH, step="99", net="vgg<script>", c="-4", photo="coffee")
    assert len(at.warning) == 1
    text = shown(at.warning[0].value)
    assert "\n" not in text and text.startswith("Ignored in the link: step='99' (not a whole "
                                                "number from 1 to 17); net='vgg<script>' (")
    assert "c='-4' (not a whole number from 1 to 4096)" in text
    assert at.selectbox(key="diagram_net").value == "ResNet-50"          # the default
    assert at.radio(key="photo_source").value == "coffee"                # the good one applies
    assert "arch_step" not in at.session_state or at.session_state["arch_step"] is None


def test_the_whole_page_offers_the_walk_through_and_returns():
    at = app_at(ARCH, timeout=60)
    assert not at.exception and at.title[0].value == "Architectures"
    at.button(key="arch_walk").click().run()
    assert at.query_params["step"] == "1" and at.header[0].value == steps.step(1).title
    at.button(key="arch_all").click().run()
    assert "step" not in at.query_params
    assert [h.value for h in at.header][:2] == ["What each one invented", "Block diagram"]


def test_train_bookmark_restores_the_config():
    at = _at("pages/train.py", net="dense", epochs="3", batch="128", lr="0.01", hidden="100",
             fp16="1", data="fashion_mnist")
    assert at.radio(key="preset").value.startswith("Dense")
    assert at.radio(key="dataset").value == "fashion_mnist"
    assert at.number_input(key="epochs").value == 3
    assert at.selectbox(key="batch").value == 128
    assert at.select_slider(key="lr").value == 0.01
    assert at.number_input(key="preset_units").value == 100
    assert at.toggle(key="mixed").value is True
    at.number_input(key="epochs").set_value(5).run()
    assert at.query_params["epochs"] == "5"


def test_train_bad_link_values_leave_the_defaults():
    at = _at("pages/train.py", epochs="1e9", lr="7", opt="sgd")
    assert len(at.warning) == 1
    assert "epochs='1e9'" in shown(at.warning[0].value) and "lr='7'" in shown(at.warning[0].value)
    assert at.number_input(key="epochs").value == 10
    assert at.selectbox(key="optimizer").value == "sgd"


def test_classify_bookmark_restores_the_samples():
    at = _at("pages/classify.py", samples="coffee,rocket")
    assert at.get("button_group")[0].value == ["coffee", "rocket"]
    assert at.query_params["samples"] == "coffee,rocket"
