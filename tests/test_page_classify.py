"""The Classify page through AppTest: honest without weights, classifies with them (the
same top-5 as the Classifier on the same bytes), names bad files and goes on."""

from __future__ import annotations

import pytest

from cnnlab.vision import images, inception
from tests.apptest import app_at, error_lines, run_isolated, shown
from tests.local_mirror import serve_directory

PAGE = "pages/classify.py"
RESULTS_KEY = "classify_results"


def texts(elements) -> str:
    return " | ".join(str(e.value) for e in elements)


@pytest.fixture
def no_weights(monkeypatch, tmp_path):
    monkeypatch.delenv(inception.ENV_WEIGHTS, raising=False)
    monkeypatch.setattr(inception, "keras_home", lambda: tmp_path)


# The page tests check the Explain lab's wiring (every method drawn with its time, the
# scores table, the sanity cascade, the cache), not the methods' numbers: those are tested
# at full strength in test_explain_methods.py, test_explain_inception.py and
# test_explain_scores.py. So the page gets the options it would get (Score-CAM's channels
# from CNNLAB_SCORECAM_CHANNELS, its sanity depth) with lighter work per method: on
# Inception at 299 px the full options take minutes of CPU per click.
QUICK_EXPLAIN = {"smoothgrad_samples": 2, "ig_steps": 2, "ig_max_steps": 4,
                 "occlusion_patch": 100, "occlusion_stride": 100, "faithfulness_steps": 4}


@pytest.fixture
def quick_explanations(monkeypatch):
    """`explain_lab.page_options` as the pages call it, with QUICK_EXPLAIN's lighter work;
    returns a function giving the options the page used (for a test's own computation)."""
    import dataclasses

    from cnnlab.vision.explain import lab

    page_options = lab.page_options

    def quick(*args, **kwargs):
        return dataclasses.replace(page_options(*args, **kwargs), **QUICK_EXPLAIN)

    monkeypatch.setattr(lab, "page_options", quick)
    return quick


@pytest.fixture
def with_weights(monkeypatch, inception_weights, inception_classifier):
    """The test weights file; the page's cached loader gets the session's classifier
    (loaded from that same file by `load_classifier`) instead of loading it again."""
    monkeypatch.setenv(inception.ENV_WEIGHTS, str(inception_weights))
    monkeypatch.setattr(inception, "load_classifier",
                        lambda weights="auto", warm_gradcam=False: inception_classifier)
    return inception_classifier


def test_page_opens_without_tensorflow():
    result = run_isolated(PAGE)
    assert result["exceptions"] == []
    assert result["titles"] == ["Classify"]
    assert result["tensorflow"] is False and result["keras"] is False


def test_without_weights_the_page_says_so_and_predicts_nothing(no_weights):
    at = app_at(PAGE)
    assert not at.exception
    warning = texts(at.warning)
    assert "not on this machine" in warning and "python -m cnnlab fetch" in warning
    assert any("Download the Inception v3 weights" in b.label for b in at.button)
    at.pills(key="classify_samples").set_value(["chelsea"]).run()
    assert not at.exception
    assert RESULTS_KEY not in at.session_state  # no predictions from nowhere


def test_upload_classifies_and_broken_file_gets_one_line(with_weights):
    classifier = with_weights
    at = app_at(PAGE, timeout=180)
    assert "20 MB per file" in texts(at.caption)
    good = images.sample_photo_bytes("chelsea")
    broken = images.sample_photo_bytes("coffee", "PNG")[:4000]
    at.file_uploader(key="classify_uploads").set_value(
        [("cat.jpg", good, "image/jpeg"), ("broken.png", broken, "image/png"),
         ("rocket.webp", images.sample_photo_bytes("rocket", "WEBP"), "image/webp")]).run()
    assert not at.exception
    errors = error_lines(at)
    assert len(errors) == 1 and errors[0].startswith("broken.png: truncated")
    assert [shown(h.value) for h in at.subheader] == ["cat.jpg", "rocket.webp"]
    results = {key[0].split(":")[1]: r for key, r in at.session_state[RESULTS_KEY].items()}
    expected = classifier.classify_bytes(good, "cat.jpg").top
    assert [w for w, _, _ in results["cat.jpg"].top] == [w for w, _, _ in expected]
    assert results["cat.jpg"].view.size == (299, 299)
    assert any("ms to preprocess, predict" in c.value for c in at.caption)
    # Grad-CAM: the top class at first; the picker lists the top-5 first, then any class.
    picker = at.selectbox[0]
    assert picker.options[1].startswith(expected[1][1].replace("_", " ") + " (")
    assert len(picker.options) == 1000
    cams = at.session_state["classify_cams"]
    top_class = inception.class_index(expected[0][0])
    assert {key[2] for key in cams} == {top_class, inception.class_index(results["rocket.webp"].top[0][0])}
    runner_up = inception.class_index(expected[1][0])
    picker.set_value(runner_up).run()
    assert not at.exception
    assert runner_up in {key[2] for key in at.session_state["classify_cams"]}
    assert [shown(h.value) for h in at.subheader] == ["cat.jpg", "rocket.webp"]  # still both


