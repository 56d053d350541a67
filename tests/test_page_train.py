"""The Train page through AppTest: config + calculator, a short live training, reattach,
isolation, stop, and the after-training views."""

from __future__ import annotations

import pytest

from cnnlab.train.manager import shared_manager
from tests.apptest import app_at, run_isolated, run_until, shown


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


def small_network(at, epochs: int, batch: int) -> str:
    """Set a small CNN (4 and 8 filters) with `epochs` and `batch`, run the page; the
    session's owner token."""
    at.number_input(key="epochs").set_value(epochs)
    at.number_input(key="f1").set_value(4)
    at.number_input(key="f2").set_value(8)
    at.selectbox(key="batch").set_value(batch)
    at.run()
    return at.session_state["train_owner"]


def test_train_live_reattach_stop_then_look_inside(browser_cookies):
    """One short training serves the whole story (training is the slow part on 2 cores)."""
    from cnnlab.ui.owner import OWNER_COOKIE

    at = app_at("pages/train.py")
    token = small_network(at, epochs=50, batch=128)
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


# ---- the lecture's steps (presenter mode, or ?step=N) ------------------------------------------
STEP_TITLES = ["The network and the data", "Training, live: the loss falls batch by batch",
               "What the first layer learned: its filters",
               "The confusion matrix and the worst mistakes",
               "Your digit: draw one, the network reads it"]
NO_RUN = "No finished run yet: train one in step 2, then come back to look inside it."


def opened(**query: str):
    """The Train page opened from a link with `query` (a lecture's bookmark)."""
    from streamlit.testing.v1 import AppTest

    from tests.apptest import APP

    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update(query)
    at.run()
    at.switch_page("pages/train.py")
    at.query_params.update(query)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def charts(at) -> list[str]:
    """The keys of the Plotly charts drawn."""
    return [c.proto.id.rsplit("-", 1)[-1] for c in at.get("plotly_chart")]


def seen(at) -> dict:
    """What a reader sees of the step: its heading, the config's widgets, the buttons, the
    notices and the charts."""
    return {"header": [h.value for h in at.header], "config": [r.key for r in at.radio],
            "metrics": [m.label for m in at.metric], "buttons": [b.key for b in at.button],
            "info": [i.value for i in at.info], "charts": charts(at)}


def test_presenter_mode_draws_one_step_at_a_time():
    expected_steps = {1: "config", 2: "live", 3: "filters", 4: "confusion", 5: "digit"}
    from cnnlab.train import steps

    assert {s.number: s.part for s in steps.STEPS} == expected_steps
    assert [s.title for s in steps.STEPS] == STEP_TITLES
    one = seen(opened(present="1", step="1"))
    assert one["header"] == [STEP_TITLES[0]] and one["config"] == ["preset", "dataset"]
    assert "Parameters" in one["metrics"] and "train" in one["buttons"]
    assert not one["info"] and not one["charts"]
    assert not [b for b in one["buttons"] if b.startswith("replay_open")]   # that is step 2's
    two = seen(opened(present="1", step="2"))
    assert two["header"] == [STEP_TITLES[1]] and not two["config"] and not two["metrics"]
    assert "train" in two["buttons"] and "replay_open_mnist-sample-cnn" in two["buttons"]
    for number in (3, 4, 5):
        at = opened(present="1", step=str(number))
        drawn = seen(at)
        assert drawn["header"] == [STEP_TITLES[number - 1]], number
        assert drawn["info"] == [NO_RUN], number        # one line, never a traceback
        assert not drawn["config"] and not drawn["metrics"] and not drawn["charts"]
        assert drawn["buttons"] == ["step_back", "step_next"]
        assert at.query_params["step"] == str(number) and at.query_params["present"] == "1"


def test_next_and_back_walk_the_steps_and_the_url_follows():
    at = opened(present="1")
    assert at.header[0].value == STEP_TITLES[0] and at.query_params["step"] == "1"
    assert at.button(key="step_back").disabled
    at.number_input(key="epochs").set_value(3).run()       # the config, chosen in step 1...
    at.button(key="step_next").click().run()
    assert at.query_params["step"] == "2" and at.header[0].value == STEP_TITLES[1]
    assert not at.radio                                   # ...is not drawn in step 2...
    assert any("Next run: CNN 32/64 k3/3, adam lr 0.001, batch 64, 3 ep, seed 0" in shown(c.value)
               for c in at.caption)                       # ...but it is the one to train
    assert at.query_params["epochs"] == "3"
    for number in (3, 4, 5):
        at.button(key="step_next").click().run()
        assert at.query_params["step"] == str(number)
        assert at.header[0].value == STEP_TITLES[number - 1]
    assert at.button(key="step_next").disabled
    at.selectbox(key="train_step").set_value(1).run()     # the step picker
    assert at.query_params["step"] == "1" and at.number_input(key="epochs").value == 3
    assert not at.exception


