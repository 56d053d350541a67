"""Transfer: Inception v3 becomes a classifier for the user's own classes (seed answer 9).

The page draws; `cnnlab.transfer` checks the images, splits them, builds and trains the
model (through the Train page's job runner) and hands it to the Classify page.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from cnnlab.errors import ConfigError
from cnnlab.facts import fact
from cnnlab.train import jobs
from cnnlab.train.backend import shared_manager
from cnnlab.train.export import model_bytes
from cnnlab.train.jobs import TrainingJob
from cnnlab.train.metrics import TestReport
from cnnlab.transfer import archive, charts
from cnnlab.transfer import image_folder as folders
from cnnlab.transfer.config import IMAGE_SIZES, TOP_BLOCK_BOUNDARY, Augmentation, TransferConfig
from cnnlab.transfer.cost import describe_base_passes
from cnnlab.transfer.features import FeatureCache
from cnnlab.transfer.handoff import classify_handoff
from cnnlab.transfer.image_folder import ImageFolder, Split
from cnnlab.transfer.model import (
    BOTTLENECK_WIDTH,
    BaseWeights,
    augmentation_samples,
    head_parameters,
    resolve_base_weights,
)
from cnnlab.transfer.registry import run_of, start_run
from cnnlab.transfer.run import TransferRun
from cnnlab.ui import present, views
from cnnlab.ui.guard import one_line_errors
from cnnlab.ui.job_progress import TRANSFER_WORDING, progress_ui, progress_view
from cnnlab.ui.navigation import ensure_app_navigation
from cnnlab.ui.owner import page_runs, watch_notice_ui, watch_own_run
from cnnlab.ui.safe import error_line, plain
from cnnlab.vision.custom_model import SESSION_KEY as CLASSIFY_KEY

ensure_app_navigation()  # a deep link on a fresh server: run through app.py

st.title("Transfer learning")
st.markdown(
    "Bring your own pictures: a folder per class. Inception v3, trained on ImageNet, is "
    "**frozen up to its bottleneck** (the 2,048 numbers it computes for every image) and only "
    "a new softmax layer with one unit per class is trained. That is seed answer 9: most of "
    "what a classifier needs to know about images is already in the pretrained filters."
)

# Whose runs: the browser's cookie (a refresh keeps control) and session_state (page switches).
# The URL names only the run shown: a shared link lets others watch it, read-only.
manager = shared_manager()
owner, run_view = page_runs("transfer", manager)   # let go once its last session ends


@st.cache_resource(scope="session", on_release=lambda ws: ws.cleanup(), show_spinner=False)
def session_workspace() -> archive.SessionWorkspace:
    """This browser session's temporary folder: uploads are unpacked only here, and it is
    removed when the session ends."""
    return archive.SessionWorkspace()


# ---- 1. data --------------------------------------------------------------------------------
def load(action, ident: str, workspace: archive.SessionWorkspace) -> None:
    """Run a loader; keep the dataset or the one-line reason it was refused. What it loads
    replaces the previous dataset, whose unpacked folder is freed first (a session's disk,
    issue 15) unless a run of this session still reads its images."""
    previous: ImageFolder | None = st.session_state.get("transfer_dataset")
    current = st.session_state.get("transfer_run")
    if previous is not None and (current is None or current.finished):
        workspace.remove(previous.root)  # only ever inside the workspace (not a server folder)
        st.session_state["transfer_dataset"] = None
    try:
        with st.spinner("Unpacking and checking every image…"):
            st.session_state["transfer_dataset"] = action()
        st.session_state.pop("transfer_data_error", None)
    except folders.ImageFolderError as exc:
        st.session_state["transfer_dataset"] = None
        st.session_state["transfer_data_error"] = str(exc)
    except Exception as exc:  # noqa: BLE001 - a page shows one line, never a traceback
        st.session_state["transfer_dataset"] = None
        st.session_state["transfer_data_error"] = error_line("Reading the images", exc)
    st.session_state["transfer_loaded"] = ident


def source_ui(workspace: archive.SessionWorkspace) -> ImageFolder:
    """Where the images come from; stops the page until a dataset is loaded."""
    st.header("1. Your classes", divider="gray")
    sources = {"upload": "Upload a zip", "demo": "Demo: crops of three sample photos"}
    if folders.server_directories():
        sources["server"] = "A folder on the server"
    source = st.radio("Images from", list(sources), format_func=sources.get, horizontal=True,
                      key="transfer_source")
    if source == "upload":
        st.caption(
            f"A zip with one folder per class (`cats/…`, `dogs/…`; a single wrapper folder is "
            f"fine). Up to {archive.MAX_ARCHIVE_MB} MB, "
            f"{archive.MAX_UNCOMPRESSED_BYTES // 1024**2:,} MB unpacked, "
            f"{folders.MAX_IMAGES:,} images. JPEG, PNG, WebP, GIF, BMP or TIFF; anything "
            "unreadable is skipped and listed.")
        upload = st.file_uploader("Zip of class folders", type=["zip"], key="transfer_zip",
                                  max_upload_size=archive.MAX_ARCHIVE_MB)
        if upload is not None and st.session_state.get("transfer_loaded") != upload.file_id:
            load(lambda: archive.load_zip(upload.getvalue(), upload.name, workspace),
                 upload.file_id, workspace)
    elif source == "demo":
        st.caption("Three classes cut from three real photos shipped with scikit-image (a cat, "
                   "a coffee cup, a rocket): random square crops, some mirrored. Real pixels, "
                   "but not a real dataset: every crop of a class shares one scene.")
        per_class = st.select_slider("Images per class", [10, 20, 40, 100], value=40,
                                     key="transfer_demo_n")
        # Callbacks, not `if st.button(...)`: a click must survive any rerun of this run.
        st.button("Use the demo dataset", icon=":material/photo_library:", key="transfer_demo",
                  on_click=lambda: load(lambda: archive.load_zip(
                      archive.demo_archive(per_class=per_class, size=160), "demo.zip",
                      workspace), f"demo-{per_class}", workspace))
    else:
        on_server = [str(p) for p in folders.server_directories()]
        folder = st.selectbox("Folder (CNNLAB_TRANSFER_DATA)", on_server, key="transfer_folder")
        st.button("Load this folder", icon=":material/folder_open:", key="transfer_load_dir",
                  on_click=lambda: load(lambda: folders.load_directory(folder), f"dir-{folder}",
                                        workspace))

    if st.session_state.get("transfer_data_error"):
        st.error(plain(st.session_state["transfer_data_error"]), icon=":material/error:")
    dataset: ImageFolder | None = st.session_state.get("transfer_dataset")
    if dataset is None:
        st.info("Choose your images to continue.", icon=":material/arrow_upward:")
        st.stop()
    return dataset


def classes_ui(dataset: ImageFolder) -> None:
    """Images per class, the warnings, and every file skipped with its reason."""
    cols = st.columns(3)
    cols[0].metric("Classes", dataset.num_classes)
    cols[1].metric("Images", f"{len(dataset):,}")
    cols[2].metric("Skipped files", len(dataset.skipped))
    present.chart(charts.class_counts_figure(dataset.counts(), folders.RECOMMENDED_PER_CLASS),
                  width="stretch", key="transfer_counts")
    for warning in dataset.warnings():
        st.warning(plain(warning), icon=":material/warning:")
    if dataset.skipped:
        with st.expander(f"{len(dataset.skipped)} files skipped, and why",
                         icon=":material/block:"):
            st.dataframe([{"file": s.name, "reason": s.reason} for s in dataset.skipped],
                         hide_index=True, width="stretch")


# ---- 2. split -------------------------------------------------------------------------------
def split_ui(dataset: ImageFolder) -> tuple[Split, int]:
    """The shares and the seed; (split, seed), or the page stops with the reason."""
    st.header("2. Training, validation and test images", divider="gray")
    cols = st.columns(3)
    val_fraction = cols[0].slider("Validation share", 0.05, 0.4, 0.15, 0.05, key="transfer_val")
    test_fraction = cols[1].slider("Test share", 0.05, 0.4, 0.15, 0.05, key="transfer_test")
    seed = int(cols[2].number_input("Seed", 0, 2**31 - 1, 0, key="transfer_seed",
                                    help="The same seed gives the same split and the same run."))
    try:
        split = folders.split_by_fraction(dataset.labels, val_fraction, test_fraction, seed)
    except ConfigError as exc:
        st.error(plain(str(exc)), icon=":material/error:")
        st.stop()
    st.caption("Each class is split separately, so every part keeps the class proportions. The "
               "test images are never trained on nor used to choose anything.")
    st.dataframe(split.sizes(dataset.labels, dataset.class_names), hide_index=True,
                 width="stretch", key="transfer_split")
    return split, seed


# ---- 3. augmentation ------------------------------------------------------------------------
def augmentation_ui(dataset: ImageFolder, split: Split, seed: int) -> Augmentation:
    st.header("3. Augmentation", divider="gray")
    st.caption("Keras preprocessing layers vary each training image a little every time it is "
               "seen; at inference they do nothing. Only full mode and phase 2 use them: fast "
               "mode's cached features are fixed.")
    cols = st.columns(4)
    aug = Augmentation(
        flip=cols[0].toggle("Horizontal flip", True, key="transfer_flip"),
        rotation=cols[1].toggle("Rotation ±18°", True, key="transfer_rotation"),
        zoom=cols[2].toggle("Zoom ±15 %", True, key="transfer_zoom"),
        contrast=cols[3].toggle("Contrast ±20 %", True, key="transfer_contrast"),
    )
    if st.toggle("Preview augmented samples", False, key="transfer_preview",
                 help="Loads TensorFlow the first time (a few seconds)."):
        preview_ui(dataset, split, aug, seed)
    return aug


def preview_ui(dataset: ImageFolder, split: Split, aug: Augmentation, seed: int) -> None:
    """A training image per class and five augmented versions (kept until a setting changes)."""
    key = (dataset.fingerprint(), aug, seed)
    preview = st.session_state.get("transfer_preview_cache")
    if preview is None or preview[0] != key:
        try:
            with st.spinner("Augmenting…"):
                originals, variants = augmentation_samples(dataset, split, aug, seed)
            preview = (key, charts.preview_mosaic(originals, variants))
        except Exception as exc:  # noqa: BLE001 - e.g. a server folder changed under us
            preview = (key, None)
            st.error(plain(error_line("The preview", exc)), icon=":material/error:")
        st.session_state["transfer_preview_cache"] = preview
    if preview[1] is not None:
        st.image(preview[1], caption="Left: the image as the network sees it; right: five "
                 f"augmented versions ({aug.describe()}).")


# ---- 4. the model ---------------------------------------------------------------------------
def base_weights_ui() -> BaseWeights:
    """The base's weights: ImageNet when found (or downloaded), else an untrained base."""
    st.header("4. Inception v3 with a new head", divider="gray")
    weights = resolve_base_weights()
    if weights.pretrained:
        st.success(weights.message, icon=":material/check_circle:")
        if st.toggle("Use an untrained base instead (random weights, for comparison)", False,
                     key="transfer_untrained"):
            weights = resolve_base_weights(untrained=True)
    if not weights.pretrained:
        st.warning(weights.message, icon=":material/warning:")
        from cnnlab.vision import inception

        if inception.weights_status(include_top=False).source == "download" and st.button(
                "Download the ImageNet weights (about "
                f"{fact('inception_v3.weights_bytes').value['notop'] / 1e6:.0f} MB)", icon=":material/download:",
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
                st.error(plain(str(exc)), icon=":material/cloud_off:")
    return weights


MODES = {"fast": "Fast: cached bottleneck features", "full": "Full: augmented images"}


def config_ui(aug: Augmentation, seed: int, weights: BaseWeights) -> TransferConfig:
    """Mode, image size, epochs, batch, learning rate and phase 2: the run's config."""
    cols = st.columns([2, 1, 1, 1, 1])
    mode = cols[0].radio("Mode", list(MODES), format_func=MODES.get, key="transfer_mode",
                         help="Fast: every image goes through the frozen base once; the head "
                              "then trains on the stored 2,048 features. Full: every step "
                              "sends augmented images through the base.")
    sizes = list(IMAGE_SIZES)
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
                                    f"top {b} block{'s' if b > 1 else ''} "
                                    f"(after {TOP_BLOCK_BOUNDARY[b]})")
        ft_epochs = int(cols2[1].number_input("Phase 2 epochs", 1, 50, 2,
                                              key="transfer_ft_epochs", disabled=blocks == 0))
        ft_lr = cols2[2].select_slider("Phase 2 learning rate",
                                       [1e-6, 3e-6, 1e-5, 3e-5, 1e-4], value=1e-5,
                                       key="transfer_ft_lr", disabled=blocks == 0)
    return TransferConfig(mode=mode, image_size=int(image_size), epochs=epochs,
                          batch_size=int(batch_size), learning_rate=float(learning_rate),
                          augmentation=aug, fine_tune_blocks=int(blocks),
                          fine_tune_epochs=ft_epochs, fine_tune_learning_rate=float(ft_lr),
                          seed=seed)


