"""Transfer: Inception v3 becomes a classifier for the user's own classes (seed answer 9)."""

from __future__ import annotations

import numpy as np
import streamlit as st

from cnnlab.train import jobs
from cnnlab.train.export import model_bytes
from cnnlab.transfer import charts
from cnnlab.transfer import data as td
from cnnlab.transfer import run as tl
from cnnlab.ui.navigation import ensure_app_navigation

ensure_app_navigation()  # a deep link on a fresh server: run through app.py

st.title("Transfer learning")
st.markdown(
    "Bring your own pictures: a folder per class. Inception v3, trained on ImageNet, is "
    "**frozen up to its bottleneck** (the 2,048 numbers it computes for every image) and only "
    "a new softmax layer with one unit per class is trained. That is seed answer 9: most of "
    "what a classifier needs to know about images is already in the pretrained filters."
)

# Whose jobs: a token in the URL survives a refresh; session_state survives page switches.
owner = jobs.browser_owner(st.query_params, st.session_state, "transfer")
manager = jobs.shared_manager()


@st.cache_resource(scope="session", on_release=lambda ws: ws.cleanup(), show_spinner=False)
def session_workspace() -> td.SessionWorkspace:
    """This browser session's temporary folder: uploads are unpacked only here, and it is
    removed when the session ends."""
    return td.SessionWorkspace()


workspace = session_workspace()
st.session_state["transfer_workspace"] = str(workspace.path)  # shown to tests, not used
feature_cache = st.session_state.setdefault("transfer_feature_cache", tl.FeatureCache())
run: tl.TransferRun | None = st.session_state.get("transfer_run") or tl.run_of(owner)
st.session_state["transfer_run"] = run

# ---- 1. data --------------------------------------------------------------------------------
st.header("1. Your classes", divider="gray")
SOURCES = {"upload": "Upload a zip", "demo": "Demo: crops of three sample photos"}
if td.server_directories():
    SOURCES["server"] = "A folder on the server"
source = st.radio("Images from", list(SOURCES), format_func=SOURCES.get, horizontal=True,
                  key="transfer_source")


def load(action, ident: str) -> None:
    """Run a loader; keep the dataset or the one-line reason it was refused."""
    try:
        with st.spinner("Unpacking and checking every image…"):
            st.session_state["transfer_dataset"] = action()
        st.session_state.pop("transfer_data_error", None)
    except td.DatasetError as exc:
        st.session_state["transfer_dataset"] = None
        st.session_state["transfer_data_error"] = str(exc)
    except Exception as exc:  # noqa: BLE001 - a page shows one line, never a traceback
        st.session_state["transfer_dataset"] = None
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        st.session_state["transfer_data_error"] = f"Could not read the images: {reason}"
    st.session_state["transfer_loaded"] = ident


if source == "upload":
    st.caption(
        f"A zip with one folder per class (`cats/…`, `dogs/…`; a single wrapper folder is "
        f"fine). Up to {td.MAX_ARCHIVE_MB} MB, {td.MAX_UNCOMPRESSED_BYTES // 1024**2:,} MB "
        f"unpacked, {td.MAX_IMAGES:,} images. JPEG, PNG, WebP, GIF, BMP or TIFF; anything "
        "unreadable is skipped and listed.")
    upload = st.file_uploader("Zip of class folders", type=["zip"], key="transfer_zip",
                              max_upload_size=td.MAX_ARCHIVE_MB)
    if upload is not None and st.session_state.get("transfer_loaded") != upload.file_id:
        load(lambda: td.load_zip(upload.getvalue(), upload.name, workspace), upload.file_id)
elif source == "demo":
    st.caption("Three classes cut from three real photos shipped with scikit-image (a cat, a "
               "coffee cup, a rocket): random square crops, some mirrored. Real pixels, but "
               "not a real dataset: every crop of a class shares one scene.")
    per_class = st.select_slider("Images per class", [10, 20, 40, 100], value=40,
                                 key="transfer_demo_n")
    # Callbacks, not `if st.button(...)`: a click must survive any rerun of this run.
    st.button("Use the demo dataset", icon=":material/photo_library:", key="transfer_demo",
              on_click=lambda: load(lambda: td.load_zip(
                  td.demo_archive(per_class=per_class, size=160), "demo.zip", workspace),
                  f"demo-{per_class}"))
