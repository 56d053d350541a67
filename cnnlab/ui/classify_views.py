"""The Classify page's parts that both of its readings draw: the whole page (one panel per
photo) and the walk through its steps (cnnlab.vision.steps) with Back/Next and the keys.

Results are kept per session: a prediction per (photo, model), a Grad-CAM per (photo,
model, class), an explanation report per (photo, model, class, options), so a rerun (a class
pick, the next step) computes nothing again.
"""

from __future__ import annotations

import time

import streamlit as st

from cnnlab.ui import present, views, walkthrough
from cnnlab.ui.explain import explain_progress, explanation_ui, sanity_ui
from cnnlab.ui.safe import plain
from cnnlab.ui.url_state import Param, UrlView, integer
from cnnlab.vision import gradcam, images, inception, steps
from cnnlab.vision.charts import top5_figure
from cnnlab.vision.explain import add_sanity, explain
from cnnlab.vision.explain import lab as explain_lab

RESULTS_KEY = "classify_results"   # session_state: (image key, mode) -> Classification
CAMS_KEY = "classify_cams"         # session_state: (image key, mode, class) -> (overlay, s)
KEEP = 24                          # results kept per session (newest win)
EXPLAIN_KEY = "classify_explanations"  # session_state: (image key, mode, class, options) -> report
EXPLAIN_KEEP = 4                   # explanations kept per session (newest win)
SANITY_BLOCKS = 2                  # Inception: the classifier, then mixed10 (minutes each on a CPU)
STEP = Param(steps.PARAM, steps.STATE_KEY, integer(steps.FIRST, steps.LAST))
UPLOADS_KEY = "classify_walk_uploads"   # session_state: the uploads the walk follows
CHOICES_KEY = "_classify_walk_choices"  # session_state: step 1's choices, kept for the others
CHOICES = ("classify_model", "classify_untrained")   # the model's widgets (step 1)
VIEW_HEIGHT = 420                  # px: a picture's height in a step (fits a 1080p screen)

Photo = tuple[str, str, "bytes | None"]   # (name, key, data); data None for a sample photo


def params(samples: list[str]) -> list[Param]:
    """The page's view in the URL: the sample photos and the step."""
    return [*views.classify_params(samples), STEP]


# ---------------------------------------------------------------------------- results


def remember(store_key: str, key, value) -> None:
    store = st.session_state.setdefault(store_key, {})
    store[key] = value
    while len(store) > KEEP:
        store.pop(next(iter(store)))


def classify_one(classifier: inception.Classifier, mode: str, name: str, key: str,
                 data: bytes | None) -> inception.Classification:
    """Cached per session: reruns (a class pick) do not recompute predictions."""
    results = st.session_state.get(RESULTS_KEY, {})
    if (key, mode) in results:
        return results[(key, mode)]
    if data is None:
        result = classifier.classify(images.sample_photo(key.split(":", 1)[1]), name)
    else:
        result = classifier.classify_bytes(data, name)  # ImageError for bad files
    remember(RESULTS_KEY, (key, mode), result)
    return result


def cam_overlay(classifier: inception.Classifier, mode: str, key: str,
                result: inception.Classification, class_index: int):
    cams = st.session_state.get(CAMS_KEY, {})
    if (key, mode, class_index) not in cams:
        start = time.perf_counter()
        x = images.scale_to_unit_range(result.view)
        cam = gradcam.grad_cam(classifier.model, x, class_index)
        picture = gradcam.overlay(result.view, cam.heatmap)
        remember(CAMS_KEY, (key, mode, class_index), (picture, time.perf_counter() - start))
        cams = st.session_state[CAMS_KEY]
    return cams[(key, mode, class_index)]


def cam_class(view: UrlView, classifier: inception.Classifier, mode: str, key: str,
              result: inception.Classification, draw: bool = True) -> int:
    """The class Grad-CAM and the lab explain: the picker (the top-5 first, then every class;
    `?cam=` in the URL), or without `draw` the class it holds (the top class at first)."""
    names = classifier.class_names
    options = result.indices + [i for i in range(len(names)) if i not in result.indices]
    widget = f"cam-class-{mode}-{key}"
    chosen = view.bind(views.cam_param(widget, options))
    if draw:
        chosen = st.selectbox("Grad-CAM for class", options, key=widget,
                              format_func=lambda i: f"{names[i]} ({result.probs[i] * 100:.1f}%)")
    return int(chosen)


