"""Classify: Inception v3 names what is in a photo; Grad-CAM shows where it looked.

One scroll (a panel per photo), or in presenter mode (or from a `?step=N` link) five steps
through one photo walked with Back/Next and the keys → ←: the photo and its crop, the top-5,
Grad-CAM, the explanation lab, the sanity check (cnnlab.vision.steps; the parts in
cnnlab.ui.classify_views).

The page draws. cnnlab.vision.images decodes and preprocesses, cnnlab.vision.inception finds the
weights, loads the model (once per server process) and classifies, cnnlab.vision.gradcam
computes the heat maps. TensorFlow loads only when a model is needed.
"""

from __future__ import annotations

import hashlib

import streamlit as st

from cnnlab.facts import fact
from cnnlab.ui import classify_views as parts
from cnnlab.ui import present, views
from cnnlab.ui.guard import one_line_errors
from cnnlab.ui.navigation import ensure_app_navigation
from cnnlab.ui.safe import error_line, plain
from cnnlab.vision import custom_model, images, inception, steps

ensure_app_navigation()  # a deep link on a fresh server: run through app.py

CUSTOM_KEY = custom_model.SESSION_KEY  # set by the Transfer page's "Use in Classify"
INTRO = ("Inception v3, trained on ImageNet's 1,000 classes, names what is in a photo. Each "
         "image is converted to RGB, **centre-cropped to a square and resized to 299×299**, its "
         "pixel values scaled to **[-1, 1]** (exactly Keras' `inception_v3.preprocess_input`), "
         "then Grad-CAM shows which parts of the image pushed the network towards a class.")


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
    held = transfer_classifier(handoff)
    accuracy = handoff.get("test_accuracy")
    st.caption(f":material/model_training: {plain(handoff['name'])} · {len(handoff['labels'])} classes"
               + (f" · test accuracy {accuracy:.1%}" if accuracy is not None else ""))
    if not handoff.get("pretrained_base", True):
        st.warning("This model was trained on an UNTRAINED Inception v3 base (no ImageNet "
                   "weights were available): expect weak predictions.", icon=":material/warning:")
    return f"transfer:{id(handoff['model'])}", held


def transfer_classifier(handoff: dict) -> inception.Classifier:
    model = handoff["model"]
    held = st.session_state.get("classify_custom_classifier")
    if held is None or held.model is not model:  # one per handed-over model, this session only
        held = inception.Classifier(model, untrained=False, labels=list(handoff["labels"]),
                                    description=handoff["name"])
        st.session_state["classify_custom_classifier"] = held
    return held


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


def result_ui(classifier: inception.Classifier, mode: str, key: str,
              result: inception.Classification) -> None:
    with st.container(border=True):
        st.subheader(plain(result.name), anchor=False)
        seen, heat, chart = st.columns([1, 1, 1.4])
        with seen:
            st.image(result.view, caption=parts.view_caption(classifier.size), width="stretch")
        with chart:
            parts.top5_chart(classifier, mode, key, result)
        with heat:
            chosen = parts.cam_class(url_view, classifier, mode, key, result)   # ?cam=
            cam_seconds = parts.gradcam_image(classifier, mode, key, result, chosen,
                                              width="stretch")
        parts.timing_caption(result, cam_seconds)
        parts.lab_ui(classifier, mode, key, result, chosen)


def intro_ui(walking: bool) -> None:
    st.title("Classify")
    if not walking:         # a walk has it at the end of step 1, folded on a projector
        st.markdown(INTRO)


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
            result = parts.classify_one(classifier, mode, name, key, data)
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


def loaded(mode: str, custom: tuple[str, inception.Classifier] | None
           ) -> inception.Classifier | None:
    """The classifier of `mode`, or None after one st.error line."""
    try:
        return custom[1] if custom else shared_classifier(mode)
    except inception.WeightsUnavailable as exc:
        st.error(plain(str(exc)), icon=":material/error:")
    except Exception as exc:  # never a traceback on the page
        st.error(plain(error_line("Loading the model", exc)), icon=":material/error:")
    return None


def chosen_model() -> tuple[str, tuple[str, inception.Classifier] | None] | None:
    """The model step 1 chose (mode, the handed-over one), without drawing its widgets."""
    if handoff and st.session_state.get("classify_model", "transfer") == "transfer":
        custom = f"transfer:{id(handoff['model'])}", transfer_classifier(handoff)
        return custom[0], custom
    if inception.weights_status(include_top=True).on_disk:
        return "auto", None
    return ("untrained", None) if st.session_state.get("classify_untrained") else None


def photo_step_ui() -> None:
    """Step 1: the photo and its crop first, on a projector's screen; the choices below."""
    picture, below = st.container(), st.container()
    with below:
        custom = transfer_ui(handoff) if handoff else None
        if custom is None:
            weights_ui()
        photos = parts.walk_photos(inputs_ui())
        present.note(INTRO)
    with picture:
        parts.photo_ui(photos, custom[1].size if custom else images.INCEPTION_SIZE)


def step_ui(number: int) -> None:
    """One step of the walk: only its part of the page, for the walk's (first) photo."""
    part = steps.step(number).part
    if part == "photo":
        photo_step_ui()
        return
    photos = parts.walk_photos()
    model = chosen_model()
    if not photos or model is None:
        st.info(steps.NO_PHOTO if not photos else steps.NO_MODEL, icon=":material/image:")
        return
    mode, custom = model
    classifier = loaded(mode, custom)
    if classifier is None:
        return
    name, key, data = photos[0]
    try:
        result = parts.classify_one(classifier, mode, name, key, data)
    except images.ImageError as exc:
        st.error(plain(str(exc)), icon=":material/broken_image:")
        return
    parts.untrained_line(classifier)
    with one_line_errors(f"Drawing step {number} for {name}"):
        if part == "top5":
            parts.top5_step_ui(classifier, mode, key, result)
        elif part == "gradcam":
            parts.gradcam_step_ui(url_view, classifier, mode, key, result)
        else:
            parts.lab_step_ui(url_view, classifier, mode, key, result, part == "sanity")
    if note := steps.followed([p[0] for p in photos]):
        st.caption(plain(note))


walking = parts.stepping()
intro_ui(walking)
handoff = st.session_state.get(CUSTOM_KEY)
url_view = views.opened("classify", parts.params(list(images.sample_titles())))
number = parts.walk_ui(url_view)
if number is not None:
    with one_line_errors(f"Step {number}"):
        step_ui(number)
    url_view.sync()   # the Grad-CAM class picked in step 3
    st.stop()
custom = transfer_ui(handoff) if handoff else None
mode = custom[0] if custom else weights_ui()
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
classifier = loaded(mode, custom)
if classifier is None:
    st.stop()
results_ui(classifier, mode, chosen)
url_view.sync()   # the Grad-CAM class picked in a panel