else:
    folders = [str(p) for p in td.server_directories()]
    folder = st.selectbox("Folder (CNNLAB_TRANSFER_DATA)", folders, key="transfer_folder")
    st.button("Load this folder", icon=":material/folder_open:", key="transfer_load_dir",
              on_click=lambda: load(lambda: td.load_directory(folder), f"dir-{folder}"))

if st.session_state.get("transfer_data_error"):
    st.error(st.session_state["transfer_data_error"], icon=":material/error:")
dataset: td.ImageDataset | None = st.session_state.get("transfer_dataset")
if dataset is None:
    st.info("Choose your images to continue.", icon=":material/arrow_upward:")
    st.stop()

counts = dataset.counts()
cols = st.columns(3)
cols[0].metric("Classes", dataset.num_classes)
cols[1].metric("Images", f"{len(dataset):,}")
cols[2].metric("Skipped files", len(dataset.skipped))
st.plotly_chart(charts.class_counts_figure(counts, td.RECOMMENDED_PER_CLASS), width="stretch",
                key="transfer_counts")
for warning in dataset.warnings():
    st.warning(warning, icon=":material/warning:")
if dataset.skipped:
    with st.expander(f"{len(dataset.skipped)} files skipped, and why", icon=":material/block:"):
        st.dataframe([{"file": s.name, "reason": s.reason} for s in dataset.skipped],
                     hide_index=True, width="stretch")

# ---- 2. split -------------------------------------------------------------------------------
st.header("2. Training, validation and test images", divider="gray")
cols = st.columns(3)
val_fraction = cols[0].slider("Validation share", 0.05, 0.4, 0.15, 0.05, key="transfer_val")
test_fraction = cols[1].slider("Test share", 0.05, 0.4, 0.15, 0.05, key="transfer_test")
seed = int(cols[2].number_input("Seed", 0, 2**31 - 1, 0, key="transfer_seed",
                                help="The same seed gives the same split and the same run."))
try:
    split = td.stratified_split(dataset.labels, val_fraction, test_fraction, seed)
except td.DatasetError as exc:
    st.error(str(exc), icon=":material/error:")
    st.stop()
st.caption("Each class is split separately, so every part keeps the class proportions. The "
           "test images are never trained on nor used to choose anything.")
st.dataframe(split.sizes(dataset.labels, dataset.class_names), hide_index=True,
             width="stretch", key="transfer_split")

# ---- 3. augmentation ------------------------------------------------------------------------
st.header("3. Augmentation", divider="gray")
st.caption("Keras preprocessing layers vary each training image a little every time it is "
           "seen; at inference they do nothing. Only full mode and phase 2 use them: fast "
           "mode's cached features are fixed.")
cols = st.columns(4)
aug = tl.Augmentation(
    flip=cols[0].toggle("Horizontal flip", True, key="transfer_flip"),
    rotation=cols[1].toggle("Rotation ±18°", True, key="transfer_rotation"),
    zoom=cols[2].toggle("Zoom ±15 %", True, key="transfer_zoom"),
    contrast=cols[3].toggle("Contrast ±20 %", True, key="transfer_contrast"),
)
if st.toggle("Preview augmented samples", False, key="transfer_preview",
             help="Loads TensorFlow the first time (a few seconds)."):
    key = (dataset.fingerprint(), aug, seed)
    preview = st.session_state.get("transfer_preview_cache")
    if preview is None or preview[0] != key:
        picks = [int(np.flatnonzero(dataset.labels[split.train] == c)[0])
                 for c in range(min(dataset.num_classes, 4))]
        paths = [dataset.paths[split.train[i]] for i in picks]
        try:
            with st.spinner("Augmenting…"):
                originals = td.load_pixels(paths, 128)
                variants = tl.augment_preview(originals, aug, variants=5, seed=seed)
            preview = (key, charts.preview_mosaic(originals, variants))
        except Exception as exc:  # noqa: BLE001 - e.g. a server folder changed under us
            preview = (key, None)
            st.error(f"No preview: {' '.join(str(exc).split())[:200]}", icon=":material/error:")
        st.session_state["transfer_preview_cache"] = preview
    if preview[1] is not None:
        st.image(preview[1], caption="Left: the image as the network sees it; right: five "
                 f"augmented versions ({aug.describe()}).")

# ---- 4. the model ---------------------------------------------------------------------------
st.header("4. Inception v3 with a new head", divider="gray")
weights = tl.resolve_base_weights()
if weights.pretrained:
    st.success(weights.message, icon=":material/check_circle:")
    if st.toggle("Use an untrained base instead (random weights, for comparison)", False,
                 key="transfer_untrained"):
        weights = tl.resolve_base_weights(untrained=True)
