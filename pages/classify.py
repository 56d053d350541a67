"""Classify: Inception v3 names what is in a photo; Grad-CAM shows where it looked.

The page draws. cnnlab.vision.images decodes and preprocesses, cnnlab.vision.inception finds the
weights, loads the model (once per server process) and classifies, cnnlab.vision.gradcam
computes the heat maps. TensorFlow loads only when a model is needed.
"""

from __future__ import annotations

import hashlib
import time

import streamlit as st

from cnnlab.facts import fact
from cnnlab.ui import present, views
from cnnlab.ui.explain import explain_progress, explanation_ui
from cnnlab.ui.navigation import ensure_app_navigation
from cnnlab.ui.safe import error_line, plain
from cnnlab.vision import custom_model, gradcam, images, inception
from cnnlab.vision.charts import top5_figure
from cnnlab.vision.explain import add_sanity, explain
from cnnlab.vision.explain import lab as explain_lab

ensure_app_navigation()  # a deep link on a fresh server: run through app.py

CUSTOM_KEY = custom_model.SESSION_KEY  # set by the Transfer page's "Use in Classify"
RESULTS_KEY = "classify_results"   # session_state: (image key, mode) -> Classification
CAMS_KEY = "classify_cams"         # session_state: (image key, mode, class) -> (overlay, ms)
KEEP = 24                          # results kept per session (newest win)
EXPLAIN_KEY = "classify_explanations"  # session_state: (image key, mode, class, options) -> report
EXPLAIN_KEEP = 4                   # explanations kept per session (newest win)
SANITY_BLOCKS = 2                  # Inception: the classifier, then mixed10 (minutes each on a CPU)


@st.cache_resource(show_spinner="Loading Inception v3 (once per server)…")
def shared_classifier(mode: str) -> inception.Classifier:
    """One model per server process, shared read-only by every session."""
    return inception.load_classifier(mode, warm_gradcam=True)


def transfer_ui(handoff: dict) -> tuple[str, inception.Classifier] | None:
    """The Transfer page's model, when this session handed one over and the user picks it."""
    choice = st.radio("Model", ["transfer", "imagenet"], horizontal=True, key="classify_model",
                      format_func=lambda c: plain(handoff["name"]) if c == "transfer"
                      else "Inception v3 (ImageNet, 1,000 classes)")
    if choice != "transfer":
        return None
    model = handoff["model"]
    held = st.session_state.get("classify_custom_classifier")
    if held is None or held.model is not model:  # one per handed-over model, this session only
        held = inception.Classifier(model, untrained=False, labels=list(handoff["labels"]),
                                    description=handoff["name"])
        st.session_state["classify_custom_classifier"] = held
    accuracy = handoff.get("test_accuracy")
    st.caption(f":material/model_training: {plain(handoff['name'])} · {len(handoff['labels'])} classes"
               + (f" · test accuracy {accuracy:.1%}" if accuracy is not None else ""))
    if not handoff.get("pretrained_base", True):
        st.warning("This model was trained on an UNTRAINED Inception v3 base (no ImageNet "
                   "weights were available): expect weak predictions.", icon=":material/warning:")
    return f"transfer:{id(model)}", held


def remember(store_key: str, key, value) -> None:
    store = st.session_state.setdefault(store_key, {})
    store[key] = value
    while len(store) > KEEP:
        store.pop(next(iter(store)))


def weights_ui() -> str | None:
    """The weights panel; returns the model mode to use ("auto", "untrained") or None."""
    status = inception.weights_status(include_top=True)
    if status.on_disk:
        st.caption(f":material/check_circle: {status.message}")
        return "auto"
    if status.source == "download":
        failed = st.session_state.get("classify_download_error")
        if not failed:  # the failure message below repeats how to get the weights
            st.warning(status.message, icon=":material/cloud_download:")
        if st.button("Download the Inception v3 weights now (about "
                     f"{fact('inception_v3.weights_bytes').value['top'] / 1e6:.0f} MB)",
                     icon=":material/download:", key="download_weights"):
            bar = st.progress(0.0, text="Connecting…")

            def progress(done: int, total: int) -> None:
                bar.progress(min(done / total, 1.0),
                             text=f"Downloading Inception v3 weights: {done / 1e6:.1f} of "
                                  f"{total / 1e6:.0f} MB")

            try:
                inception.download_weights(True, progress)
            except inception.WeightsUnavailable as exc:
                st.session_state["classify_download_error"] = str(exc)
            else:
                st.session_state.pop("classify_download_error", None)
            st.rerun()
        if failed:
            st.error(failed, icon=":material/cloud_off:")
    else:
        st.error(status.message, icon=":material/error:")
    untrained = st.toggle("Show the pipeline with an UNTRAINED network (random weights)",
                          key="classify_untrained",
                          help="Every step runs for real, but the weights are random: the "
                               "classes it names mean nothing.")
    return "untrained" if untrained else None