def gradcam_image(classifier: inception.Classifier, mode: str, key: str,
                  result: inception.Classification, class_index: int, **image) -> float:
    """The Grad-CAM overlay for the class; returns the seconds it took (when computed)."""
    picture, seconds = cam_overlay(classifier, mode, key, result, class_index)
    st.image(picture, caption="Grad-CAM on mixed10, Inception v3's last block: red = "
                              "evidence for the class", **image)
    return seconds


def view_caption(side: int) -> str:
    return f"As the network sees it: centre crop, {side}×{side}, then scaled to [-1, 1]"


def timing_caption(result: inception.Classification, cam_seconds: float | None = None) -> None:
    st.caption(f":material/timer: {result.seconds * 1000:.0f} ms to preprocess, predict and "
               "decode the labels"
               + (f" · Grad-CAM {cam_seconds * 1000:.0f} ms" if cam_seconds is not None else ""))


def top5_chart(classifier: inception.Classifier, mode: str, key: str,
               result: inception.Classification) -> None:
    present.chart(top5_figure(result.top, classifier.untrained), width="stretch",
                  key=f"chart-{mode}-{key}", download="the top-5 chart")


# ---------------------------------------------------------------------------- the lab


def lab_ui(classifier: inception.Classifier, mode: str, key: str,
           result: inception.Classification, class_index: int, *, methods: bool = True,
           sanity: bool = True) -> None:
    """The explanation lab for the chosen class, computed on a click and kept per (image,
    model, class): every method's map, time and faithfulness (`methods`), and the sanity
    check (`sanity`). The whole page has both; a step has one."""
    options = explain_lab.page_options(sanity_depth=SANITY_BLOCKS)
    cache_key = (key, mode, class_index, options)
    report = st.session_state.get(EXPLAIN_KEY, {}).get(cache_key)
    name = plain(classifier.class_names[class_index])
    buttons = st.columns([1, 1, 2.4] if methods and sanity else [1, 2.4])
    explain_clicked = sanity_clicked = False
    if methods:
        explain_clicked = buttons[0].button(
            "Explain: all methods", key=f"explain-{mode}-{key}-{class_index}",
            icon=":material/travel_explore:", disabled=report is not None, width="stretch",
            help="Grad-CAM, Grad-CAM++, Score-CAM, gradients, SmoothGrad, Integrated Gradients "
                 "and occlusion for the class picked above, with their faithfulness scores.")
    if sanity:
        sanity_clicked = buttons[-2].button(
            "Sanity check", key=f"sanity-{mode}-{key}-{class_index}", icon=":material/shuffle:",
            disabled=report is not None and report.sanity is not None, width="stretch",
            help="Cascading randomization (Adebayo et al. 2018): do the maps change when what "
                 "the network learned is destroyed?")
    if methods and sanity:
        text = (f"Where did the network look for **{name}**? Every method side by side, then the "
                f"sanity check re-draws the top {SANITY_BLOCKS} blocks.")
    elif methods:
        text = f"Where did the network look for **{name}**? Every method side by side."
    else:
        text = (f"The top {SANITY_BLOCKS} blocks' weights re-drawn at random, then every map of "
                f"**{name}** computed again (the methods too, if step 4 has not).")
    buttons[-1].caption(text + " On this CPU Inception v3 at 299×299 takes about 2–3 minutes "
                        "for all methods, and as long again per block of the sanity check.")
    if explain_clicked or sanity_clicked:
        x = images.scale_to_unit_range(result.view)
        model = classifier.model
        with explain_progress() as progress:
            if report is None:
                report = explain(model, x, class_index, explain_lab.methods_for(model),
                                 sanity=sanity_clicked, progress=progress, options=options)
            elif sanity_clicked:
                add_sanity(model, x, report, options, progress)
        remember(EXPLAIN_KEY, cache_key, report)
        store = st.session_state[EXPLAIN_KEY]
        while len(store) > EXPLAIN_KEEP:  # a report with its sanity maps is megabytes
            store.pop(next(iter(store)))
        st.rerun()  # redraw with the kept report (and its buttons disabled)
    widget_key = f"{mode}-{key}-{class_index}"
    if report is None:
        return
    if methods:
        explanation_ui(report, result.view, widget_key, untrained=classifier.untrained,
                       sanity=sanity)
    elif report.sanity is not None:
        sanity_ui(report, result.view, widget_key, classifier.untrained)


# ---------------------------------------------------------------------------- the walk


