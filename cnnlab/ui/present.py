"""Presenter mode: cnnlab on a projector, readable from the back row.

Switched on by `?present=1` in any page's URL or by the sidebar toggle (app.py), and kept
for the browser tab's session until switched off: app.py puts `present=1` back into the URL
after every page switch, so a bookmark of any view keeps it.

In presenter mode
- `style()` enlarges the type (Streamlit sizes text in rem: the root is 24 px, and no visible
  text of the main area is smaller than that) and the metric values;
- `figure(fig)` applies one Plotly template to a figure (fonts of at least 18 px, thicker
  lines, bigger markers, darker, saturated colours that survive a washed-out projector).
  It works on the figure itself, per session: `plotly.io.templates.default` is global to the
  server process, which serves every session;
- `fold(label)` puts explanatory prose and secondary tables in an expander (one click opens
  them), `note(text)` is a caption that folds the same way.

Always, presenter mode or not, `chart(fig, ...)` (every page's st.plotly_chart) gives the
figure a fixed height (no layout shift while a live chart redraws), a toolbar that saves
SVG, and, with `download=`, a button that saves the figure as one standalone HTML file with
plotly.js inside (it opens offline; its own toolbar saves a 1920-pixel-wide PNG).
"""

from __future__ import annotations

import colorsys
import contextlib
import copy
import re
from collections.abc import Callable, Iterator
from typing import Any

import streamlit as st

PARAM = "present"                 # the URL query parameter: present=1 on, present=0 off
STATE = "present"                 # session_state key of the flag (the sidebar toggle's key)
_SEEN = "_present_url_seen"       # the URL value already applied in this session
ON_VALUES, OFF_VALUES = ("1", "true", "on", "yes"), ("0", "false", "off", "no")

MIN_FIGURE_FONT = 18              # px: the smallest text in a figure in presenter mode
FIGURE_FONT = 22                  # px: the template's base font
FONT_GROWTH = 1.4                 # explicit sizes in a figure grow by this much
LINE_WIDTH = 4                    # px: the thinnest line in presenter mode
MARKER_GROWTH = 1.5
HEIGHT_GROWTH = 1.15              # a figure with larger type needs a little more room
LEGEND_DROP = 1.6                 # a legend below the plot moves this much further down
DEFAULT_HEIGHT = 450              # px: plotly.js's default, made explicit (a fixed height)
SLIDE_WIDTH = 1920                # px: exported images are this wide (a 1080p slide)
TEMPLATE = "cnnlab_present"
# Okabe & Ito's colour-blind-safe palette, darkened until it keeps its contrast on a
# washed-out projector (black first: the strongest line is the first trace).
COLORWAY = ("#0b3d91", "#c23b00", "#00735a", "#8a1c7c", "#1a1a1a", "#a66f00", "#2f7fc1",
            "#b5003f")
_MAX_LIGHTNESS = 0.42             # explicit colours are darkened to at most this HLS lightness

# Streamlit sizes text in rem. With the root at 24 px body text is 24 px; the rule after it
# lifts what Streamlit draws smaller (captions, widget labels, metric labels and deltas, tab
# and button labels, code) to the root size, and never shrinks what is larger (headings,
# metric values): max(1rem, 1em) is the larger of 24 px and the parent's size.
CSS = """
<style>
html { font-size: 24px; }
[data-testid="stMain"] :is(p, li, label, span, small, code, a, button, input, textarea,
  summary, th, td, [data-testid="stCaptionContainer"], [data-testid="stMetricLabel"],
  [data-testid="stMetricDelta"], [data-testid="stMarkdownContainer"],
  [data-baseweb="select"] div, [data-baseweb="tab"] div) { font-size: max(1rem, 1em); }
[data-testid="stMain"] [data-testid="stMetricValue"] { font-size: 2.6rem; }
[data-testid="stMain"] h1 { font-size: 2.2rem; padding-top: 0; }
[data-testid="stMain"] [data-testid="stMetricValue"] * { font-size: inherit; }
[data-testid="stMain"] .katex { font-size: 1.3em; }
[data-testid="stMain"] [data-testid="stCaptionContainer"],
[data-testid="stMain"] [data-testid="stCaptionContainer"] * { color: #3d3d3d; }
[data-testid="stMainBlockContainer"] { padding-top: 4rem; padding-bottom: 2rem; }
</style>
"""


