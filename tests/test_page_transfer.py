"""The Transfer page through AppTest: bad archives, an upload, a short fast-mode training,
the results, the hand-off to Classify, and the session folder's removal."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st

from cnnlab.train.manager import shared_manager
from cnnlab.transfer.archive import demo_archive
from tests.apptest import app_at, run_isolated, run_until, shown

PAGE = "pages/transfer.py"


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    # No weights on this machine: the page must say it trains an untrained base.
    monkeypatch.delenv("CNNLAB_INCEPTION_WEIGHTS_NOTOP", raising=False)
    monkeypatch.delenv("CNNLAB_TRANSFER_DATA", raising=False)
    yield
    shared_manager().shutdown()


def test_opens_without_tensorflow():
    result = run_isolated(PAGE)
    assert result["exceptions"] == []
    assert result["titles"] == ["Transfer learning"]
    assert result["tensorflow"] is False  # nothing loads TensorFlow before there is data


@pytest.mark.parametrize("name, data, message", [
    ("photos.zip", b"this is not a zip", "photos.zip: not a zip archive."),
    ("one.zip", demo_archive(3, 64, classes={"cat": "chelsea"}),
     "one.zip: needs at least two class folders"),
])
def test_bad_archive_one_line_error(name, data, message):
    at = app_at(PAGE)
    workspace = Path(at.session_state["transfer_workspace"])
    before = set(workspace.iterdir())   # a workspace AppTest reuses may hold earlier uploads
    at.file_uploader(key="transfer_zip").set_value((name, data, "application/zip")).run()
    assert not at.exception
    assert len(at.error) == 1 and shown(at.error[0].value).startswith(message)
    assert "\n" not in at.error[0].value
    assert at.session_state["transfer_dataset"] is None
    assert workspace.is_dir() and set(workspace.iterdir()) <= before  # nothing left behind


def test_upload_train_fast_results_and_handoff():
    at = app_at(PAGE, timeout=120)
    assert "Up to 200 MB" in " ".join(c.value for c in at.caption)
    data = demo_archive(per_class=8, size=80, seed=2)
    at.file_uploader(key="transfer_zip").set_value(("pets.zip", data, "application/zip")).run()
    assert not at.exception and not at.error
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Classes"] == "3" and metrics["Images"] == "24"
    assert any("only 8 images" in w.value for w in at.warning)
    assert any("Untrained base" in w.value for w in at.warning)
    split = at.dataframe[0].value  # the split table (nothing was skipped)
    assert list(split["test"]) == [1, 1, 1, 3] and list(split["train"]) == [6, 6, 6, 18]
    assert metrics["Trainable parameters (the head)"] == f"{2048 * 3 + 3:,}"
    # Every AppTest runs as "test session id", so the session's workspace may also hold
    # another test's upload: count this upload's own folder, which lies inside it.
    workspace = Path(at.session_state["transfer_workspace"])
    unpacked = Path(at.session_state["transfer_dataset"].root)
    assert unpacked.resolve().is_relative_to(workspace.resolve())
    assert len(list(unpacked.rglob("*.jpg"))) == 24

    at.selectbox(key="transfer_size").set_value(75)
    at.number_input(key="transfer_epochs_fast").set_value(2)
    at.selectbox(key="transfer_batch").set_value(8)
    at.run()
    at.button(key="transfer_train").click().run(timeout=120)
    assert not at.exception
    run = at.session_state["transfer_run"]
    assert run.config.mode == "fast" and run.config.epochs == 2 and run.image_size == 75
    at = run_until(at, lambda a: run.finished, timeout=240, run_timeout=120, poll=0.5)
    at.run(timeout=120)
    assert run.phase1.state == "done", run.phase1.error
    metrics = {m.label: m.value for m in at.metric}
    report = run.report()
    assert metrics["Test accuracy"] == f"{report.accuracy:.1%}"
    # Keras counted the frozen base when the run built it.
    assert metrics["Frozen parameters"] == f"{run.parameters['phase 1'].frozen:,}"
    assert "faster" in " ".join(m.value for m in at.markdown)
    assert [h.value for h in at.header][-2:] == ["6. How well does it classify?", "7. Keep it"]

    # The URL names the run (never the owner): another browser opening it watches, read-only.
    from streamlit.testing.v1 import AppTest

    from tests.apptest import APP

    assert at.query_params["run"] == run.phase1.id and "owner" not in at.query_params
    watcher = AppTest.from_file(APP, default_timeout=120)
    watcher.query_params["run"] = run.phase1.id
    watcher.run()
    watcher.switch_page(PAGE).run()
    assert not watcher.exception, [e.value for e in watcher.exception]
    assert "Someone else's run" in [h.value for h in watcher.header]
    assert watcher.subheader[0].value == run.phase1.label
    assert {m.label: m.value for m in watcher.metric}["Test accuracy"] == f"{report.accuracy:.1%}"
    keys = [b.key for b in watcher.button]
    assert "transfer_use" not in keys and "transfer_stop" not in keys
    assert not watcher.get("download_button")

    at.button(key="transfer_use").click().run(timeout=60)
    handoff = at.session_state["classify_custom_model"]
    assert handoff["labels"] == ["cat", "coffee", "rocket"] and handoff["image_size"] == 75
    assert handoff["model"] is run.model and handoff["preprocessing"] == "inception"
    assert any("now uses this model" in s.value for s in at.success)

    # The Classify page of this session now classifies with it: its classes, its input size.
    at.switch_page("pages/classify.py").run(timeout=120)
    assert not at.exception, [e.value for e in at.exception]
    assert at.radio(key="classify_model").value == "transfer"
    at.pills(key="classify_samples").set_value(["coffee"]).run(timeout=120)
    assert not at.exception, [e.value for e in at.exception]
    results = list(at.session_state["classify_results"].values())
    assert {name for _, name, _ in results[0].top} <= {"cat", "coffee", "rocket"}
    assert results[0].view.size == (75, 75)

    # The session's folder goes when the session's resources are released.
    st.cache_resource.clear()
    assert not workspace.exists()


def test_demo_dataset_button():
    at = app_at(PAGE)
    at.radio(key="transfer_source").set_value("demo").run()
    at.select_slider(key="transfer_demo_n").set_value(10).run()
    at.button(key="transfer_demo").click().run(timeout=60)
    assert not at.exception
    assert at.session_state["transfer_dataset"].counts() == {"cat": 10, "coffee": 10,
                                                             "rocket": 10}
    assert any("not a real dataset" in c.value for c in at.caption)
    # The computed cost of each mode, before anything trains.
    text = " ".join(c.value for c in at.caption)
    assert "This run sends **30 images** through Inception v3" in text