def stepping() -> bool:
    return walkthrough.stepping(STEP, steps.WALK)


def walk_ui(view: UrlView) -> int | None:
    return walkthrough.walk_ui(view, STEP, steps.WALK, "classify", before_heading=keep_choices)


def keep_choices() -> None:
    """Step 1's model choice outlives the steps that do not draw its widgets (Streamlit
    forgets a widget's value when it is not drawn)."""
    kept = st.session_state.setdefault(CHOICES_KEY, {})
    for key in CHOICES:
        if key in st.session_state:
            kept[key] = st.session_state[key]
        elif key in kept:
            st.session_state[key] = kept[key]


def walk_photos(drawn: list[Photo] | None = None) -> list[Photo]:
    """The photos the walk follows: the uploads (kept from step 1, where `drawn` are the
    photos its widgets chose) and the sample photos (kept by the URL's `samples=`)."""
    titles = images.sample_titles()
    if drawn is not None:
        uploads = [p for p in drawn if p[2] is not None]
        if uploads:
            st.session_state[UPLOADS_KEY] = uploads
    kept = st.session_state.get(UPLOADS_KEY) or []
    if drawn is not None and kept and not any(p[2] is not None for p in drawn):
        names = ", ".join(plain(name) for name, _, _ in kept)
        line, forget = st.columns([5, 1], vertical_alignment="center")
        line.caption(f":material/attach_file: Still in the walk from an earlier upload: {names}")
        forget.button("Forget", key="classify_walk_forget", type="tertiary",
                      on_click=st.session_state.pop, args=(UPLOADS_KEY, None))
    samples = st.session_state.get("classify_samples") or []
    return kept + [(titles[n], f"sample:{n}", None) for n in samples if n in titles]


def photo_ui(photos: list[Photo], side: int) -> None:
    """Step 1's picture: the photo with the centre square outlined, and that square at the
    network's size; nothing without a photo (the inputs below say what to do)."""
    if not photos:
        st.info("Pick a sample photo or upload one below.", icon=":material/image:")
        return
    name, key, data = photos[0]
    try:
        img = images.sample_photo(key.split(":", 1)[1]) if data is None \
            else images.decode_image(data, name)
    except images.ImageError as exc:
        st.error(plain(str(exc)), icon=":material/broken_image:")
        return
    width, height = img.size
    whole, seen = st.columns([max(width / height, 0.5), 1])
    whole.image(steps.outline_crop(img), width=min(1100, round(VIEW_HEIGHT * width / height)),
                caption=f"{plain(name)}: {width}×{height} pixels as decoded; the square is "
                        "the centre crop")
    seen.image(images.network_view(img, side), width=VIEW_HEIGHT, caption=view_caption(side))
    if note := steps.followed([p[0] for p in photos]):
        st.caption(plain(note))


def untrained_line(classifier: inception.Classifier) -> None:
    if classifier.untrained:
        st.caption(":material/warning: UNTRAINED network: random weights, the classes it names "
                   "mean nothing.")


def top5_step_ui(classifier: inception.Classifier, mode: str, key: str,
                 result: inception.Classification) -> None:
    seen, chart = st.columns([1, 1.6], vertical_alignment="center")
    seen.image(result.view, width=VIEW_HEIGHT, caption=view_caption(classifier.size))
    with chart:
        top5_chart(classifier, mode, key, result)
    timing_caption(result)


def gradcam_step_ui(view: UrlView, classifier: inception.Classifier, mode: str, key: str,
                    result: inception.Classification) -> None:
    seen, heat = st.columns(2, vertical_alignment="bottom")
    seen.image(result.view, width=VIEW_HEIGHT, caption=view_caption(classifier.size))
    with heat:
        chosen = cam_class(view, classifier, mode, key, result)
        seconds = gradcam_image(classifier, mode, key, result, chosen, width=VIEW_HEIGHT)
    timing_caption(result, seconds)


def lab_step_ui(view: UrlView, classifier: inception.Classifier, mode: str, key: str,
                result: inception.Classification, sanity: bool) -> None:
    """Step 4 (the methods) or step 5 (the sanity check), for the class step 3 picked."""
    chosen = cam_class(view, classifier, mode, key, result, draw=False)
    st.caption(f"For **{plain(classifier.class_names[chosen])}** "
               f"({result.probs[chosen] * 100:.1f}%), the class Grad-CAM shows in step 3.")
    lab_ui(classifier, mode, key, result, chosen, methods=not sanity, sanity=sanity)
