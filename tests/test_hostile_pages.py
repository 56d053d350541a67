"""Issue 15, untrusted text on the pages: user-given names reach Markdown and Plotly as text."""

from __future__ import annotations

import numpy as np

from cnnlab.ui.safe import plotly_label

ATTACKS = ["<b>bold</b>", "<img src=x onerror=alert(1)>", "[a](http:evil)", "$x^2$",
           "![x](https:127.0.0.1:8599)"]


def test_class_names_in_plotly_figures_are_escaped():
    from cnnlab.train.charts import confusion_figure
    from cnnlab.transfer.charts import class_counts_figure, precision_recall_figure
    from cnnlab.vision.charts import top5_figure

    figures = [
        class_counts_figure({name: 5 for name in ATTACKS}, 100),
        precision_recall_figure(ATTACKS, np.full(len(ATTACKS), 0.5), np.full(len(ATTACKS), 0.5)),
        confusion_figure(np.ones((len(ATTACKS), len(ATTACKS)), int), ATTACKS),
        top5_figure([("w", name, 0.2) for name in ATTACKS], untrained=False),
    ]
    for fig in figures:
        labels = [str(v) for trace in fig.data for axis in (trace.x, trace.y)
                  if axis is not None for v in list(np.ravel(axis))]
        assert not any("<b>" in v or "<img" in v for v in labels)
        assert any(plotly_label("<b>bold</b>") == v for v in labels)



def test_error_line_has_no_path_no_errno_and_one_line():
    from cnnlab.ui.safe import error_line, without_paths

    exc = OSError(36, "File name too long", "/tmp/cnnlab-k2j4/session/" + "a" * 300)
    line = error_line("Reading the images", exc)
    assert line.startswith("Reading the images failed (OSError: File name too long: 'aaa")
    assert "/tmp" not in line and "Errno" not in line and len(line) <= 300
    assert error_line("Drawing", KeyError("a\nb")) == "Drawing failed (KeyError: 'a\\nb')"
    assert error_line("Drawing", ValueError()) == "Drawing failed (ValueError)"
    assert without_paths(r"see C:\Users\ana\x.h5 and /srv/app/pages/train.py:12") == \
        "see x.h5 and train.py:12"
    assert without_paths("3/4 of http://host/a/b, 20 MB/s") == "3/4 of http://host/a/b, 20 MB/s"


def test_one_line_errors_shows_one_plain_line_and_the_page_goes_on():
    """A section that raises becomes one error line (no traceback, no path, nothing
    rendered); what follows still runs; st.stop() is not caught."""
    from streamlit.testing.v1 import AppTest

    from tests.apptest import shown

    script = """
import streamlit as st
from cnnlab.ui.guard import one_line_errors
with one_line_errors("Drawing the chart"):
    st.write("before")
    raise ValueError("bad class ![x](https:127.0.0.1:8599) in /srv/cnnlab/pages/transfer.py")
st.write("after")
with one_line_errors("Stopping"):
    st.stop()
st.write("never")
"""
    at = AppTest.from_string(script).run()
    assert not at.exception
    assert [shown(e.value) for e in at.error] == [
        "Drawing the chart failed (ValueError: bad class ![x](https:127.0.0.1:8599) in "
        "transfer.py)"]
    assert "![x]" not in at.error[0].value  # escaped for Markdown
    assert [m.value for m in at.markdown] == ["before", "after"]


def test_transfer_a_new_upload_frees_the_previous_ones_folder():
    """Row 9: a session that uploads again holds one unpacked upload on disk, not two."""
    from pathlib import Path

    from cnnlab.transfer.archive import demo_archive
    from tests.apptest import app_at

    at = app_at("pages/transfer.py")
    at.file_uploader(key="transfer_zip").set_value(("first.zip", demo_archive(3, 48, seed=1), "application/zip")).run()
    assert not at.exception and not at.error
    workspace = Path(at.session_state["transfer_workspace"])
    first = at.session_state["transfer_dataset"].root
    others = set(workspace.iterdir()) - {first}  # AppTest sessions may share a workspace
    assert first.is_dir()
    at.file_uploader(key="transfer_zip").set_value(("second.zip", demo_archive(3, 48, seed=2), "application/zip")).run()
    assert not at.exception and not at.error
    second = at.session_state["transfer_dataset"].root
    assert second != first and set(workspace.iterdir()) == others | {second}