# ---------------------------------------------------------------------------- the flag


def on() -> bool:
    """Whether this session is in presenter mode."""
    return bool(st.session_state.get(STATE, False))


def follow_url() -> str | None:
    """Apply `?present=` once per value the URL brings (a bookmark, an edited link); returns
    a one-line notice for a value that means neither on nor off (which is then ignored)."""
    value = st.query_params.get(PARAM)
    if value is None or value == st.session_state.get(_SEEN):
        return None
    st.session_state[_SEEN] = value
    if value.lower() in ON_VALUES:
        st.session_state[STATE] = True
    elif value.lower() in OFF_VALUES:
        st.session_state[STATE] = False
    else:
        return f"Ignored present={value[:40]!r} in the link: use present=1 or present=0."
    return None


def keep_in_url() -> None:
    """Write the flag back into the URL: present=1 while on (a page switch drops the query
    string; a page may rewrite it), nothing when off."""
    wanted = "1" if on() else None
    if st.query_params.get(PARAM) != wanted:
        if wanted is None:
            del st.query_params[PARAM]
        else:
            st.query_params[PARAM] = wanted
    st.session_state[_SEEN] = wanted


def sidebar_toggle() -> None:
    """The sidebar's switch (a widget of app.py, so it keeps its state on every page)."""
    st.session_state.setdefault(STATE, False)
    st.toggle("Presenter mode", key=STATE, on_change=keep_in_url,
              help="Projector type, figures first, prose folded, keys → ← to step "
                   "through Architectures, Train and Classify. The same as ?present=1 in the URL.")


def style() -> None:
    """The presenter's CSS, on pages drawn in presenter mode (nothing otherwise)."""
    if on():
        st.html(CSS)


# ---------------------------------------------------------------------------- figures


def _register_template() -> str:
    import plotly.graph_objects as go
    import plotly.io as pio

    if TEMPLATE not in pio.templates:
        axis = {"tickfont": {"size": 20}, "title": {"font": {"size": 22}}, "linewidth": 2,
                "linecolor": "#1a1a1a", "gridcolor": "#c8c8c8", "zerolinecolor": "#6e6e6e",
                "automargin": True, "ticks": "outside", "tickwidth": 2}
        pio.templates[TEMPLATE] = go.layout.Template(
            layout={"font": {"size": FIGURE_FONT, "color": "#111111"},
                    "title": {"font": {"size": 26}}, "colorway": list(COLORWAY),
                    "paper_bgcolor": "#ffffff", "plot_bgcolor": "#ffffff",
                    "legend": {"font": {"size": 20}}, "hoverlabel": {"font": {"size": 20}},
                    "xaxis": axis, "yaxis": axis},
            data={"scatter": [{"line": {"width": LINE_WIDTH}, "marker": {"size": 11}}],
                  "bar": [{"marker": {"line": {"width": 1.5, "color": "#1a1a1a"}}}]})
    return TEMPLATE