if not weights.pretrained:
    st.warning(weights.message, icon=":material/warning:")
    from cnnlab.vision import inception

    if inception.weights_status(include_top=False).source == "download" and st.button(
            "Download the ImageNet weights (about 88 MB)", icon=":material/download:",
            key="transfer_download"):
        bar = st.progress(0.0, text="Downloading…")
        try:
            inception.download_weights(
                include_top=False,
                progress=lambda done, total: bar.progress(min(done / total, 1.0),
                                                          text=f"{done / 1e6:.0f} MB"))
            st.rerun()
        except inception.WeightsUnavailable as exc:
            bar.empty()
            st.error(str(exc), icon=":material/cloud_off:")

MODES = {"fast": "Fast: cached bottleneck features", "full": "Full: augmented images"}
cols = st.columns([2, 1, 1, 1, 1])
mode = cols[0].radio("Mode", list(MODES), format_func=MODES.get, key="transfer_mode",
                     help="Fast: every image goes through the frozen base once; the head then "
                          "trains on the stored 2,048 features. Full: every step sends "
                          "augmented images through the base.")
sizes = list(tl.IMAGE_SIZES)
image_size = cols[1].selectbox("Image size", sizes, key="transfer_size",
                               index=sizes.index(299 if weights.pretrained else 128),
                               help="Inception v3 takes 75 to 299 pixels; its ImageNet "
                                    "weights were trained at 299. Smaller is faster.")
epochs = int(cols[2].number_input("Epochs", 1, 200, 10 if mode == "fast" else 3,
                                  key=f"transfer_epochs_{mode}"))
batch_size = cols[3].selectbox("Batch size", [8, 16, 32, 64, 128], index=2,
                               key="transfer_batch")
learning_rate = cols[4].select_slider("Learning rate", [1e-4, 3e-4, 1e-3, 3e-3, 1e-2],
                                      value=1e-3, key="transfer_lr")
with st.expander("Phase 2: fine-tune the top of Inception v3", icon=":material/tune:"):
    st.caption("After the head has learned, unfreeze the top inception blocks (their "
               "BatchNorm layers stay frozen) and train them with a low learning rate, "
               "augmented images through the whole network. Much slower per epoch.")
    cols2 = st.columns(3)
    blocks = cols2[0].selectbox("Unfreeze", [0, 1, 2], key="transfer_blocks",
                                format_func=lambda b: "off" if b == 0 else
                                f"top {b} block{'s' if b > 1 else ''} (after mixed{10 - b})")
    ft_epochs = int(cols2[1].number_input("Phase 2 epochs", 1, 50, 2, key="transfer_ft_epochs",
                                          disabled=blocks == 0))
    ft_lr = cols2[2].select_slider("Phase 2 learning rate", [1e-6, 3e-6, 1e-5, 3e-5, 1e-4],
                                   value=1e-5, key="transfer_ft_lr", disabled=blocks == 0)

config = tl.TransferConfig(mode=mode, image_size=int(image_size), epochs=epochs,
                           batch_size=int(batch_size), learning_rate=float(learning_rate),
                           augmentation=aug, fine_tune_blocks=int(blocks),
                           fine_tune_epochs=ft_epochs, fine_tune_learning_rate=float(ft_lr),
                           seed=seed)

passes = tl.base_passes(config, len(split.train), len(split.val), len(split.test))
other = tl.base_passes(tl.TransferConfig(**{**config.as_dict(), "augmentation": aug,
                                            "mode": "full" if mode == "fast" else "fast"}),
                       len(split.train), len(split.val), len(split.test))
st.caption(
    f"This run sends **{passes['total']:,} images** through Inception v3: every image once "
    f"for its bottleneck features ({passes['features']:,})"
    + (f", then {config.epochs} epochs x {len(split.train) + len(split.val):,} training and "
       f"validation images ({passes['phase 1']:,})" if passes["phase 1"] else
       ", then the head trains on the stored features: one 2,048 x k matrix product per image")
    + (f", plus phase 2 ({passes['phase 2']:,})" if passes["phase 2"] else "")
    + f". {'Full' if mode == 'fast' else 'Fast'} mode would send {other['total']:,}.")

