"""Transfer learning core: archives, validation, splits, the model, cached vs uncached training.

Data: `demo_archive`, random crops of real scikit-image photos (cat, coffee, rocket), small.
The base is an untrained Inception v3 (a random-weights file made by
`tests/inception_fixtures.py`) at 75x75, Inception v3's minimum, for speed.
"""

from __future__ import annotations

import gc
import io
import os
import stat
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnlab.errors import ConfigError
from cnnlab.transfer import archive
from cnnlab.transfer import image_folder as folders
from cnnlab.vision.images import sample_photo_bytes

SIZE = 75


def jpeg(color=(200, 30, 30), size=(40, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="JPEG")
    return out.getvalue()


def make_zip(entries: dict[str, bytes | None], symlinks: dict[str, str] | None = None) -> bytes:
    """name -> bytes (None: a folder entry); symlinks: name -> target."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            if data is None:
                zf.writestr(zipfile.ZipInfo(name.rstrip("/") + "/"), b"")
            else:
                zf.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return buffer.getvalue()


def three_each(extra: dict[str, bytes | None] | None = None) -> dict[str, bytes | None]:
    entries: dict[str, bytes | None] = {}
    for cls, color in (("cats", (200, 30, 30)), ("dogs", (30, 30, 200))):
        for i in range(3):
            entries[f"{cls}/{i}.jpg"] = jpeg(color)
    entries.update(extra or {})
    return entries


@pytest.fixture
def workspace(tmp_path):
    ws = archive.SessionWorkspace(parent=tmp_path)
    yield ws
    ws.cleanup()


def files_under(path: Path) -> list[str]:
    return sorted(p.relative_to(path).as_posix() for p in path.rglob("*"))


# ---------------------------------------------------------------------------- datasets

def test_demo_zip_counts_warning_and_nothing_skipped(workspace):
    ds = archive.load_zip(archive.demo_archive(per_class=8, size=80), "demo.zip", workspace)
    assert ds.class_names == ["cat", "coffee", "rocket"]
    assert ds.counts() == {"cat": 8, "coffee": 8, "rocket": 8}
    assert ds.skipped == []
    warnings = ds.warnings()
    assert len(warnings) == 3 and "only 8 images" in warnings[0] and "100" in warnings[0]
    assert all(p.is_relative_to(workspace.path) for p in ds.paths)


def test_unreadable_files_are_skipped_and_listed_nothing_else_lost(workspace):
    entries = three_each({
        "cats/broken.jpg": jpeg()[:200],             # truncated JPEG
        "cats/notes.txt": b"not a picture",
        "dogs/empty.png": b"",
        "dogs/sub/deeper.jpg": jpeg((30, 30, 200)),  # nested folders belong to their class
        "dogs/.DS_Store": b"\0\0",
        "__MACOSX/cats/._0.jpg": b"\0",
        "README.md": b"my dataset",
        "dogs/photo.png": sample_photo_bytes("coffee", "PNG"),
    })
    ds = archive.load_zip(make_zip(entries), "pets.zip", workspace)
    assert ds.counts() == {"cats": 3, "dogs": 5}
    skipped = {s.name: s.reason for s in ds.skipped}
    assert set(skipped) == {"cats/broken.jpg", "cats/notes.txt", "dogs/empty.png",
                            "dogs/.DS_Store", "__MACOSX/", "README.md"}
    assert "not an image" in skipped["cats/notes.txt"]
    assert "empty" in skipped["dogs/empty.png"]
    assert "truncated" in skipped["cats/broken.jpg"].lower()
    assert skipped["README.md"] == "not inside a class folder"
    # Every file of the archive is either used or listed.
    used = {ds.relative_name(i) for i in range(len(ds))}
    for name in entries:
        assert name in used or name in skipped or name.startswith("__MACOSX/")


def test_wrapper_folder_is_descended(workspace):
    entries = {f"pets/{k}": v for k, v in three_each().items()}
    ds = archive.load_zip(make_zip(entries), "pets.zip", workspace)
    assert ds.class_names == ["cats", "dogs"]
    assert ds.relative_name(0) == "pets/cats/0.jpg"


def bomb(tmp_limit: int) -> bytes:
    return make_zip(three_each({"cats/big.jpg": b"\0" * (tmp_limit + 1)}))


BAD_ARCHIVES = {
    "not a zip": (b"PK but not really a zip file", "not a zip archive"),
    "one class": (make_zip({f"cats/{i}.jpg": jpeg() for i in range(3)}),
                  "at least two class folders"),
    "empty folders": (make_zip({"cats/": None, "dogs/": None}), "the archive is empty"),
    "an empty class folder": (make_zip({**{f"cats/{i}.jpg": jpeg() for i in range(3)},
                                        "dogs/": None}), "at least two class folders"),
    "non-images": (make_zip({"cats/a.txt": b"x", "dogs/b.txt": b"y"}), "no readable images"),
    "a class of non-images": (make_zip(three_each({"birds/a.txt": b"x"})),
                              "'birds' holds no readable images"),
    "too few images": (make_zip({"cats/0.jpg": jpeg(), "dogs/0.jpg": jpeg(),
                                 "dogs/1.jpg": jpeg(), "dogs/2.jpg": jpeg()}), "fewer than 3"),
    "path traversal": (make_zip(three_each({"../x.jpg": jpeg()})), "points outside"),
    "deep traversal": (make_zip(three_each({"cats/../../x.jpg": jpeg()})), "points outside"),
    "absolute path": (make_zip(three_each({"/tmp/x.jpg": jpeg()})), "absolute path"),
    "windows path": (make_zip(three_each({"C:\\x.jpg": jpeg()})), "absolute path"),
    "symlink": (make_zip(three_each(), symlinks={"cats/link.jpg": "/etc/passwd"}),
                "symbolic link"),
}


ARCHIVE_REFUSALS = {"not a zip", "empty folders", "path traversal", "deep traversal",
                    "absolute path", "windows path", "symlink"}


@pytest.mark.parametrize("case", list(BAD_ARCHIVES))
def test_bad_archive_one_line_message_nothing_written(case, tmp_path, workspace):
    data, expected = BAD_ARCHIVES[case]
    with pytest.raises(folders.ImageFolderError) as err:
        archive.load_zip(data, "upload.zip", workspace)
    # The zip itself refused (ArchiveError), or what it holds is not a usable dataset.
    assert isinstance(err.value, archive.ArchiveError) == (case in ARCHIVE_REFUSALS)
    message = str(err.value)
    assert expected in message
    assert "\n" not in message and message.startswith(("upload.zip", "Archive entry"))
    # Nothing outside the workspace, and the refused upload left nothing inside it either.
    assert files_under(tmp_path) == [workspace.path.name]
    assert not (tmp_path.parent / "x.jpg").exists()


def test_zip_bomb_is_refused_before_unpacking(tmp_path, workspace, monkeypatch):
    monkeypatch.setattr(archive, "MAX_UNCOMPRESSED_BYTES", 1_000_000)
    data = bomb(1_000_000)
    assert len(data) < 20_000  # a tiny archive declaring a huge size
    with pytest.raises(archive.ArchiveError, match="zip bomb"):
        archive.load_zip(data, "bomb.zip", workspace)
    assert files_under(tmp_path) == [workspace.path.name]


def test_zip_bomb_lying_about_its_size_is_refused(tmp_path, workspace, monkeypatch):
    monkeypatch.setattr(archive, "MAX_UNCOMPRESSED_BYTES", 30_000)
    data = bomb(50_000)
    # Declare 10 bytes instead of 50,001 (local header and central directory alike).
    liar = data.replace((50_001).to_bytes(4, "little"), (10).to_bytes(4, "little"))
    with zipfile.ZipFile(io.BytesIO(liar)) as zf:
        assert zf.getinfo("cats/big.jpg").file_size == 10
    with pytest.raises(archive.ArchiveError, match="liar.zip"):
        archive.load_zip(liar, "liar.zip", workspace)
    assert files_under(tmp_path) == [workspace.path.name]


def test_workspace_removed_on_cleanup_and_on_garbage_collection(tmp_path):
    ws = archive.SessionWorkspace(parent=tmp_path)
    archive.load_zip(archive.demo_archive(per_class=3, size=64), "demo.zip", ws)
    assert any(ws.path.rglob("*.jpg"))
    ws.cleanup()
    assert not ws.path.exists() and not ws.alive
    ws2 = archive.SessionWorkspace(parent=tmp_path)
    path = ws2.path
    del ws2
    gc.collect()
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_server_directory_read_in_place_links_not_followed(tmp_path, monkeypatch):
    root = tmp_path / "flowers"
    for cls in ("roses", "tulips"):
        (root / cls).mkdir(parents=True)
        for i in range(3):
            (root / cls / f"{i}.jpg").write_bytes(jpeg())
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "s.jpg").write_bytes(jpeg())
    os.symlink(outside, root / "roses" / "linked")
    os.symlink(outside / "s.jpg", root / "tulips" / "s.jpg")
    monkeypatch.setenv("CNNLAB_TRANSFER_DATA", f"{root}{os.pathsep}{tmp_path / 'missing'}")
    assert folders.server_directories() == [root, tmp_path / "missing"]
    ds = folders.load_directory(root)
    assert ds.counts() == {"roses": 3, "tulips": 3}
    assert {s.name: s.reason for s in ds.skipped} == {
        "roses/linked/": "symbolic link, not followed",
        "tulips/s.jpg": "symbolic link, not followed",
    }
    with pytest.raises(folders.ImageFolderError, match="not a directory"):
        folders.load_directory(tmp_path / "missing")


def test_split_by_fraction_is_seeded_disjoint_and_keeps_proportions():
    labels = np.array([0] * 100 + [1] * 40 + [2] * 20)
    split = folders.split_by_fraction(labels, 0.15, 0.15, seed=7)
    parts = [split.train, split.val, split.test]
    assert sorted(np.concatenate(parts).tolist()) == list(range(160))
    rows = split.sizes(labels, ["a", "b", "c"])
    assert rows[0] == {"class": "a", "train": 70, "validation": 15, "test": 15}
    assert rows[1] == {"class": "b", "train": 28, "validation": 6, "test": 6}
    assert rows[2] == {"class": "c", "train": 14, "validation": 3, "test": 3}
    assert rows[3] == {"class": "total", "train": 112, "validation": 24, "test": 24}
    again = folders.split_by_fraction(labels, 0.15, 0.15, seed=7)
    other = folders.split_by_fraction(labels, 0.15, 0.15, seed=8)
    assert np.array_equal(again.test, split.test)
    assert not np.array_equal(other.test, split.test)
    with pytest.raises(ConfigError):
        folders.split_by_fraction(labels, 0.6, 0.5)


def test_pixels_are_the_classify_preprocessing(workspace):
    from cnnlab.vision.images import decode_image, inception_input

    ds = archive.load_zip(archive.demo_archive(per_class=3, size=90), "demo.zip", workspace)
    pixels = folders.load_pixels(ds.paths[:2], SIZE)
    assert pixels.shape == (2, SIZE, SIZE, 3) and pixels.dtype == np.uint8
    expected = inception_input(decode_image(ds.paths[1].read_bytes(), "x.jpg"), SIZE)
    assert np.array_equal(folders.to_model_input(pixels)[1], expected)


def test_split_images_decode_stop_and_release(workspace):
    ds = archive.load_zip(archive.demo_archive(per_class=5, size=80), "demo.zip", workspace)
    split = folders.split_by_fraction(ds.labels, 0.2, 0.2, seed=1)
    images = folders.SplitImages(ds, split, SIZE)
    assert len(images) == len(ds) == 15
    assert images.test_names == [ds.relative_name(i) for i in split.test]
    assert not images.decode(lambda: True) and images.pixels == {}
    calls = []
    assert images.decode(lambda: False, lambda done, total: calls.append((done, total)))
    assert calls == [(0, 15), (9, 15), (12, 15)]  # before each part: 9 train, 3 val, 3 test
    assert np.array_equal(images.pixels["val"],
                          folders.load_pixels([ds.paths[i] for i in split.val], SIZE))
    images.release_training()
    assert set(images.pixels) == {"test"}


def test_fast_mode_speedup_from_timings():
    from cnnlab.transfer.cost import fast_mode_speedup

    # 2 s for 100 images through the base; 70 training images in batches of 32: 3 steps.
    speed = fast_mode_speedup(2.0, 100, [5.0, 0.01, 0.03, 0.02], n_train=70, batch_size=32)
    assert speed == pytest.approx({"uncached_epoch_s": 1.4, "cached_epoch_s": 0.06,
                                   "ratio": 1.4 / 0.06, "features_s": 2.0})
    assert fast_mode_speedup(2.0, 100, [5.0], 70, 32) is None  # the first step traces


def test_report_matches_sklearn():
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_score, recall_score

    from cnnlab.train.metrics import test_report

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 50)
    probs = rng.dirichlet(np.ones(3), 50)
    probs[y == 2] = [0.1, 0.8, 0.1]  # class 2 never predicted: precision 0 by convention
    report = test_report(probs, y, ["a", "b", "c"])
    pred = probs.argmax(1)
    assert report.accuracy == pytest.approx(accuracy_score(y, pred))
    assert np.array_equal(report.confusion, confusion_matrix(y, pred, labels=[0, 1, 2]))
    assert np.allclose(report.precision, precision_score(y, pred, average=None, zero_division=0))
    assert np.allclose(report.recall, recall_score(y, pred, average=None, zero_division=0))
    wrong = np.array([m.index for m in report.mistakes(None)])
    assert set(wrong.tolist()) == set(np.flatnonzero(pred != y).tolist())
    confidence = probs[wrong, pred[wrong]]
    assert np.all(np.diff(confidence) <= 0)  # most confident mistakes first


# ---------------------------------------------------------------------------- Keras

def test_augmentation_toggles_and_preview():
    from cnnlab.transfer.config import NO_AUGMENTATION, Augmentation
    from cnnlab.transfer.model import augment_preview

    ds_pixels = np.stack([np.asarray(Image.open(io.BytesIO(sample_photo_bytes(name)))
                                     .resize((SIZE, SIZE))) for name in ("chelsea", "rocket")])
    same = augment_preview(ds_pixels, NO_AUGMENTATION, variants=3)
    assert same.shape == (2, 3, SIZE, SIZE, 3)
    assert all(np.array_equal(same[i, v], ds_pixels[i]) for i in range(2) for v in range(3))
    flips = augment_preview(ds_pixels, Augmentation(flip=True, rotation=False, zoom=False,
                                                    contrast=False), variants=8, seed=3)
    for i in range(2):
        for v in range(8):
            assert (np.array_equal(flips[i, v], ds_pixels[i])
                    or np.array_equal(flips[i, v], ds_pixels[i, :, ::-1]))
    assert any(np.array_equal(flips[0, v], ds_pixels[0, :, ::-1]) for v in range(8))
    for toggle in ("rotation", "zoom", "contrast"):
        aug = Augmentation(**{k: k == toggle for k in ("flip", "rotation", "zoom", "contrast")})
        out = augment_preview(ds_pixels, aug, variants=2, seed=1)
        assert not np.array_equal(out[0, 0], ds_pixels[0]), toggle


def test_base_weights_sourcing(monkeypatch, tmp_path, inception_notop_weights):
    from cnnlab.transfer.model import resolve_base_weights

    monkeypatch.delenv("CNNLAB_INCEPTION_WEIGHTS_NOTOP", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # an empty Keras cache
    import keras.src.backend.config as kconfig
    monkeypatch.setattr(kconfig, "keras_home", lambda: str(tmp_path))
    offline = resolve_base_weights()
    assert offline.weights is None and not offline.pretrained
    assert offline.message.startswith("Untrained base")
    monkeypatch.setenv("CNNLAB_INCEPTION_WEIGHTS_NOTOP", str(inception_notop_weights))
    found = resolve_base_weights()
    assert found.pretrained and found.weights == str(inception_notop_weights)
    assert resolve_base_weights(untrained=True).weights is None


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    ws = archive.SessionWorkspace(parent=tmp_path_factory.mktemp("transfer"))
    ds = archive.load_zip(archive.demo_archive(per_class=10, size=80, seed=1), "demo.zip", ws)
    yield ds, folders.split_by_fraction(ds.labels, 0.2, 0.2, seed=0)
    ws.cleanup()


def run_to_end(run, manager, owner="test", timeout=240):
    run.submit(manager, owner)
    assert run.phase1.wait(timeout)
    return run


def weights_of(model):
    return [np.array(w) for w in model.get_weights()]


@pytest.mark.slow
def test_frozen_base_cached_equals_uncached_phase2_export(dataset, inception_notop_weights,
                                                          tmp_path):
    """Fast mode (cached bottlenecks) and full mode (images through the frozen base) end with
    the same head on the same data and seed; the base is untouched; phase 2 changes only the
    top block; the exported .keras file predicts what the trained model predicts."""
    import keras

    from cnnlab.train.export import model_bytes
    from cnnlab.train.manager import JobManager
    from cnnlab.train.metrics import predict_probs
    from cnnlab.transfer.config import NO_AUGMENTATION, Augmentation, TransferConfig
    from cnnlab.transfer.model import BaseWeights, head_parameters
    from cnnlab.transfer.run import TransferRun

    ds, split = dataset
    weights = BaseWeights(str(inception_notop_weights), False, "random test weights")
    manager = JobManager(max_concurrent=1)
    common = dict(image_size=SIZE, epochs=2, batch_size=8, learning_rate=1e-2, seed=5)
    # Streamlit calls keras.backend.clear_session() after every script run, from its own
    # thread; the run (the shared job runner guards it) must survive that while it builds
    # Inception v3 in the job's thread.
    done = threading.Event()

    def streamlit_reruns():
        while not done.is_set():
            keras.backend.clear_session(free_memory=False)
            time.sleep(0.005)

    rerunner = threading.Thread(target=streamlit_reruns, daemon=True)
    rerunner.start()
    # Augmentation is part of the fast run's model but cannot act on cached features.
    fast = run_to_end(TransferRun(ds, split, TransferConfig(
        mode="fast", augmentation=Augmentation(), fine_tune_blocks=1, fine_tune_epochs=1,
        **common), weights), manager, "a")
    done.set()
    rerunner.join()
    assert fast.phase1.state == "done", fast.phase1.error
    full = run_to_end(TransferRun(ds, split, TransferConfig(
        mode="full", augmentation=NO_AUGMENTATION, **common), weights), manager, "b")
    assert full.phase1.state == "done", full.phase1.error
    assert full.finished and not fast.finished  # the fast run still has its phase 2 to go

    # The curves: one entry per epoch, with validation metrics.
    for run in (fast, full):
        log = run.phase1.snapshot().epochs_log
        assert [e["epoch"] for e in log] == [1, 2] and "val_accuracy" in log[-1]

    # Only the head changed: the base holds exactly the weights file's values.
    reference = keras.applications.InceptionV3(
        include_top=False, weights=str(inception_notop_weights), input_shape=(SIZE, SIZE, 3),
        pooling="avg")
    for base in (fast.base, full.base):
        for got, want in zip(weights_of(base), weights_of(reference), strict=True):
            assert np.array_equal(got, want)
    head_fast = weights_of(fast.model.get_layer("head"))
    head_full = weights_of(full.model.get_layer("head"))
    initial = np.asarray(keras.initializers.GlorotUniform(seed=5)((2048, 3)))
    assert np.abs(head_fast[0] - initial).max() > 1e-3
    # Cached and uncached training: the same head within float tolerance.
    for a, b in zip(head_fast, head_full, strict=True):
        np.testing.assert_allclose(a, b, atol=2e-4, rtol=1e-3)
    np.testing.assert_allclose(fast.phase1.snapshot().epochs_log[-1]["loss"],
                               full.phase1.snapshot().epochs_log[-1]["loss"], rtol=1e-3)

    # Trainable vs frozen, as Keras counts them.
    counts = fast.parameters["phase 1"]
    assert counts.trainable == head_parameters(3) == 2048 * 3 + 3
    assert counts.total == fast.model.count_params()
    assert counts.frozen == reference.count_params() + 2 * 2048 + 1  # + standardisation

    # Test metrics, and the full model agrees with the cached-feature path they came from.
    report = fast.report()
    assert report.confusion.sum() == len(split.test)
    assert report.accuracy == fast.phase1.result["test_accuracy"]
    x_test = folders.to_model_input(fast.pixels["test"])
    np.testing.assert_allclose(predict_probs(fast.model, x_test), report.probs, atol=1e-4)
    assert fast.speedup()["ratio"] > 1

    # Phase 2: only the top inception block (and the head) move.
    before = {layer.name: weights_of(layer) for layer in fast.base.layers if layer.weights}
    assert fast.advance(manager, "a") and not fast.advance(manager, "a")
    assert fast.phase2.wait(240) and fast.phase2.state == "done", fast.phase2.error
    assert fast.finished and fast.report() is fast.phase2.result["report"]
    names = [layer.name for layer in fast.base.layers]
    changed = {name for name, ws in before.items()
               if not all(np.array_equal(a, b) for a, b in
                          zip(ws, weights_of(fast.base.get_layer(name)), strict=True))}
    assert changed, "phase 2 trained nothing"
    assert min(names.index(name) for name in changed) > names.index("mixed9")
    assert fast.parameters["phase 2"].trainable > counts.trainable

    # Export: the .keras file (augmentation layers included) predicts the same.
    data = model_bytes(fast.model)
    assert data[:2] == b"PK"  # a .keras file is a zip
    (tmp_path / "model.keras").write_bytes(data)
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert loaded.get_layer("augmentation") is not None
    np.testing.assert_allclose(predict_probs(loaded, x_test), predict_probs(fast.model, x_test),
                               atol=1e-5)
    manager.shutdown()


def test_stop_before_training_ends_stopped(dataset, inception_notop_weights):
    from cnnlab.train.manager import JobManager
    from cnnlab.transfer.config import TransferConfig
    from cnnlab.transfer.model import BaseWeights
    from cnnlab.transfer.run import TransferRun

    ds, split = dataset
    manager = JobManager(max_concurrent=1)
    run = TransferRun(ds, split, TransferConfig(image_size=SIZE, fine_tune_blocks=2),
                      BaseWeights(str(inception_notop_weights), False, "test"))
    run.submit(manager, "s")
    run.stop()
    assert run.phase1.wait(120)
    assert run.phase1.state == "stopped" and run.finished
    assert not run.advance(manager, "s")  # no phase 2 after a stop
    manager.shutdown()


def test_base_passes_fast_vs_full():
    from cnnlab.transfer.config import TransferConfig
    from cnnlab.transfer.cost import base_passes

    fast = base_passes(TransferConfig(mode="fast", epochs=10), 70, 15, 15)
    full = base_passes(TransferConfig(mode="full", epochs=10), 70, 15, 15)
    assert fast == {"features": 100, "phase 1": 0, "phase 2": 0, "total": 100}
    assert full == {"features": 100, "phase 1": 850, "phase 2": 0, "total": 950}
    tuned = base_passes(TransferConfig(mode="fast", epochs=10, fine_tune_blocks=2,
                                       fine_tune_epochs=2), 70, 15, 15)
    assert tuned["phase 2"] == 2 * 85 + 15 and tuned["total"] == 100 + 185


def test_config_validation_messages():
    from cnnlab.transfer.config import TransferConfig

    assert TransferConfig().validate() is None  # cnnlab's one convention (cnnlab.errors)
    with pytest.raises(ConfigError, match="75..299"):
        TransferConfig(image_size=64).validate()
    with pytest.raises(ConfigError, match="mode"):
        TransferConfig(mode="slow").validate()
    with pytest.raises(ConfigError, match="fine-tune blocks"):
        TransferConfig(fine_tune_blocks=3).validate()
    with pytest.raises(ConfigError, match="got 0 and 2"):
        TransferConfig(epochs=0).validate()


def test_other_mode_and_its_cost_in_one_sentence():
    from cnnlab.transfer.config import Augmentation, TransferConfig
    from cnnlab.transfer.cost import base_passes, describe_base_passes

    fast = TransferConfig(mode="fast", epochs=10, augmentation=Augmentation(zoom=False))
    assert fast.other_mode == TransferConfig(mode="full", epochs=10,
                                             augmentation=Augmentation(zoom=False))
    assert fast.other_mode.other_mode == fast
    assert describe_base_passes(fast, 70, 15, 15) == (
        "This run sends **100 images** through Inception v3: every image once for its "
        "bottleneck features (100), then the head trains on the stored features: one "
        "2,048 x k matrix product per image. Full mode would send 950.")
    full = TransferConfig(mode="full", epochs=10, fine_tune_blocks=2, fine_tune_epochs=2)
    assert base_passes(full, 70, 15, 15)["total"] == 100 + 850 + 185
    assert describe_base_passes(full, 70, 15, 15) == (
        "This run sends **1,135 images** through Inception v3: every image once for its "
        "bottleneck features (100), then 10 epochs x 85 training and validation images (850), "
        "plus phase 2 (185). Fast mode would send 285.")


class FakeManager:
    """Records what a run asks of the job runner; refuses submissions when told to."""

    def __init__(self, refuse: bool = False) -> None:
        self.refuse, self.submitted, self.forgotten = refuse, [], []

    def submit(self, owner, job):
        from cnnlab.train.jobs import JobError

        if self.refuse:
            raise JobError("all slots busy")
        self.submitted.append((owner, job.id))
        return job

    def forget(self, owner, job_id):
        self.forgotten.append((owner, job_id))


def test_start_run_replaces_a_finished_run_and_is_found_after_a_refresh(dataset):
    from cnnlab.train.jobs import JobError
    from cnnlab.transfer import registry
    from cnnlab.transfer.config import TransferConfig
    from cnnlab.transfer.features import FeatureCache
    from cnnlab.transfer.model import BaseWeights

    ds, split = dataset
    weights = BaseWeights(None, False, "untrained")
    manager, cache = FakeManager(), FeatureCache()
    first = registry.start_run(manager, "owner-a", ds, split, TransferConfig(image_size=SIZE),
                               weights, cache)
    assert manager.submitted == [("owner-a", first.phase1.id)]
    assert registry.run_of("owner-a") is first and registry.run_of("owner-b") is None
    assert not first.finished and first.counted_parameters(ds.class_names) is None
    # An unfinished previous run is left alone; a finished one is forgotten by the runner.
    second = registry.start_run(manager, "owner-a", ds, split, TransferConfig(image_size=SIZE),
                                weights, cache, previous=first)
    assert manager.forgotten == [] and registry.run_of("owner-a") is second

    class FinishedRun:
        finished = True

        def forget(self, manager, owner):
            manager.forget(owner, "job-finished")

    third = registry.start_run(manager, "owner-a", ds, split, TransferConfig(image_size=SIZE),
                               weights, cache, previous=FinishedRun())
    assert manager.forgotten == [("owner-a", "job-finished")]
    first.forget(manager, "owner-a")
    assert manager.forgotten[-1] == ("owner-a", first.phase1.id)
    # Refused by the runner or by its config: nothing changes.
    with pytest.raises(JobError):
        registry.start_run(FakeManager(refuse=True), "owner-a", ds, split,
                           TransferConfig(image_size=SIZE), weights, cache, previous=third)
    with pytest.raises(ConfigError):
        registry.start_run(manager, "owner-a", ds, split, TransferConfig(image_size=64),
                           weights, cache, previous=third)
    assert registry.run_of("owner-a") is third


def test_classify_handoff_is_the_classify_pages_custom_model(dataset):
    from cnnlab.transfer.config import TransferConfig
    from cnnlab.transfer.handoff import classify_handoff
    from cnnlab.transfer.model import BaseWeights
    from cnnlab.transfer.run import TransferRun
    from cnnlab.vision.custom_model import CustomModel

    ds, split = dataset
    run = TransferRun(ds, split, TransferConfig(image_size=SIZE),
                      BaseWeights(None, False, "untrained"))
    handoff = classify_handoff(run)
    assert set(handoff) == set(CustomModel.__annotations__)
    assert handoff["labels"] == ["cat", "coffee", "rocket"] and handoff["image_size"] == SIZE
    assert handoff["test_accuracy"] is None and handoff["pretrained_base"] is False


def test_augmentation_samples_are_the_first_training_image_of_each_class(dataset):
    from cnnlab.transfer.config import NO_AUGMENTATION
    from cnnlab.transfer.model import augmentation_samples

    ds, split = dataset
    originals, variants = augmentation_samples(ds, split, NO_AUGMENTATION, seed=0, size=64)
    assert originals.shape == (3, 64, 64, 3) and variants.shape == (3, 5, 64, 64, 3)
    firsts = [next(i for i in split.train if ds.labels[i] == c) for c in range(3)]
    assert np.array_equal(originals, folders.load_pixels([ds.paths[i] for i in firsts], 64))
    assert all(np.array_equal(variants[c, v], originals[c]) for c in range(3) for v in range(5))