def _contrast(colour: Any) -> Any:
    """A hex or rgb() colour darkened and saturated for a projector; other values as given."""
    if not isinstance(colour, str):
        return colour
    if m := re.fullmatch(r"#([0-9a-fA-F]{6})", colour.strip()):
        r, g, b = (int(m.group(1)[i:i + 2], 16) / 255 for i in (0, 2, 4))
        alpha = None
    elif m := re.fullmatch(r"rgba?\(\s*([\d.]+)\s*,\s*([\d.]+)\s*,\s*([\d.]+)\s*(?:,\s*([\d.]+))?\)",
                           colour.strip()):
        r, g, b = (float(m.group(i)) / 255 for i in (1, 2, 3))
        alpha = m.group(4)
    else:
        return colour
    h, lightness, s = colorsys.rgb_to_hls(r, g, b)
    if s < 0.2:                                      # greys stay grey, only darker
        r, g, b = colorsys.hls_to_rgb(h, min(lightness, 0.55), s)
    else:
        r, g, b = colorsys.hls_to_rgb(h, min(lightness, _MAX_LIGHTNESS), max(s, 0.65))
    rgb = tuple(round(255 * v) for v in (r, g, b))
    if alpha is not None:
        return f"rgba({rgb[0]},{rgb[1]},{rgb[2]},{alpha})"
    return "#{:02x}{:02x}{:02x}".format(*rgb)


_INLINE_SIZE = re.compile(r"font-size:\s*(\d+(?:\.\d+)?)px")


def _grow_inline(match: re.Match) -> str:
    """A label's inline <span style='font-size:8px'> grows like the other fonts."""
    return f"font-size:{max(MIN_FIGURE_FONT, round(float(match.group(1)) * FONT_GROWTH))}px"


def _grow_fonts(node: Any, in_font: bool = False) -> None:
    """Every explicit font size in a figure's dict grows, to at least MIN_FIGURE_FONT."""
    if isinstance(node, dict):
        for key, value in node.items():
            if in_font and key == "size":
                if isinstance(value, (int, float)):
                    node[key] = max(MIN_FIGURE_FONT, round(value * FONT_GROWTH))
                elif isinstance(value, list):
                    node[key] = [max(MIN_FIGURE_FONT, round(v * FONT_GROWTH))
                                 if isinstance(v, (int, float)) else v for v in value]
            elif isinstance(value, str) and "font-size" in value:
                node[key] = _INLINE_SIZE.sub(_grow_inline, value)
            elif key != "template":
                _grow_fonts(value, key.endswith("font"))
    elif isinstance(node, list):
        for item in node:
            _grow_fonts(item, in_font)


def _bolder_traces(traces: list[dict]) -> None:
    """Thicker lines, bigger markers, projector colours on each trace's explicit settings."""
    for trace in traces:
        line = trace.get("line")
        if isinstance(line, dict):
            width = line.get("width")
            if trace.get("type", "scatter") in ("scatter", "scattergl"):
                line["width"] = max(LINE_WIDTH, 2 * width if isinstance(width, (int, float))
                                    else LINE_WIDTH)
            if "color" in line:
                line["color"] = _contrast(line["color"])
        marker = trace.get("marker")
        if isinstance(marker, dict):
            size = marker.get("size")
            if isinstance(size, (int, float)):
                marker["size"] = size * MARKER_GROWTH
            elif isinstance(size, list):
                marker["size"] = [s * MARKER_GROWTH if isinstance(s, (int, float)) else s
                                  for s in size]
            colour = marker.get("color")
            marker["color"] = ([_contrast(c) for c in colour] if isinstance(colour, list)
                               else _contrast(colour))
            if isinstance(marker.get("line"), dict) and "color" in marker["line"]:
                marker["line"]["color"] = _contrast(marker["line"]["color"])
        if "fillcolor" in trace:
            trace["fillcolor"] = _contrast(trace["fillcolor"])