k = dataset.num_classes
counted = run.parameters.get("phase 1") if run is not None else None
cols = st.columns(3)
cols[0].metric("Trainable parameters (the head)", f"{tl.head_parameters(k):,}",
               help=f"2,048 x {k} weights + {k} biases: the only numbers phase 1 changes.")
if counted is not None and run.class_names == dataset.class_names:
    cols[1].metric("Frozen parameters", f"{counted.frozen:,}",
                   help="Counted by Keras on the built model: the Inception v3 base, plus the "
                        "head's feature standardisation (2 x 2,048 + 1, set once, not trained).")
    cols[2].metric("Trainable share", f"{counted.trainable / counted.total:.3%}")
    if "phase 2" in run.parameters:
        st.caption(f"Phase 2 trains {run.parameters['phase 2'].trainable:,} parameters "
                   f"({run.parameters['phase 2'].frozen:,} stay frozen).")
else:
    cols[1].metric("Frozen parameters", "—",
                   help="Keras counts them when training builds Inception v3; they appear "
                        "here and above the training curves.")


# ---- 5. training ----------------------------------------------------------------------------
def start_training() -> None:
    try:
        new_run = tl.TransferRun(dataset, split, config, weights, feature_cache)
        new_run.submit(manager, owner)
    except (jobs.JobError, ValueError) as exc:
        st.session_state["transfer_error"] = str(exc)
        return
    old = st.session_state.get("transfer_run")
    if old is not None and old.finished:
        # One run per session is shown: let the runner drop the old one's models and images.
        for job in old.jobs():
            manager.forget(owner, job.id)
    tl.remember_run(owner, new_run)
    st.session_state["transfer_run"] = new_run
    st.session_state["transfer_live"] = True


def stop_training() -> None:
    current = st.session_state.get("transfer_run")
    if current is not None:
        current.stop()


st.header("5. Train", divider="gray")
active = run is not None and not run.finished
buttons = st.columns([1, 1, 4])
buttons[0].button("Train", key="transfer_train", type="primary", icon=":material/play_arrow:",
                  disabled=active, width="stretch", on_click=start_training)
buttons[1].button("Stop", key="transfer_stop", icon=":material/stop:", disabled=not active,
                  width="stretch", on_click=stop_training)
slots = manager.counts()
buttons[2].caption(f"Uses the Train page's job runner: {slots['running']} of "
                   f"{slots['max_concurrent']} training slots busy, {slots['queued']} queued.")
if st.session_state.get("transfer_error"):
    st.error(st.session_state.pop("transfer_error"), icon=":material/error:")


def job_panel(job: jobs.TrainingJob, stage: str, stage_progress: float) -> None:
    snap = job.snapshot()
    st.subheader(snap.label)
    if snap.state == "queued":
        st.info(f"Queued: position {snap.queue_position}; it starts when a slot frees up.",
                icon=":material/hourglass_top:")
        return
    if snap.state == "failed":
        st.error(f"Training failed: {snap.error}", icon=":material/error:")
        return
    if snap.state in ("running", "stopping") and not snap.batches:
        st.progress(stage_progress, text=stage)
        return
    if "trainable" in snap.info:
        st.caption(f"Keras counts {snap.info['trainable']:,} trainable and "
                   f"{snap.info['frozen']:,} frozen parameters "
                   f"({'the head on cached features' if snap.info.get('mode') == 'fast' else 'images through the network'}).")
    ips = f"{snap.images_per_second:,.0f} examples/s" if snap.images_per_second else ""
    text = (f"{snap.state} · epoch {snap.epoch}/{snap.epochs} · batch {snap.batch}/"
            f"{snap.steps_per_epoch or '…'} · {ips} · {snap.elapsed_s:.1f} s")
    st.progress(snap.progress, text=text)
    if snap.batches:
        st.plotly_chart(charts.live_figure(snap), width="stretch", key=f"transfer_live_{snap.id}")


def live_panel() -> None:
    current: tl.TransferRun | None = st.session_state.get("transfer_run")
    if current is None:
        st.caption("Press **Train** to start; the curves update twice a second.")
        return
    current.advance(manager, owner)  # phase 2 starts once phase 1 is done
    stage, progress = current.status()
    for job in current.jobs():
        job_panel(job, stage, progress)
    if current.finished and st.session_state.get("transfer_live"):
        st.session_state["transfer_live"] = False
        st.rerun()  # the whole page: stop polling, show the results


if active:
    st.session_state["transfer_live"] = True