@pytest.mark.parametrize("value", ["99", "abc", "0"])
def test_a_bad_step_is_ignored_with_one_line(value):
    at = opened(present="1", step=value)
    assert [shown(w.value) for w in at.warning] == [
        f"Ignored in the link: step='{value}' (not a whole number from 1 to 5)."]
    assert at.header[0].value == STEP_TITLES[0] and at.query_params["step"] == "1"
    # without presenter mode a bad step leaves the whole page, as without the link
    at = opened(step=value)
    assert len(at.warning) == 1 and not at.header
    assert "step_next" not in [b.key for b in at.button] and at.radio(key="preset")


def test_a_step_link_walks_without_presenter_mode_and_returns_to_the_whole_page():
    at = opened(step="4")
    assert at.header[0].value == STEP_TITLES[3] and [i.value for i in at.info] == [NO_RUN]
    assert "present" not in at.query_params
    at.button(key="train_all").click().run()
    assert "step" not in at.query_params and not at.header
    assert at.radio(key="preset") and at.button(key="train")     # the whole page, as today
    assert "step_next" not in [b.key for b in at.button]


def test_train_in_step_one_goes_on_to_the_live_curve(monkeypatch):
    manager = shared_manager()
    monkeypatch.setattr(manager, "max_concurrent", 0)    # every slot taken: it stays queued
    at = small(opened(present="1", step="1"))
    at.button(key="train").click().run(timeout=60)
    assert at.query_params["step"] == "2" and at.header[0].value == STEP_TITLES[1]
    assert any("Queued: position 1" in i.value for i in at.info)
    at.button(key="step_next").click().run()
    assert [i.value for i in at.info] == [
        "The run is still training: its results appear here once it ends (step 2 shows it "
        "live)."]
    at.button(key="step_back").click().run()
    at.button(key="stop").click().run(timeout=60)
    assert manager.counts()["queued"] == 0


@pytest.mark.slow
def test_steps_three_to_five_look_inside_a_finished_run():
    """One tiny run, then each step draws its own part of the results and nothing else."""
    at = opened(present="1", step="1")
    token = small_network(at, epochs=1, batch=512)
    at.button(key="train").click().run(timeout=120)
    job = shared_manager().active(f"{token}:train") or shared_manager().latest(
        f"{token}:train")
    at = run_until(at, lambda a: job.snapshot().finished and "live_chart" in charts(a),
                   timeout=600, run_timeout=300)
    assert job.state == "done" and at.query_params["step"] == "2"
    at.button(key="step_next").click().run(timeout=300)
    three = seen(at)
    assert three["header"] == [STEP_TITLES[2]] and three["charts"][0] == "filters"
    assert "confusion" not in three["charts"] and "live_chart" not in three["charts"]
    at.button(key="step_next").click().run(timeout=300)
    four = seen(at)
    assert four["charts"] == ["confusion"]
    assert [s.value for s in at.subheader] == ["The worst mistakes"]
    assert at.selectbox(key="cm_true") and not at.get("file_uploader")
    at.button(key="step_next").click().run(timeout=300)
    five = seen(at)
    assert five["header"] == [STEP_TITLES[4]] and five["charts"] == []
    assert at.get("file_uploader") and not at.info and not at.exception


def test_a_bad_link_value_keeps_its_notice_until_that_setting_is_changed():
    """A page may rerun at once (the owner's cookie is written by a component): the notice of
    a bad value in the link stays on later runs, and goes once the setting is changed."""
    at = opened(epochs="abc")
    notice = "Ignored in the link: epochs='abc' (not a whole number from 1 to 200)."
    assert [shown(w.value) for w in at.warning] == [notice]
    at.run()
    assert [shown(w.value) for w in at.warning] == [notice]
    at.number_input(key="epochs").set_value(5).run()
    assert notice not in [shown(w.value) for w in at.warning]
    assert at.query_params["epochs"] == "5"