def projector_figure(fig):
    """A copy of `fig` for a projector: the presenter template, larger fonts (at least
    MIN_FIGURE_FONT px), thicker lines and markers, darker colours, the same height."""
    import plotly.graph_objects as go

    spec = copy.deepcopy(fig.to_dict())
    layout = spec.setdefault("layout", {})
    layout.pop("template", None)
    _grow_fonts(layout)
    _grow_fonts(spec.get("data", []))
    _bolder_traces(spec.get("data", []))
    for shape in layout.get("shapes", []) or []:
        if isinstance(shape.get("line"), dict) and "color" in shape["line"]:
            shape["line"]["color"] = _contrast(shape["line"]["color"])
    for name, axis in layout.items():
        # plotly labels a log axis' 2s and 5s at 3/4 of the tick font: only powers of ten
        if re.fullmatch(r"[xy]axis\d*", name) and isinstance(axis, dict) \
                and axis.get("type") == "log" and "dtick" not in axis:
            axis["dtick"] = 1
    legend = layout.get("legend")
    if isinstance(legend, dict) and isinstance(legend.get("y"), (int, float)) and legend["y"] < 0:
        legend["y"] *= LEGEND_DROP   # below the axis titles, which grew with the fonts
    layout["template"] = _register_template()
    layout["height"] = round((layout.get("height") or DEFAULT_HEIGHT) * HEIGHT_GROWTH)
    return go.Figure(spec)


def figure(fig):
    """The figure as this session shows it: for a projector in presenter mode, as it is
    otherwise; always with a fixed height."""
    fig = projector_figure(fig) if on() else fig
    if fig.layout.height is None:
        fig.update_layout(height=DEFAULT_HEIGHT)
    return fig


def export_config(fig, name: str, image_format: str = "svg") -> dict:
    """Plotly's config for a figure's toolbar: save `name`.svg (or .png) 1920 pixels wide."""
    height = fig.layout.height or DEFAULT_HEIGHT
    return {"displaylogo": False, "toImageButtonOptions": {
        "format": image_format, "filename": name, "width": SLIDE_WIDTH,
        "height": min(1080, max(480, round(height * SLIDE_WIDTH / 1400))), "scale": 1}}


def standalone_html(fig, name: str) -> str:
    """The figure as one HTML file that opens offline (plotly.js inside, no CDN); its
    toolbar saves a 1920-pixel-wide PNG."""
    return fig.to_html(include_plotlyjs=True, full_html=True,
                       config=export_config(fig, name, "png"))


def _file_stem(key: str | None) -> str:
    return "cnnlab-" + re.sub(r"[^A-Za-z0-9_-]+", "-", key or "figure").strip("-")


def chart(fig, *, key: str | None = None, container=None, download: str | None = None,
          **kwargs):
    """st.plotly_chart for every page: the figure as this session shows it (`figure`), a
    fixed height, a toolbar that saves SVG 1920 pixels wide, and with `download="what"` a
    button that saves the figure as standalone HTML. Returns what st.plotly_chart returns."""
    target = container if container is not None else st
    shown = figure(fig)
    stem = _file_stem(key)
    kwargs.setdefault("theme", None if on() else "streamlit")
    event = target.plotly_chart(shown, key=key, config=export_config(shown, stem), **kwargs)
    if download:
        target.download_button(
            f"Download {download} (HTML)", _lazy_html(shown, stem), file_name=f"{stem}.html",
            mime="text/html", icon=":material/download:", on_click="ignore", type="tertiary",
            key=f"{key}_download" if key else None,
            help="The figure as one file: it opens offline in any browser, and its camera "
                 "button saves a 1920-pixel-wide PNG.")
    return event


def _lazy_html(fig, stem: str) -> Callable[[], str]:
    """Made on the click only: plotly.js inside makes the file about 5 MB."""
    return lambda: standalone_html(fig, stem)


# ---------------------------------------------------------------------------- folding


@contextlib.contextmanager
def fold(label: str, icon: str = ":material/notes:") -> Iterator[None]:
    """Secondary content: in presenter mode inside a closed expander, else in place."""
    if on():
        with st.expander(label, icon=icon):
            yield
    else:
        yield


def note(text: str, label: str = "Notes") -> None:
    """Explanatory prose as a caption; in presenter mode folded away (one click opens it)."""
    if on():
        with st.expander(label, icon=":material/notes:"):
            st.caption(text)
    else:
        st.caption(text)
