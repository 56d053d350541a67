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