def cost_ui(config: TransferConfig, split: Split) -> None:
    """Images this run sends through the base, and what the other mode would send."""
    st.caption(describe_base_passes(config, len(split.train), len(split.val), len(split.test)))


def parameters_ui(dataset: ImageFolder, run: TransferRun | None) -> None:
    """The head's trainable parameters; the frozen ones once a run has built the model."""
    k = dataset.num_classes
    counted = run.counted_parameters(dataset.class_names) if run is not None else None
    cols = st.columns(3)
    cols[0].metric("Trainable parameters (the head)", f"{head_parameters(k):,}",
                   help=f"{BOTTLENECK_WIDTH:,} x {k} weights + {k} biases: the only numbers "
                        "phase 1 changes.")
    if counted is not None:
        cols[1].metric("Frozen parameters", f"{counted.frozen:,}",
                       help="Counted by Keras on the built model: the Inception v3 base, plus "
                            "the head's feature standardisation (2 x 2,048 + 1, set once, not "
                            "trained).")
        cols[2].metric("Trainable share", f"{counted.trainable / counted.total:.3%}")
        if "phase 2" in run.parameters:
            st.caption(f"Phase 2 trains {run.parameters['phase 2'].trainable:,} parameters "
                       f"({run.parameters['phase 2'].frozen:,} stay frozen).")
    else:
        cols[1].metric("Frozen parameters", "—",
                       help="Keras counts them when training builds Inception v3; they appear "
                            "here and above the training curves.")