def test_gallery_pick_and_lying_extension(with_weights):
    at = app_at(PAGE, timeout=180)
    at.pills(key="classify_samples").set_value(["coffee"]).run()
    at.file_uploader(key="classify_uploads").set_value(
        ("holiday.jpg", images.sample_photo_bytes("rocket", "PNG"), "image/jpeg")).run()
    assert not at.exception
    assert error_lines(at) == [
        "holiday.jpg: the extension says JPEG (.jpg) but the content is PNG"]
    assert [shown(h.value) for h in at.subheader] == ["A cup of coffee (scikit-image)"]


def test_download_button_reports_failure_then_success(monkeypatch, tmp_path):
    """The page's download goes through inception.download_weights (Keras' get_file):
    offline it shows the reason; from a reachable mirror the weights land in the cache."""
    import hashlib

    monkeypatch.delenv(inception.ENV_WEIGHTS, raising=False)
    payload = b"stand-in weights " * 1000
    (tmp_path / "page_download_test.h5").write_bytes(payload)
    spec = inception.WeightsFile("page_download_test.h5", hashlib.md5(payload).hexdigest(),
                                 len(payload))
    monkeypatch.setitem(inception.WEIGHTS_FILES, True, spec)
    target = inception.cache_path(True)
    target.unlink(missing_ok=True)

    monkeypatch.setattr(inception, "_BASE_URL", "http://127.0.0.1:9/")  # nothing listens
    at = app_at(PAGE, timeout=180)  # the first click imports Keras for get_file
    at.button(key="download_weights").click().run()
    assert not at.exception
    assert any(e.startswith("Could not download page_download_test.h5") for e in error_lines(at))

    try:
        with serve_directory(tmp_path) as base:
            monkeypatch.setattr(inception, "_BASE_URL", base)
            at.button(key="download_weights").click().run()
            assert not at.exception and not at.error
            assert target.read_bytes() == payload
            assert "from the Keras cache" in texts(at.caption)  # the page moved on to the cache
    finally:
        target.unlink(missing_ok=True)


def flower_with_transfer_model(model, timeout: float):
    """The page after the Transfer page's "Use in Classify" handed it `model` (3 flower classes
    at 150 px), with the flower sample picked."""
    at = app_at(PAGE, timeout=timeout)
    at.session_state["classify_custom_model"] = {
        "model": model, "labels": ["daisy", "rose", "tulip"], "image_size": 150,
        "preprocessing": "inception", "name": "Transfer: Inception v3 + 3-class head",
        "pretrained_base": False, "test_accuracy": 0.5}
    at.run()
    at.pills(key="classify_samples").set_value(["flower"]).run()
    return at


def test_model_handed_over_by_transfer_is_used(no_weights, transfer_style_model):
    """The Transfer page's "Use in Classify" puts its model in session_state; Classify then
    predicts its classes (at its input size), with Grad-CAM through the nested base."""
    at = flower_with_transfer_model(transfer_style_model, timeout=180)
    assert not at.exception and not at.error
    assert at.radio(key="classify_model").value == "transfer"
    assert any("UNTRAINED Inception v3 base" in w.value for w in at.warning)
    (key, mode), result = next(iter(at.session_state[RESULTS_KEY].items()))
    assert mode.startswith("transfer:") and result.view.size == (150, 150)
    assert sorted(name for _, name, _ in result.top) == ["daisy", "rose", "tulip"]
    probs = transfer_style_model(images.inception_input(images.sample_photo("flower"), 150)[None],
                                 training=False).numpy()[0]
    assert result.top[0][1] == ["daisy", "rose", "tulip"][int(probs.argmax())]
    assert at.selectbox[0].options[0].startswith(result.top[0][1] + " (")
    assert len(at.session_state["classify_cams"]) == 1
    # Switching back to ImageNet Inception v3 shows the weights panel again.
    at.radio(key="classify_model").set_value("imagenet").run()
    assert "not on this machine" in texts(at.warning)