def inputs_ui() -> list[tuple[str, str, bytes | None]]:
    """(name, key, data) per chosen image; data None for a gallery photo."""
    limit_mb = min(st.get_option("server.maxUploadSize"), images.MAX_UPLOAD_BYTES // 2**20)
    uploads = st.file_uploader(
        "Upload one or several images", type=images.UPLOAD_TYPES,
        accept_multiple_files=True, key="classify_uploads", max_upload_size=limit_mb,
        help="Decoded by Pillow with a format allowlist; the extension must match the content.")
    st.caption(f"{images.FORMAT_NAMES} (first frame of an animation) · up to {limit_mb} MB "
               f"per file · at most {images.MAX_PIXELS / 1e6:.0f} megapixels")
    titles = images.sample_titles()
    picked = st.pills("…or pick sample photos (real photos shipped with scikit-image and "
                      "scikit-learn)", options=list(titles),
                      format_func=lambda name: titles[name].split(" (")[0],
                      selection_mode="multi", key="classify_samples")
    chosen: list[tuple[str, str, bytes | None]] = []
    for upload in uploads or []:
        data = upload.getvalue()
        chosen.append((upload.name, f"upload:{upload.name}:{hashlib.sha1(data).hexdigest()}", data))
    chosen += [(titles[name], f"sample:{name}", None) for name in picked or []]
    return chosen


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


def result_ui(classifier: inception.Classifier, mode: str, key: str,
              result: inception.Classification) -> None:
    names = classifier.class_names
    side = classifier.size
    with st.container(border=True):
        st.subheader(plain(result.name), anchor=False)
        seen, heat, chart = st.columns([1, 1, 1.4])
        with seen:
            st.image(result.view, caption=f"As the network sees it: centre crop, {side}×{side}, "
                                          "then scaled to [-1, 1]", width="stretch")
        with chart:
            present.chart(top5_figure(result.top, classifier.untrained), width="stretch",
                          key=f"chart-{mode}-{key}", download="the top-5 chart")
        with heat:
            top_indices = result.indices
            options = top_indices + [i for i in range(len(names)) if i not in top_indices]
            url_view.bind(views.cam_param(f"cam-class-{mode}-{key}", options))  # ?cam=
            chosen = st.selectbox(
                "Grad-CAM for class", options, index=0, key=f"cam-class-{mode}-{key}",
                format_func=lambda i: f"{names[i]} ({result.probs[i] * 100:.1f}%)")
            picture, cam_seconds = cam_overlay(classifier, mode, key, result, int(chosen))
            st.image(picture, caption="Grad-CAM on mixed10, Inception v3's last block: red = "
                                      "evidence for the class", width="stretch")
        st.caption(f":material/timer: {result.seconds * 1000:.0f} ms to preprocess, predict and "
                   f"decode the labels · Grad-CAM {cam_seconds * 1000:.0f} ms")
        explanations_ui(classifier, mode, key, result, int(chosen))


def explanations_ui(classifier: inception.Classifier, mode: str, key: str,
                    result: inception.Classification, class_index: int) -> None:
    """The explanation lab for the chosen class, computed on a click and kept per (image,
    model, class): every method's map, time and faithfulness, and the sanity check."""
    options = explain_lab.page_options(sanity_depth=SANITY_BLOCKS)
    cache_key = (key, mode, class_index, options)
    report = st.session_state.get(EXPLAIN_KEY, {}).get(cache_key)
    name = classifier.class_names[class_index]
    explain_button, sanity_button, note = st.columns([1, 1, 2.4])
    explain_clicked = explain_button.button(
        "Explain: all methods", key=f"explain-{mode}-{key}-{class_index}",
        icon=":material/travel_explore:", disabled=report is not None, width="stretch",
        help="Grad-CAM, Grad-CAM++, Score-CAM, gradients, SmoothGrad, Integrated Gradients "
             "and occlusion for the class picked above, with their faithfulness scores.")
    sanity_clicked = sanity_button.button(
        "Sanity check", key=f"sanity-{mode}-{key}-{class_index}", icon=":material/shuffle:",
        disabled=report is not None and report.sanity is not None, width="stretch",
        help="Cascading randomization (Adebayo et al. 2018): do the maps change when what "
             "the network learned is destroyed?")
    note.caption(f"Where did the network look for **{plain(name)}**? Every method side by side, "
                 f"then the sanity check re-draws the top {SANITY_BLOCKS} blocks. On this CPU "
                 "Inception v3 at 299×299 takes about 2–3 minutes for all methods, and as long "
                 "again per block of the sanity check.")
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
    if report is not None:
        explanation_ui(report, result.view, f"{mode}-{key}-{class_index}",
                       untrained=classifier.untrained)


def intro_ui() -> None:
    st.title("Classify")
    st.markdown(
        "Inception v3, trained on ImageNet's 1,000 classes, names what is in a photo. Each image "
        "is converted to RGB, **centre-cropped to a square and resized to 299×299**, its pixel "
        "values scaled to **[-1, 1]** (exactly Keras' `inception_v3.preprocess_input`), then "
        "Grad-CAM shows which parts of the image pushed the network towards a class."
    )


def no_model_ui(chosen: list[tuple[str, str, bytes | None]]) -> None:
    """No model yet: still check every upload, so a bad file is named now, not later."""
    readable = 0
    for name, _key, data in chosen:
        if data is None:
            readable += 1
            continue
        try:
            images.decode_image(data, name)
            readable += 1
        except images.ImageError as exc:
            st.error(plain(str(exc)), icon=":material/broken_image:")
    if readable:
        st.info(f"{readable} image(s) ready: classifying them needs the weights above, or "
                "the untrained network to see the pipeline.", icon=":material/image:")


def results_ui(classifier: inception.Classifier, mode: str,
               chosen: list[tuple[str, str, bytes | None]]) -> None:
    """One result panel per image; a bad file is named and the others go on."""
    for name, key, data in chosen:
        try:
            result = classify_one(classifier, mode, name, key, data)
        except images.ImageError as exc:
            st.error(plain(str(exc)), icon=":material/broken_image:")
            continue
        except Exception as exc:  # never a traceback on the page; the other images go on
            st.error(plain(error_line(f"Classifying {name}", exc)), icon=":material/error:")
            continue
        try:
            result_ui(classifier, mode, key, result)
        except Exception as exc:
            st.error(plain(error_line(f"Drawing the result for {name}", exc)),
                     icon=":material/error:")


intro_ui()
handoff = st.session_state.get(CUSTOM_KEY)
custom = transfer_ui(handoff) if handoff else None
mode = custom[0] if custom else weights_ui()
url_view = views.opened("classify", views.classify_params(list(images.sample_titles())))
chosen = inputs_ui()
if mode is None:
    no_model_ui(chosen)
    st.stop()
if mode == "untrained":
    st.warning("UNTRAINED NETWORK: random weights. The pipeline below runs for real, but the "
               "classes it names are meaningless.", icon=":material/warning:")
if not chosen:
    st.info("Upload images or pick sample photos to classify them.", icon=":material/image:")
    st.stop()
try:
    classifier = custom[1] if custom else shared_classifier(mode)
except inception.WeightsUnavailable as exc:
    st.error(plain(str(exc)), icon=":material/error:")
    st.stop()
except Exception as exc:  # never a traceback on the page
    st.error(plain(error_line("Loading the model", exc)), icon=":material/error:")
    st.stop()
results_ui(classifier, mode, chosen)
url_view.sync()   # the Grad-CAM class picked in a panel
