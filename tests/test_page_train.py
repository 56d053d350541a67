"""The Train page through AppTest: config + calculator, a short live training, reattach,
isolation, stop, and the after-training views."""

from __future__ import annotations

import pytest

from cnnlab.train.manager import shared_manager
from tests.apptest import app_at, run_isolated, run_until


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    # No download attempt: the offline MNIST sample, as in the lecture hall.
    monkeypatch.setenv("CNNLAB_OFFLINE", "1")
    yield
    shared_manager().shutdown()


def small(at):
    at.number_input(key="epochs").set_value(1)
    at.number_input(key="f1").set_value(4)
    at.number_input(key="f2").set_value(8)
    at.selectbox(key="batch").set_value(128)
    return at.run()


def test_opens_without_tensorflow():
    result = run_isolated("pages/train.py")
    assert result["exceptions"] == []
    assert result["titles"] == ["Train"]
    assert result["tensorflow"] is False      # a model is built only when training starts


def test_calculator_numbers_before_training():
    at = app_at("pages/train.py")
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Parameters"] == "225,034"     # the seed CNN, = keras count_params()
    at.radio(key="preset").set_value("Dense net, same parameter budget").run()
    assert {m.label: m.value for m in at.metric}["Parameters"] == "224,995"
    at.radio(key="preset").set_value("Seed CNN (default)").run()
    at.selectbox(key="k1").set_value(7).run()
    at.selectbox(key="k2").set_value(7).run()
    # 7x7 kernels: 28 -> 22 -> 11 -> 5 -> 2, so the dense layer sees 2*2*64 = 256 inputs.
    # 1,600 + 100,416 + (256*128 + 128) + 1,290 = 136,202
    assert {m.label: m.value for m in at.metric}["Parameters"] == "136,202"
    assert not at.error and not at.button(key="train").disabled


@pytest.fixture
def browser_cookies(monkeypatch):
    """The cookies the next AppTest session's browser sends (AppTest cannot send any)."""
    from cnnlab.ui import owner

    cookies: dict[str, str] = {}
    monkeypatch.setattr(owner, "request_cookies", lambda: cookies)
    return cookies


def test_train_live_reattach_stop_then_look_inside(browser_cookies):
    """One short training serves the whole story (training is the slow part on 2 cores)."""
    from cnnlab.ui.owner import OWNER_COOKIE

    at = app_at("pages/train.py")
    at.number_input(key="epochs").set_value(50)
    at.number_input(key="f1").set_value(4)
    at.number_input(key="f2").set_value(8)
    at.selectbox(key="batch").set_value(128)
    at.run()
    token = at.session_state["train_owner"]
    at.button(key="train").click().run(timeout=60)
    job = shared_manager().active(f"{token}:train")
    assert job is not None and job.config["epochs"] == 50
    # The URL names the run, never the owner's token (the credential is the cookie).
    assert at.query_params["run"] == job.id and "owner" not in at.query_params
    # The live panel gains points while Keras trains.
    at = run_until(at, lambda a: len(job.snapshot().batches) >= 3 and a.progress
                   and "training" in a.progress[0].text)
    assert "offline sample of 5,000 real MNIST digits" in " ".join(c.value for c in at.caption)
    n = len(job.snapshot().batches)
    run_until(at, lambda a: len(job.snapshot().batches) > n)

    # A refresh: a new session whose browser sends the owner cookie reattaches to the job.
    from streamlit.testing.v1 import AppTest

    from tests.apptest import APP

    browser_cookies[OWNER_COOKIE] = token
    again = AppTest.from_file(APP, default_timeout=60)
    again.query_params["run"] = job.id
    again.run()
    again.switch_page("pages/train.py").run()
    assert again.button(key="train").disabled and not again.button(key="stop").disabled
    assert again.subheader[0].value == job.label
    # Another browser sees no job and has nothing to stop.
    browser_cookies.clear()
    other = app_at("pages/train.py")
    assert other.session_state["train_owner"] != token
    assert not other.subheader and other.button(key="stop").disabled
    # Another browser with the shared link watches: the same run and its curve, labelled as
    # someone else's, no Stop; its own Train is free.
    watcher = AppTest.from_file(APP, default_timeout=60)
    watcher.query_params["run"] = job.id
    watcher.run()
    watcher = run_until(watcher.switch_page("pages/train.py"),
                        lambda a: a.subheader and a.progress)
    assert watcher.subheader[0].value == job.label
    assert any("Someone else's run" in i.value for i in watcher.info)
    assert "stop" not in [b.key for b in watcher.button]
    assert not watcher.button(key="train").disabled
    assert watcher.query_params["run"] == job.id

    # Stop from the reattached session: the partly trained model is kept and examined.
    again.button(key="stop").click().run(timeout=60)
    assert job.wait(10) and job.state == "stopped"
    again = run_until(again, lambda a: a.progress and "stopped" in a.progress[0].text)
    assert len(shared_manager().jobs_of(f"{token}:train")) == 1     # no duplicate
    assert [t.label.split(" ", 1)[1] for t in again.tabs] == [
        "Filters & activations", "Confusion matrix", "Worst mistakes", "Your digit",
        "Compare runs"]
    analysis = job.extras["analysis"]
    assert analysis.confusion.sum() == 1000
    again.selectbox(key="cm_true").set_value("4").run()
    again.selectbox(key="cm_pred").set_value("4").run()
    shown = [c.value for c in again.caption if "were predicted 4" in c.value][0]
    assert shown.startswith(f"{int(analysis.confusion[4, 4]):,} test images are 4")
    assert again.get("download_button")[0].proto.label == "Download the model (.keras)"
    assert not again.exception
    # The watcher sees the results read-only: no comparison with its own runs, no download.
    watcher = run_until(watcher, lambda a: len(a.tabs) == 4)
    assert [t.label.split(" ", 1)[1] for t in watcher.tabs] == [
        "Filters & activations", "Confusion matrix", "Worst mistakes", "Your digit"]
    assert not watcher.get("download_button") and "stop" not in [b.key for b in watcher.button]
    assert watcher.button(key="explain_digit_go").disabled