def test_without_weights_a_bad_upload_is_still_named(no_weights):
    """Uploads are checked even before a model is available."""
    at = app_at(PAGE)
    at.file_uploader(key="classify_uploads").set_value([
        ("notes.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "image/png"),
        ("rocket.png", images.sample_photo_bytes("rocket", "PNG"), "image/png")]).run()
    assert not at.exception
    assert error_lines(at)[0].startswith("notes.png: ")
    assert "1 image(s) ready" in texts(at.info)
    assert RESULTS_KEY not in at.session_state


def image_captions(at) -> list[str]:
    return [caption for image in at.image for caption in image.captions]


@pytest.mark.slow
def test_explanation_lab_shows_every_method_and_its_scores(with_weights, quick_explanations,
                                                          monkeypatch):
    """Explain (one click): every method's map over the view with its time, the deletion and
    insertion scores in a table, kept per (image, model, class). Score-CAM runs on the 16
    most active channels here (CNNLAB_SCORECAM_CHANNELS), the other methods with
    QUICK_EXPLAIN's lighter work, to keep the test short."""
    import numpy as np

    from cnnlab.vision.explain import METHODS, access_for
    from cnnlab.vision.explain.faithfulness import deletion_insertion
    from cnnlab.vision.explain.lab import format_seconds

    monkeypatch.setenv("CNNLAB_SCORECAM_CHANNELS", "16")
    at = app_at(PAGE, timeout=900)
    at.pills(key="classify_samples").set_value(["chelsea"]).run()
    result = at.session_state[RESULTS_KEY][("sample:chelsea", "auto")]
    top = result.indices[0]
    assert "classify_explanations" not in at.session_state      # nothing computed on open
    assert len(image_captions(at)) == 2                          # the view and Grad-CAM only
    at.button(key=f"explain-auto-sample:chelsea-{top}").click().run()
    assert not at.exception and not at.error
    (cache_key, report), = at.session_state["classify_explanations"].items()
    assert cache_key[:3] == ("sample:chelsea", "auto", top) and report.class_index == top
    assert list(report.methods) == list(METHODS)
    captions = image_captions(at)
    for m in report.methods.values():
        assert f"{m.label} · {format_seconds(m.seconds)}" in captions
        assert m.map.shape == (299, 299)
    table = at.dataframe[0].value
    assert list(table["method"]) == [m.label for m in report.methods.values()]
    assert list(table["deletion AUC (lower is better)"]) == [
        round(m.deletion_auc, 4) for m in report.methods.values()]
    assert report.methods["scorecam"].details["channels"] == 16
    assert any("Score-CAM used the 16 most active of the layer's 2,048 channels" in c.value
               for c in at.caption)
    # The page's Grad-CAM map is Grad-CAM's, and its deletion score is that map's.
    x = images.scale_to_unit_range(result.view)
    access = access_for(with_weights.model)
    gradcam_map = report.methods["gradcam"].map
    np.testing.assert_allclose(gradcam_map.max(), 1.0, atol=1e-6)
    options = cache_key[3]                                        # the options the page used
    assert options == quick_explanations(sanity_depth=options.sanity_depth)
    curves = deletion_insertion(access, x, gradcam_map, top, options.faithfulness_steps, 0.0,
                                options.insertion_start, options.batch_size)
    assert curves.deletion_auc == pytest.approx(report.methods["gradcam"].deletion_auc, abs=1e-5)
    best = report.most_faithful()
    assert any(f"Most faithful here: {report.methods[best['deletion']].label}" in md.value
               .replace("*", "") for md in at.markdown)
    # A rerun draws the kept report; the button says it is done.
    at.run()
    assert at.session_state["classify_explanations"][cache_key] is report
    assert at.button(key=f"explain-auto-sample:chelsea-{top}").disabled


@pytest.mark.slow
def test_sanity_check_one_click_on_a_transfer_model(no_weights, transfer_style_model,
                                                    quick_explanations, monkeypatch):
    """One click on the sanity check computes the methods and the cascade (the head, then
    mixed10 re-drawn), shows each method's maps block by block with rho and its verdict,
    and leaves the handed-over model untouched."""
    import numpy as np

    monkeypatch.setenv("CNNLAB_SCORECAM_CHANNELS", "16")
    before = [w.copy() for w in transfer_style_model.get_weights()]
    at = flower_with_transfer_model(transfer_style_model, timeout=900)
    (key, mode), result = next(iter(at.session_state[RESULTS_KEY].items()))
    top = result.indices[0]
    at.button(key=f"sanity-{mode}-{key}-{top}").click().run()
    assert not at.exception and not at.error
    (_, report), = at.session_state["classify_explanations"].items()
    assert [step.block for step in report.sanity.steps] == ["head", "mixed10"]
    captions = image_captions(at)
    markdown = " ".join(md.value.replace("\\", "").replace("\u2060", "") for md in at.markdown)
    for m in report.methods.values():
        assert m.map.shape == (150, 150)
        for block, rho in m.randomized_similarity:
            assert f"+ {block}: ρ = {rho:.2f}" in captions
        assert f"**{m.label}** {m.verdict()}" in markdown
    assert "Sanity check" in markdown and "rank correlation (Spearman)" in markdown
    assert at.button(key=f"sanity-{mode}-{key}-{top}").disabled
    for a, b in zip(before, transfer_style_model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