# ---- 5. training ----------------------------------------------------------------------------
def start_training(dataset: ImageFolder, split: Split, config: TransferConfig,
                   weights: BaseWeights, feature_cache: FeatureCache) -> None:
    try:
        st.session_state["transfer_run"] = start_run(
            manager, owner, dataset, split, config, weights, feature_cache,
            previous=st.session_state.get("transfer_run"))
    except (jobs.JobError, ConfigError) as exc:
        st.session_state["transfer_error"] = str(exc)
        return
    watch_own_run(st.session_state["transfer_run"].phase1)   # the URL names the new run
    st.session_state["transfer_live"] = True


def stop_training() -> None:
    current = st.session_state.get("transfer_run")
    if current is not None:
        current.stop()


def job_panel(job: TrainingJob, stage: str, stage_progress: float) -> None:
    snap = job.snapshot()
    st.subheader(snap.label)
    view = progress_view(snap, TRANSFER_WORDING, preparing=(stage_progress, stage))
    if not view.training:
        progress_ui(view)
        return
    if "trainable" in snap.info:
        st.caption(f"Keras counts {snap.info['trainable']:,} trainable and "
                   f"{snap.info['frozen']:,} frozen parameters "
                   f"({'the head on cached features' if snap.info.get('mode') == 'fast' else 'images through the network'}).")
    progress_ui(view)
    if snap.batches:
        present.chart(charts.live_figure(snap), width="stretch", key=f"transfer_live_{snap.id}")


