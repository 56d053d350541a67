"""The Classify page as a lecture (issue 11): in presenter mode, or from a `?step=N` link,
five steps through one photo, each drawing its own part of the page and not the others';
Back/Next and the picker move, the URL follows; a step that needs a photo or a model says so
in one line; a bad step value is ignored with one line."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from cnnlab.vision import images, inception, steps
from tests.apptest import APP, shown

PAGE = "pages/classify.py"
TITLES = ["The photo, and the square the network sees",
          "What the network says: its top-5 classes",
          "Grad-CAM: where it looked for a class",
          "The explanation lab: every method, its time and faithfulness",
          "The sanity check: destroy the weights, do the maps change?"]
VIEW = "As the network sees it: centre crop, 299×299, then scaled to [-1, 1]"


@pytest.fixture
def with_weights(monkeypatch, inception_weights, inception_classifier):
    """The test weights file (random, seeded); the page's cached loader gets the session's
    classifier (loaded from that file by `load_classifier`) instead of loading it again."""
    monkeypatch.setenv(inception.ENV_WEIGHTS, str(inception_weights))
    monkeypatch.setattr(inception, "load_classifier",
                        lambda weights="auto", warm_gradcam=False: inception_classifier)
    return inception_classifier


def opened(timeout: float = 60, **query: str) -> AppTest:
    """The Classify page opened from a link with `query` (a lecture's bookmark)."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    at.query_params.update(query)
    at.run()
    at.switch_page(PAGE)
    at.query_params.update(query)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def seen(at: AppTest) -> dict:
    """What a reader sees of a step: its heading, pictures, charts, pickers, buttons and
    one-line notices."""
    return {"header": [h.value for h in at.header],
            "images": [shown(c) for image in at.image for c in image.captions],
            "charts": [c.proto.id.rsplit("-", 1)[-1] for c in at.get("plotly_chart")],  # key
            "selects": [s.key for s in at.selectbox if s.key != steps.STATE_KEY],
            "buttons": [b.key for b in at.button],
            "info": [i.value for i in at.info], "errors": [e.value for e in at.error],
            "pills": [p.key for p in at.get("button_group")]}


def test_the_steps_and_their_titles():
    assert [(s.number, s.part) for s in steps.STEPS] == [
        (1, "photo"), (2, "top5"), (3, "gradcam"), (4, "lab"), (5, "sanity")]
    assert [s.title for s in steps.STEPS] == TITLES
    assert steps.number_of("3") == 3 and steps.number_of("6") is None
    assert steps.number_of("x") is None and steps.number_of(None) is None
    assert steps.crop_box((451, 300)) == (75, 0, 375, 300)       # Chelsea: the middle square
    outlined = steps.outline_crop(images.sample_photo("chelsea"))
    assert outlined.size == (451, 300)
    assert outlined.getpixel((225, 150)) == images.sample_photo("chelsea").getpixel((225, 150))
    assert sum(outlined.getpixel((10, 150))) < sum(images.sample_photo("chelsea")
                                                   .getpixel((10, 150)))   # cut off: dimmed


def test_step_one_shows_the_photo_and_its_crop_without_a_model():
    """No weights (the tests' Keras cache is empty): step 1 still shows what the network
    would see; the later steps say in one line what is missing."""
    at = opened(present="1", step="1", samples="chelsea")
    drawn = seen(at)
    assert drawn["header"] == [TITLES[0]]
    assert drawn["images"] == ["Chelsea the cat (scikit-image): 451×300 pixels as decoded; "
                               "the square is the centre crop", VIEW]
    assert at.image[1].proto.imgs[0].url        # the crop is really there
    assert "classify_samples" in drawn["pills"] and at.file_uploader(key="classify_uploads")
    assert not drawn["charts"] and not drawn["selects"] and not drawn["errors"]
    assert at.toggle(key="classify_untrained")  # the model is chosen here too
    assert not at.markdown or all("Inception v3, trained on ImageNet" not in m.value
                                  for m in at.markdown)   # folded: presenter mode
    for number in (2, 3, 4, 5):
        at.button(key="step_next").click().run()
        drawn = seen(at)
        assert drawn["header"] == [TITLES[number - 1]] and at.query_params["step"] == str(number)
        assert drawn["info"] == [steps.NO_MODEL], number      # one line, never a traceback
        assert not drawn["images"] and not drawn["charts"] and not drawn["selects"]
        assert drawn["buttons"] == ["step_back", "step_next"]
        assert at.query_params["samples"] == "chelsea"        # the photo stays chosen
    assert at.button(key="step_next").disabled
    assert not at.exception


def test_without_a_photo_the_model_steps_say_so():
    at = opened(step="3")
    assert [h.value for h in at.header] == [TITLES[2]]
    assert [i.value for i in at.info] == [steps.NO_PHOTO]
    assert "present" not in at.query_params and at.query_params["step"] == "3"


@pytest.mark.parametrize("value", ["9", "abc", "0"])
def test_a_bad_step_is_ignored_with_one_line(value):
    at = opened(present="1", step=value)
    line = f"Ignored in the link: step='{value}' (not a whole number from 1 to 5)."
    assert [shown(w.value) for w in at.warning][0] == line and not at.error
    assert "not on this machine" in at.warning[1].value     # step 1's weights panel
    assert at.header[0].value == TITLES[0] and at.query_params["step"] == "1"
    # without presenter mode a bad step leaves the whole page, as without the link
    at = opened(step=value)
    assert shown(at.warning[0].value) == line and not at.header
    assert len(at.warning) == 2          # and the weights panel's, as without the link
    assert "step_next" not in [b.key for b in at.button]
    assert any("Inception v3, trained on ImageNet" in m.value for m in at.markdown)


def test_without_presenter_mode_and_step_the_page_is_unchanged():
    at = opened(samples="coffee")
    assert not at.header and "step" not in at.query_params
    assert "step_next" not in [b.key for b in at.button]
    assert "1 image(s) ready" in " ".join(i.value for i in at.info)


def test_the_walk_through_one_photo(with_weights):
    """A sample photo from the link: each step draws its own part; Next moves and the URL
    follows; the class picked in step 3 is the one the lab explains in steps 4 and 5."""
    at = opened(timeout=180, step="2", samples="chelsea")
    result = at.session_state["classify_results"][("sample:chelsea", "auto")]
    top, runner_up = result.indices[:2]
    names = with_weights.class_names
    drawn = seen(at)
    assert drawn["header"] == [TITLES[1]] and drawn["charts"] == ["sample:chelsea"]
    assert drawn["images"] == [VIEW] and not drawn["selects"]
    assert not [b for b in drawn["buttons"] if b.startswith(("explain-", "sanity-"))]
    assert any("ms to preprocess, predict" in c.value for c in at.caption)
    assert "classify_cams" not in at.session_state          # Grad-CAM is step 3's

    at.button(key="step_next").click().run()
    drawn = seen(at)
    assert at.query_params["step"] == "3" and drawn["header"] == [TITLES[2]]
    assert drawn["selects"] == ["cam-class-auto-sample:chelsea"] and not drawn["charts"]
    assert drawn["images"][0] == VIEW and drawn["images"][1].startswith("Grad-CAM on mixed10")
    assert {k[2] for k in at.session_state["classify_cams"]} == {top}
    at.selectbox(key="cam-class-auto-sample:chelsea").set_value(runner_up).run()
    assert at.query_params["cam"] == str(runner_up)
    assert runner_up in {k[2] for k in at.session_state["classify_cams"]}

    at.button(key="step_next").click().run()
    drawn = seen(at)
    assert at.query_params["step"] == "4" and at.query_params["cam"] == str(runner_up)
    assert drawn["header"] == [TITLES[3]] and not drawn["images"] and not drawn["charts"]
    assert [b for b in drawn["buttons"] if b.startswith(("explain-", "sanity-"))] == [
        f"explain-auto-sample:chelsea-{runner_up}"]          # the class step 3 picked
    assert any(shown(c.value).startswith(f"For **{names[runner_up]}**") for c in at.caption)
    assert "classify_explanations" not in at.session_state  # computed on a click only

    at.button(key="step_next").click().run()
    assert at.query_params["step"] == "5" and at.header[0].value == TITLES[4]
    assert [b.key for b in at.button if b.key.startswith(("explain-", "sanity-"))] == [
        f"sanity-auto-sample:chelsea-{runner_up}"]
    at.button(key="step_back").click().run()
    at.button(key="step_back").click().run()
    assert at.query_params["step"] == "3"
    assert at.selectbox(key="cam-class-auto-sample:chelsea").value == runner_up
    at.selectbox(key=steps.STATE_KEY).set_value(1).run()    # the step picker
    assert at.query_params["step"] == "1" and at.header[0].value == TITLES[0]
    assert at.pills(key="classify_samples").value == ["chelsea"]
    # the link's walk (no presenter mode) returns to the whole page, as before
    at.button(key="classify_all").click().run()
    assert "step" not in at.query_params and not at.header
    assert [shown(h.value) for h in at.subheader] == ["Chelsea the cat (scikit-image)"]
    assert not at.exception


def test_an_upload_in_step_one_is_the_photo_of_the_next_steps(with_weights):
    at = opened(timeout=180, present="1", step="1")
    at.file_uploader(key="classify_uploads").set_value(
        [("rocket.png", images.sample_photo_bytes("rocket", "PNG"), "image/png")]).run()
    assert shown(at.image[0].captions[0]).startswith(
        "rocket.png: 640×427 pixels")
    at.pills(key="classify_samples").set_value(["coffee"]).run()
    at.button(key="step_next").click().run()
    assert at.header[0].value == TITLES[1] and not at.exception
    keys = [k for k, _ in at.session_state["classify_results"]]
    assert len(keys) == 1 and keys[0].startswith("upload:rocket.png:")   # the first photo
    assert any("The steps follow the first of the 2 photos chosen: rocket.png" in shown(c.value)
               for c in at.caption)
    at.run()                                                 # a rerun: still the upload
    assert [k for k, _ in at.session_state["classify_results"]] == keys
    at.button(key="step_back").click().run()
    # A browser's uploader comes back empty to step 1 (a widget not drawn is forgotten):
    # the photo is kept, and said so.
    at.file_uploader(key="classify_uploads").set_value([]).run()
    assert shown(at.image[0].captions[0]).startswith("rocket.png: 640×427 pixels")
    assert any("Still in the walk from an earlier upload: rocket.png" in shown(c.value)
               for c in at.caption)
    at.button(key="classify_walk_forget").click().run()
    assert shown(at.image[0].captions[0]).startswith("A cup of coffee (scikit-image)")


def test_a_broken_upload_is_one_line_in_every_step(with_weights):
    at = opened(timeout=180, present="1", step="1")
    broken = images.sample_photo_bytes("coffee", "PNG")[:4000]
    at.file_uploader(key="classify_uploads").set_value(
        [("broken.png", broken, "image/png")]).run()
    assert [shown(e.value) for e in at.error][0].startswith("broken.png: truncated")
    at.button(key="step_next").click().run()
    assert len(at.error) == 1 and shown(at.error[0].value).startswith("broken.png: truncated")
    assert not at.exception