st.fragment(run_every=0.5 if active else None)(live_panel)()

# ---- 6. results -----------------------------------------------------------------------------
if run is None or not run.finished:
    st.stop()
run.release_training_data()
report = run.report()
if report is None:
    st.info("This run stopped before it finished, so its test set was not evaluated. "
            "Train again to see the results.", icon=":material/info:")
    st.stop()

st.header("6. How well does it classify?", divider="gray")
if not run.base_weights.pretrained:
    st.caption(":material/warning: Trained on an **untrained base**: the features are random "
               "projections of the pixels, not ImageNet knowledge.")
cols = st.columns(3)
cols[0].metric("Test accuracy", f"{report.accuracy:.1%}",
               help=f"{int(np.trace(report.confusion))} of {len(report.y_true)} test images right")
cols[1].metric("Chance level", f"{1 / len(report.class_names):.1%}")
cols[2].metric("Test images", len(report.y_true))
speed = run.speedup()
if speed is not None:
    st.markdown(f"**Fast mode:** the bottleneck features took {speed['features_s']:.1f} s, once"
                f"{' (in an earlier run: cached)' if run.feature_cache_hit else ''}. An uncached "
                f"epoch would send every training image through the frozen base again "
                f"(≈{speed['uncached_epoch_s']:.2f} s at the speed of that pass); a cached "
                f"epoch takes {speed['cached_epoch_s'] * 1000:.1f} ms (median training step x "
                f"steps): **{speed['ratio']:,.0f}x faster**.")
    st.plotly_chart(charts.speedup_figure(speed["uncached_epoch_s"], speed["cached_epoch_s"]),
                    width="stretch", key="transfer_speedup")
elif run.config.mode == "fast":
    st.caption("Fast mode's speed-up is measured from the second training step on (the first "
               "traces the graph): train for more than one step to see it."
               + (" The bottleneck features came from the cache of an earlier run."
                  if run.feature_cache_hit else ""))

left, right = st.columns(2)
with left:
    st.markdown("**Confusion matrix** (rows: true class, columns: prediction)")
    st.plotly_chart(charts.confusion_figure(report.confusion, report.class_names),
                    width="stretch", key="transfer_confusion")
with right:
    st.markdown("**Precision and recall per class**")
    st.plotly_chart(charts.precision_recall_figure(report.class_names, report.precision,
                                                   report.recall),
                    width="stretch", key="transfer_pr")
    st.dataframe(report.per_class_rows(), hide_index=True, width="stretch",
                 column_config={"precision": st.column_config.NumberColumn(format="percent"),
                                "recall": st.column_config.NumberColumn(format="percent")})

wrong = [m.index for m in report.mistakes(None)]
st.markdown(f"**Misclassified test images:** {len(wrong)} of {len(report.y_true)}, the most "
            "confident mistakes first.")
if len(wrong):
    shown = wrong[:24]
    per_row = 6
    for start in range(0, len(shown), per_row):
        columns = st.columns(per_row)
        for col, i in zip(columns, shown[start:start + per_row], strict=False):
            col.image(run.pixels["test"][i], width="stretch", caption=(
                f"{run.test_names[i]}: {report.class_names[report.y_true[i]]} → "
                f"{report.class_names[report.y_pred[i]]} ({report.probs[i].max():.0%})"))

st.header("7. Keep it", divider="gray")
cols = st.columns(2)
with cols[0]:
    # The model is serialised only when the button is clicked (Streamlit calls the function then).
    st.download_button(
        "Download the model (.keras)",
        lambda: model_bytes(run.model),
        file_name="cnnlab-transfer.keras", mime="application/octet-stream",
        icon=":material/download:", key="transfer_download_model", on_click="ignore")
    st.caption(f"Input: {run.image_size}x{run.image_size} RGB scaled to [-1, 1] (Inception's "
               f"preprocess_input); output: softmax over {', '.join(run.class_names)}.")
with cols[1]:
    st.button("Use in Classify", icon=":material/image_search:", key="transfer_use",
              on_click=lambda: st.session_state.update({tl.CLASSIFY_KEY: tl.classify_handoff(run)}))
    if st.session_state.get(tl.CLASSIFY_KEY, {}).get("model") is run.model:
        st.success("The Classify page now uses this model in this session.",
                   icon=":material/check_circle:")
        st.page_link("pages/classify.py", label="Open Classify", icon=":material/image_search:")