def watched_ui(job: TrainingJob) -> None:
    """Someone else's run from a shared link, read-only: its progress, curves and test
    accuracy; no Stop, no download, no Use in Classify."""
    other = run_of(job.owner)
    if other is None or job.id not in {j.id for j in other.jobs()}:
        return
    st.header("Someone else's run", divider="gray")
    st.fragment(run_every=None if other.finished else 0.5)(watched_panel)(other)


def watched_panel(other: TransferRun) -> None:
    stage, progress = other.status()
    for job in other.jobs():
        job_panel(job, stage, progress)
    report = other.report()
    if report is not None:
        st.metric("Test accuracy", f"{report.accuracy:.1%}", help=f"{len(report.y_true)} test "
                  f"images; chance is {1 / len(report.class_names):.1%}")
        present.chart(charts.confusion_figure(report.confusion, report.class_names),
                      width="stretch", key="transfer_watched_confusion")


def live_panel() -> None:
    current: TransferRun | None = st.session_state.get("transfer_run")
    if current is None:
        st.caption("Press **Train** to start; the curves update twice a second.")
        return
    with one_line_errors("Showing the run"):
        current.advance(manager, owner)  # phase 2 starts once phase 1 is done
        stage, progress = current.status()
        for job in current.jobs():
            job_panel(job, stage, progress)
    if current.finished and st.session_state.get("transfer_live"):
        st.session_state["transfer_live"] = False
        st.rerun()  # the whole page: stop polling, show the results