def test_queue_position_is_shown(monkeypatch):
    manager = shared_manager()
    monkeypatch.setattr(manager, "max_concurrent", 0)    # every slot taken
    at = small(app_at("pages/train.py"))
    at.button(key="train").click().run(timeout=60)
    info = [i.value for i in at.info]
    assert any("Queued: position 1" in text for text in info)
    assert "0 of 0 training slots busy, 1 queued" in " ".join(c.value for c in at.caption)
    at.button(key="stop").click().run(timeout=60)
    assert manager.counts()["queued"] == 0


@pytest.mark.slow
def test_explain_a_test_digit_and_visualize_features_after_a_short_run():
    """After a 1-epoch run: a worst mistake explained by every method with one click on the
    sanity check (the whole network re-drawn, top first), then the feature visualization
    of every first- and second-layer filter and every class, each kept with the run."""
    from cnnlab.train import runs
    from cnnlab.vision.explain import METHODS
    from cnnlab.vision.explain.lab import format_seconds, page_options

    at = small(app_at("pages/train.py", timeout=300))    # generous: a loaded 2-core CPU
    token = at.session_state["train_owner"]
    at.button(key="train").click().run()
    job = shared_manager().active(f"{token}:train")
    at = run_until(at, lambda a: job.snapshot().finished and len(a.tabs) == 5, timeout=600,
                   run_timeout=300)
    assert job.state == "done"
    assert not job.extras.get("explanations") and "features" not in job.extras  # on demand
    analysis = job.extras["analysis"]
    mistake = analysis.mistakes()[0]
    picker = at.selectbox(key="explain_digit")
    dataset = runs.dataset_of(job)
    assert picker.options[0].startswith(f"#0: true {dataset.class_names[dataset.y_test[0]]}, "
                                        f"predicted {dataset.class_names[analysis.y_pred[0]]} ")
    assert f"#{mistake.index}: true {mistake.true}, predicted {mistake.predicted} " \
           f"({mistake.confidence:.0%}) · a worst mistake" in picker.options
    picker.set_value(mistake.index).run()
    assert at.selectbox(key=f"explain_class_{mistake.index}").value == mistake.predicted
    at.button(key="explain_digit_sanity").click().run(timeout=600)
    assert not at.exception and not at.error
    report = job.extras["explanations"][(mistake.index, mistake.predicted, page_options(4))]
    assert list(report.methods) == list(METHODS) and report.class_index == mistake.predicted
    captions = [c for image in at.image for c in image.captions]
    markdown = " ".join(md.value.replace("\\", "").replace("\u2060", "") for md in at.markdown)
    for m in report.methods.values():
        assert m.map.shape == (28, 28)
        assert f"{m.label} · {format_seconds(m.seconds)}" in captions
        assert [b for b, _ in m.randomized_similarity] == ["output", "dense1", "conv2", "conv1"]
        assert f"**{m.label}** {m.verdict()}" in markdown
    table = next(d.value for d in at.dataframe if "method" in d.value.columns)
    assert list(table["insertion AUC (higher is better)"]) == [
        round(m.insertion_auc, 4) for m in report.methods.values()]
    assert at.button(key="explain_digit_sanity").disabled

    at.button(key="features_go").click().run(timeout=600)
    assert not at.exception and not at.error
    features = job.extras["features"]
    assert [(g.layer, len(g.images)) for g in features.grids] == [
        ("conv1", 4), ("conv2", 8), ("output", 10)]
    for grid in features.grids:
        assert (grid.objective > grid.start_objective).all()      # the ascent worked
    for labels in (["filter 0", "filter 1", "filter 2", "filter 3"],
                   [f"filter {k}" for k in range(8)], [str(k) for k in range(10)]):
        assert any(list(image.captions) == labels for image in at.image), labels
    assert "features_go" not in [b.key for b in at.button]   # kept: drawn without a button