def train_ui(run: TransferRun | None, start_args: tuple) -> None:
    """Train and Stop, the runner's slots, then the live panel (polled while a run is active)."""
    st.header("5. Train", divider="gray")
    active = run is not None and not run.finished
    buttons = st.columns([1, 1, 4])
    buttons[0].button("Train", key="transfer_train", type="primary",
                      icon=":material/play_arrow:", disabled=active, width="stretch",
                      on_click=start_training, args=start_args)
    buttons[1].button("Stop", key="transfer_stop", icon=":material/stop:", disabled=not active,
                      width="stretch", on_click=stop_training)
    slots = manager.counts()
    buttons[2].caption(f"Uses the Train page's job runner: {slots['running']} of "
                       f"{slots['max_concurrent']} training slots busy, {slots['queued']} queued.")
    if st.session_state.get("transfer_error"):
        st.error(plain(st.session_state.pop("transfer_error")), icon=":material/error:")
    if active:
        st.session_state["transfer_live"] = True
    st.fragment(run_every=0.5 if active else None)(live_panel)()


# ---- 6. results -----------------------------------------------------------------------------
def results_ui(run: TransferRun | None) -> TestReport:
    """Test accuracy against chance, and fast mode's measured speed-up. Stops the page until
    a run has finished with a test report."""
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
        st.caption(":material/warning: Trained on an **untrained base**: the features are "
                   "random projections of the pixels, not ImageNet knowledge.")
    cols = st.columns(3)
    cols[0].metric("Test accuracy", f"{report.accuracy:.1%}",
                   help=f"{int(np.trace(report.confusion))} of {len(report.y_true)} test "
                        "images right")
    cols[1].metric("Chance level", f"{1 / len(report.class_names):.1%}")
    cols[2].metric("Test images", len(report.y_true))
    speedup_ui(run)
    return report


def speedup_ui(run: TransferRun) -> None:
    speed = run.speedup()
    if speed is not None:
        st.markdown(f"**Fast mode:** the bottleneck features took {speed['features_s']:.1f} s, "
                    f"once{' (in an earlier run: cached)' if run.feature_cache_hit else ''}. An "
                    f"uncached epoch would send every training image through the frozen base "
                    f"again (≈{speed['uncached_epoch_s']:.2f} s at the speed of that pass); a "
                    f"cached epoch takes {speed['cached_epoch_s'] * 1000:.1f} ms (median "
                    f"training step x steps): **{speed['ratio']:,.0f}x faster**.")
        present.chart(charts.speedup_figure(speed["uncached_epoch_s"], speed["cached_epoch_s"]),
                      width="stretch", key="transfer_speedup")
    elif run.config.mode == "fast":
        st.caption("Fast mode's speed-up is measured from the second training step on (the "
                   "first traces the graph): train for more than one step to see it."
                   + (" The bottleneck features came from the cache of an earlier run."
                      if run.feature_cache_hit else ""))


def per_class_ui(report: TestReport) -> None:
    """The confusion matrix beside precision and recall per class."""
    left, right = st.columns(2)
    with left:
        st.markdown("**Confusion matrix** (rows: true class, columns: prediction)")
        present.chart(charts.confusion_figure(report.confusion, report.class_names),
                      width="stretch", key="transfer_confusion", download="the confusion matrix")
    with right:
        st.markdown("**Precision and recall per class**")
        present.chart(charts.precision_recall_figure(report.class_names, report.precision,
                                                     report.recall),
                      width="stretch", key="transfer_pr")
        st.dataframe(report.per_class_rows(), hide_index=True, width="stretch",
                     column_config={"precision": st.column_config.NumberColumn(format="percent"),
                                    "recall": st.column_config.NumberColumn(format="percent")})


def mistakes_ui(run: TransferRun, report: TestReport, shown: int = 24, per_row: int = 6) -> None:
    """The misclassified test images, the most confident mistakes first."""
    wrong = [m.index for m in report.mistakes(None)]
    st.markdown(f"**Misclassified test images:** {len(wrong)} of {len(report.y_true)}, the "
                "most confident mistakes first.")
    gallery = wrong[:shown]
    for start in range(0, len(gallery), per_row):
        columns = st.columns(per_row)
        for col, i in zip(columns, gallery[start:start + per_row], strict=False):
            col.image(run.pixels["test"][i], width="stretch", caption=(
                plain(f"{run.test_names[i]}: {report.class_names[report.y_true[i]]} → "
                      f"{report.class_names[report.y_pred[i]]}") + f" ({report.probs[i].max():.0%})"))


# ---- 7. keep it -----------------------------------------------------------------------------
def keep_ui(run: TransferRun) -> None:
    """Download the .keras file, or hand the model to the Classify page of this session."""
    st.header("7. Keep it", divider="gray")
    cols = st.columns(2)
    with cols[0]:
        # The model is serialised only when the button is clicked (Streamlit calls the
        # function then).
        st.download_button(
            "Download the model (.keras)",
            lambda: model_bytes(run.model),
            file_name="cnnlab-transfer.keras", mime="application/octet-stream",
            icon=":material/download:", key="transfer_download_model", on_click="ignore")
        st.caption(f"Input: {run.image_size}x{run.image_size} RGB scaled to [-1, 1] "
                   f"(Inception's preprocess_input); output: softmax over "
                   + plain(", ".join(run.class_names)) + ".")
    with cols[1]:
        st.button("Use in Classify", icon=":material/image_search:", key="transfer_use",
                  on_click=lambda: st.session_state.update({CLASSIFY_KEY: classify_handoff(run)}))
        if st.session_state.get(CLASSIFY_KEY, {}).get("model") is run.model:
            st.success("The Classify page now uses this model in this session.",
                       icon=":material/check_circle:")
            st.page_link("pages/classify.py", label="Open Classify",
                         icon=":material/image_search:")


# ---- the page -------------------------------------------------------------------------------
workspace = session_workspace()
st.session_state["transfer_workspace"] = str(workspace.path)  # shown to tests, not used
feature_cache = st.session_state.setdefault("transfer_feature_cache", FeatureCache())
run: TransferRun | None = st.session_state.get("transfer_run") or run_of(owner)
if run is not None and run.freed:   # let go after CNNLAB_RUN_TTL (issue 10)
    st.info("Your last run was cleared from the server's memory; train again to see results.",
            icon=":material/auto_delete:")
    run = None
st.session_state["transfer_run"] = run

watch_notice_ui(run_view)
if run_view.watching:
    with one_line_errors("Showing the run"):
        watched_ui(run_view.job)
views.opened("transfer", views.transfer_params(list(MODES), list(IMAGE_SIZES)))  # in the URL
dataset = source_ui(workspace)
with one_line_errors("Counting the classes"):
    classes_ui(dataset)
split, seed = split_ui(dataset)
aug = augmentation_ui(dataset, split, seed)
weights = base_weights_ui()
config = config_ui(aug, seed, weights)
cost_ui(config, split)
with one_line_errors("Counting the parameters"):
    parameters_ui(dataset, run)
train_ui(run, (dataset, split, config, weights, feature_cache))
report = results_ui(run)
with one_line_errors("Drawing the results per class"):
    per_class_ui(report)
with one_line_errors("Showing the misclassified images"):
    mistakes_ui(run, report)
with one_line_errors("Offering the model"):
    keep_ui(run)
