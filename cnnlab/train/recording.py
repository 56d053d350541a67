"""Recorded training runs: written once by `python -m cnnlab train --record FILE` (or the
Train page's download), replayed on the Train page without TensorFlow.

A recording is a NumPy `.npz` archive (a zip of `.npy` arrays, read with
`allow_pickle=False`), format "cnnlab-recording", version `FORMAT_VERSION` (1):

    meta             uint8 (m,)        UTF-8 JSON object, below
    batch_epoch      int16 (n,)        every training batch, in order: its epoch (from 1)
    batch_index      int32 (n,)        its place in the epoch (from 1)
    batch_loss       float32 (n,)      the loss of that batch alone
    batch_mean_loss  float32 (n,)      Keras's running mean over the epoch so far
    batch_accuracy   float32 (n,)      Keras's running-mean accuracy over the epoch so far
    batch_time       float32 (n,)      seconds since training began, at the batch's end
    snapshot_epoch   int16 (s,)        0 (before training), then each finished epoch
    filters          float16 (s, f, h, w)  at each snapshot: the first conv layer's kernels
                                       (channel mean); for a dense net, the first hidden
                                       units' weights as 28x28 images (`meta.filters_kind`)
    val_confusion    int32 (s, c, c)   at each snapshot: counts[true, predicted] on the
                                       validation images
    sample_images    uint8 (k, 28, 28) a few test images (the first of each class)
    sample_labels    int16 (k,)
    sample_probs     float16 (s, k, c) at each snapshot: the network's probabilities for them
    test_confusion   int32 (c, c)      after training, on the whole test set

`meta` holds: `format`, `format_version`, `created` (ISO 8601, UTC), `command` (the CLI
line, or null), `label`, `config` (`TrainConfig.as_dict()`), `dataset` (`name`, `source`,
`source_kind`, `class_names`, `train_images`, `validation_images`, `test_images`),
`machine` (`platform`, `cpu`, `cores`, `load_average`, `python`, `numpy`, `tensorflow`,
`keras`), `run` (`state`, `epochs_completed`, `steps_per_epoch`, `batch_size`, `params`,
`images_per_second`, `train_seconds`, `test_accuracy`, `test_loss`, `test_images`),
`filters_kind` ("conv1" | "dense1") and `epochs_log` (Keras's per-epoch logs: `epoch`,
`loss`, `accuracy`, `val_loss`, `val_accuracy`, `partial`).

Reading checks everything before use (`RecordingError`, one line): the file size
(`MAX_FILE_BYTES`), each member's declared size (a zip bomb is refused before it is
inflated), names, dtypes, shapes and the meta's types. Nothing here imports TensorFlow. The
per-epoch pictures are taken while training by cnnlab.train.snapshots.
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import math
import os
import platform
import re
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.train.jobs import JobState
from cnnlab.train.meter import BatchPoint
from cnnlab.train.snapshots import EpochSnapshots

FORMAT = "cnnlab-recording"
FORMAT_VERSION = 1
SHIPPED_DIR = Path(__file__).resolve().parents[1] / "data" / "recordings"
MAX_FILE_BYTES = 8 * 2**20          # a recording is a few hundred kB; refuse anything big
MAX_MEMBER_BYTES = 16 * 2**20       # one array, uncompressed
MAX_TOTAL_BYTES = 48 * 2**20        # all arrays, uncompressed
MAX_BATCHES = 200_000
MAX_SNAPSHOTS = 201                 # epoch 0 and at most 200 epochs (TrainConfig's limit)
MAX_CLASSES = 100

# name -> (dtype kinds allowed, number of dimensions)
_ARRAYS = {
    "meta": ("u", 1), "batch_epoch": ("iu", 1), "batch_index": ("iu", 1),
    "batch_loss": ("f", 1), "batch_mean_loss": ("f", 1), "batch_accuracy": ("f", 1),
    "batch_time": ("f", 1), "snapshot_epoch": ("iu", 1), "filters": ("f", 4),
    "val_confusion": ("iu", 3), "sample_images": ("u", 3), "sample_labels": ("iu", 1),
    "sample_probs": ("f", 3), "test_confusion": ("iu", 2),
}
_BATCH_KEYS = ("batch_epoch", "batch_index", "batch_loss", "batch_mean_loss",
               "batch_accuracy", "batch_time")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class RecordingError(ValueError):
    """A file that is not a usable recording (message is one line)."""


@dataclass(frozen=True, eq=False)
class Recording:
    meta: dict
    arrays: dict[str, np.ndarray]

    # ---- what a listing shows ---------------------------------------------------------------
    @property
    def dataset(self) -> str:
        return str(self.meta["dataset"]["name"])

    @property
    def class_names(self) -> list[str]:
        return [str(c) for c in self.meta["dataset"]["class_names"]]

    @property
    def epochs(self) -> int:
        return int(self.meta["run"]["epochs_completed"])

    @property
    def test_accuracy(self) -> float | None:
        value = self.meta["run"].get("test_accuracy")
        return None if value is None else float(value)

    @property
    def source(self) -> str:
        return str(self.meta["dataset"]["source"])

    @property
    def command(self) -> str | None:
        return self.meta.get("command")

    @property
    def label(self) -> str:
        return str(self.meta.get("label", ""))

    def summary(self, name: str) -> dict:
        """One line of `python -m cnnlab recordings --json`."""
        d, run = self.meta["dataset"], self.meta["run"]
        return {"name": name, "dataset": self.dataset, "label": self.label,
                "epochs": self.epochs, "test_accuracy": self.test_accuracy,
                "test_images": d.get("test_images"), "train_images": d.get("train_images"),
                "validation_images": d.get("validation_images"), "source": self.source,
                "command": self.command, "machine": self.meta.get("machine", {}),
                "created": self.meta.get("created"), "train_seconds": run.get("train_seconds")}


# ---- writing ------------------------------------------------------------------------------------
def machine() -> dict:
    """Where a run trained: enough to judge its speed."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 0
    versions = {name: getattr(sys.modules.get(name), "__version__", None)
                for name in ("tensorflow", "keras")}
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {"platform": platform.platform(), "cpu": cpu, "cores": cores,
            "load_average": None if load is None else round(load, 2),
            "python": platform.python_version(), "numpy": np.__version__, **versions}


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def recording_from_job(job, test_confusion: np.ndarray | None = None, *,
                       command: str | None = None) -> Recording:
    """The recording of a finished job (trained with `add_snapshots`). `test_confusion`:
    the test set's confusion matrix (cnnlab.train.metrics.TestReport.confusion)."""
    snap = job.snapshot()
    context = job.setup.context if job.setup is not None else {}
    snaps: EpochSnapshots | None = context.get("snapshots")
    dataset = context.get("dataset")
    if snaps is None or dataset is None or not snaps.epochs:
        raise RecordingError("this run kept no per-epoch snapshots to record")
    classes = list(dataset.class_names)
    points = snap.batches
    if any(p.span > 1 for p in points):
        raise RecordingError("this run is too long to record batch by batch")
    info, result = snap.info, snap.result
    arrays = {
        "batch_epoch": np.array([p.epoch for p in points], np.int16),
        "batch_index": np.array([p.batch for p in points], np.int32),
        "batch_loss": np.array([p.loss for p in points], np.float32),
        "batch_mean_loss": np.array([p.mean_loss for p in points], np.float32),
        "batch_accuracy": np.array([p.metrics.get("accuracy", np.nan) for p in points],
                                   np.float32),
        "batch_time": np.array([p.time_s for p in points], np.float32),
        "snapshot_epoch": np.array(snaps.epochs, np.int16),
        "filters": np.stack(snaps.filters).astype(np.float16),
        "val_confusion": np.stack(snaps.val_confusion).astype(np.int32),
        "sample_images": snaps.sample_images,
        "sample_labels": snaps.sample_labels.astype(np.int16),
        "sample_probs": np.stack(snaps.sample_probs).astype(np.float16),
        "test_confusion": np.asarray(test_confusion if test_confusion is not None
                                     else np.zeros((len(classes),) * 2), np.int32),
    }
    meta = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "command": command, "label": snap.label, "config": dict(snap.config),
        "dataset": {"name": dataset.name, "source": dataset.source,
                    "source_kind": dataset.source_kind, "class_names": classes,
                    "train_images": info.get("train_images"),
                    "validation_images": info.get("validation_images"),
                    "test_images": info.get("test_images", dataset.n_test)},
        "machine": machine(),
        "run": {"state": str(snap.state), "epochs_completed": len(snap.epochs_log),
                "steps_per_epoch": snap.steps_per_epoch,
                "batch_size": snap.config.get("batch_size"), "params": info.get("params"),
                "images_per_second": round(snap.images_per_second or 0.0, 1),
                "train_seconds": round(snap.elapsed_s, 2),
                "test_accuracy": result.get("test_accuracy"),
                "test_loss": result.get("test_loss"),
                "test_images": result.get("test_images", dataset.n_test)},
        "filters_kind": snaps.filters_kind,
        "epochs_log": [{k: _finite(v) for k, v in e.items()} for e in snap.epochs_log],
    }
    return Recording(meta, arrays)


def recording_bytes(recording: Recording) -> bytes:
    """The recording as a compressed .npz file."""
    meta = np.frombuffer(json.dumps(recording.meta).encode(), np.uint8)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, meta=meta, **recording.arrays)
    return buffer.getvalue()


# ---- reading ------------------------------------------------------------------------------------
def read_recording(data: bytes) -> Recording:
    """Parse and check a recording; RecordingError (one line) for anything else."""
    if len(data) > MAX_FILE_BYTES:
        raise RecordingError(f"the file is {len(data) / 2**20:.1f} MB; a recording is at most "
                             f"{MAX_FILE_BYTES // 2**20} MB")
    try:
        arrays = _read_arrays(data)
        meta = _check(arrays)
    except RecordingError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever a hostile file triggers: one line
        raise RecordingError(f"not a cnnlab recording ({type(exc).__name__})") from None
    return Recording(meta, arrays)


def load_recording(path: str | Path) -> Recording:
    path = Path(path)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise RecordingError(f"{path.name}: larger than {MAX_FILE_BYTES // 2**20} MB")
        return read_recording(path.read_bytes())
    except OSError as exc:
        raise RecordingError(f"{path.name}: {exc.strerror or exc}") from None


def _read_arrays(data: bytes) -> dict[str, np.ndarray]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise RecordingError("not a cnnlab recording (not an .npz archive)") from None
    infos = archive.infolist()
    names = [i.filename for i in infos]
    unknown = [n for n in names if n.removesuffix(".npy") not in _ARRAYS or not n.endswith(".npy")]
    missing = [k for k in _ARRAYS if f"{k}.npy" not in names]
    if unknown or missing or len(set(names)) != len(names):
        raise RecordingError("not a cnnlab recording (unexpected or missing arrays: "
                             f"{', '.join((unknown + missing)[:3])[:120]})")
    if any(i.file_size > MAX_MEMBER_BYTES for i in infos) \
            or sum(i.file_size for i in infos) > MAX_TOTAL_BYTES:
        raise RecordingError("the recording's arrays are too large")
    arrays = {}
    for info in infos:
        with archive.open(info) as f:
            raw = f.read(MAX_MEMBER_BYTES + 1)
        if len(raw) > MAX_MEMBER_BYTES:
            raise RecordingError("the recording's arrays are too large")
        array = np.lib.format.read_array(io.BytesIO(raw), allow_pickle=False)
        kinds, ndim = _ARRAYS[info.filename.removesuffix(".npy")]
        if array.dtype.kind not in kinds or array.ndim != ndim or array.dtype.hasobject:
            raise RecordingError(f"the recording's {info.filename[:-4]} array has "
                                 f"dtype {array.dtype} and {array.ndim} dimensions")
        arrays[info.filename[:-4]] = array
    return arrays


def _check(arrays: dict[str, np.ndarray]) -> dict:
    meta = json.loads(arrays.pop("meta").astype(np.uint8).tobytes().decode("utf-8"))
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise RecordingError("not a cnnlab recording (no cnnlab-recording format tag)")
    version = meta.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise RecordingError("not a cnnlab recording (bad format_version)")
    if version > FORMAT_VERSION:
        raise RecordingError(f"recording format version {version} is newer than this cnnlab "
                             f"reads ({FORMAT_VERSION})")
    for key, kind in (("dataset", dict), ("run", dict), ("config", dict), ("machine", dict),
                      ("epochs_log", list)):
        if not isinstance(meta.get(key), kind):
            raise RecordingError(f"the recording's meta has no valid {key!r}")
    classes = meta["dataset"].get("class_names")
    if not isinstance(classes, list) or not 2 <= len(classes) <= MAX_CLASSES \
            or not all(isinstance(c, str) and len(c) <= 80 for c in classes):
        raise RecordingError("the recording's class names are missing or invalid")
    for key in ("name", "source"):
        if not isinstance(meta["dataset"].get(key), str):
            raise RecordingError(f"the recording's dataset has no {key}")
    if not isinstance(meta["run"].get("epochs_completed"), int):
        raise RecordingError("the recording's run has no epochs_completed")
    acc = meta["run"].get("test_accuracy")
    if acc is not None and not isinstance(acc, (int, float)):
        raise RecordingError("the recording's test_accuracy is not a number")
    if not all(isinstance(e, dict) for e in meta["epochs_log"]):
        raise RecordingError("the recording's epochs_log is invalid")
    for key in ("command", "label"):
        if meta.get(key) is not None and not isinstance(meta[key], str):
            raise RecordingError(f"the recording's {key} is not text")
    n = len(arrays["batch_epoch"])
    if not 1 <= n <= MAX_BATCHES or any(len(arrays[k]) != n for k in _BATCH_KEYS):
        raise RecordingError("the recording's batch arrays differ in length or are empty")
    c = len(classes)
    s = len(arrays["snapshot_epoch"])
    k = len(arrays["sample_labels"])
    shapes_ok = (
        1 <= s <= MAX_SNAPSHOTS and arrays["filters"].shape[0] == s
        and arrays["filters"].shape[1] <= 1024 and max(arrays["filters"].shape[2:]) <= 64
        and arrays["val_confusion"].shape == (s, c, c)
        and arrays["sample_images"].shape == (k, 28, 28) and k <= 100
        and arrays["sample_probs"].shape == (s, k, c)
        and arrays["test_confusion"].shape == (c, c))
    if not shapes_ok:
        raise RecordingError("the recording's snapshot arrays have inconsistent shapes")
    if np.any(np.diff(arrays["snapshot_epoch"].astype(np.int64)) <= 0) \
            or np.any(np.diff(arrays["batch_epoch"].astype(np.int64)) < 0) \
            or arrays["batch_epoch"].min() < 1:
        raise RecordingError("the recording's epochs are out of order")
    for key in ("val_confusion", "test_confusion", "sample_labels"):
        if arrays[key].min(initial=0) < 0:
            raise RecordingError(f"the recording's {key} has negative values")
    if arrays["sample_labels"].max(initial=0) >= c:
        raise RecordingError("the recording's sample labels name no class")
    return meta


# ---- shipped recordings -------------------------------------------------------------------------
def shipped_names() -> list[str]:
    """The recordings shipped in cnnlab/data/recordings (file stems), sorted."""
    if not SHIPPED_DIR.is_dir():
        return []
    return sorted(p.stem for p in SHIPPED_DIR.glob("*.npz") if _NAME.match(p.stem))


def load_shipped(name: str) -> Recording:
    """A shipped recording by name; RecordingError for a name that is not one."""
    if name not in shipped_names():
        raise RecordingError(f"no shipped recording is called {name[:60]!r}")
    return load_recording(SHIPPED_DIR / f"{name}.npz")


# ---- replay ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReplaySnapshot:
    """What cnnlab.train.charts.live_figure reads of a job snapshot, at one batch of a replay."""

    label: str
    state: JobState
    epochs: int
    steps_per_epoch: int | None
    batches: tuple[BatchPoint, ...]
    epochs_log: tuple[dict, ...]


class Replay:
    """A recording seen up to a batch: the curve so far, and the nearest earlier epoch's
    snapshot (filters, validation confusion matrix, sample probabilities)."""

    def __init__(self, recording: Recording) -> None:
        self.recording = recording
        a = recording.arrays
        self.steps = int(len(a["batch_epoch"]))
        self.times = np.maximum.accumulate(np.nan_to_num(a["batch_time"].astype(np.float64)))
        epochs = a["batch_epoch"].astype(np.int64)
        # The global step (from 1) that ends each epoch.
        self._epoch_ends = {int(e): int(np.flatnonzero(epochs == e)[-1]) + 1
                            for e in np.unique(epochs)}
        self._points = [BatchPoint(i + 1, int(epochs[i]), int(a["batch_index"][i]),
                                   float(a["batch_loss"][i]), float(a["batch_mean_loss"][i]),
                                   {"accuracy": float(a["batch_accuracy"][i])},
                                   float(self.times[i]))
                        for i in range(self.steps)]

    @property
    def duration_s(self) -> float:
        return float(self.times[-1])

    def clamp(self, step: int) -> int:
        return int(min(max(int(step), 1), self.steps))

    def epochs_done(self, step: int) -> int:
        """Epochs whose last batch is at or before `step`."""
        return sum(1 for end in self._epoch_ends.values() if end <= self.clamp(step))

    def snapshot_index(self, step: int) -> int:
        """Index of the latest snapshot taken at or before `step` (0: before training)."""
        done = self.epochs_done(step)
        epochs = self.recording.arrays["snapshot_epoch"]
        return int(np.searchsorted(epochs, done, side="right") - 1) if epochs[0] <= done else 0

    def snapshot_epoch(self, step: int) -> int:
        return int(self.recording.arrays["snapshot_epoch"][self.snapshot_index(step)])

    def curves(self, step: int) -> ReplaySnapshot:
        step = self.clamp(step)
        meta = self.recording.meta
        done = self.epochs_done(step)
        log = tuple(e for e in meta["epochs_log"] if isinstance(e.get("epoch"), int)
                    and e["epoch"] <= done)
        final = step == self.steps
        state = (JobState(meta["run"]["state"]) if final and meta["run"].get("state")
                 in tuple(JobState) else JobState.DONE if final else JobState.RUNNING)
        steps = meta["run"].get("steps_per_epoch")
        return ReplaySnapshot(label=self.recording.label, state=state,
                              epochs=int(meta["config"].get("epochs", self.recording.epochs)),
                              steps_per_epoch=steps if isinstance(steps, int) and steps > 0
                              else max(self._epoch_ends.values(), default=1),
                              batches=tuple(self._points[:step]), epochs_log=log)

    def position(self, step: int) -> tuple[int, int]:
        """(epoch, batch within it) of a global step."""
        i = self.clamp(step) - 1
        a = self.recording.arrays
        return int(a["batch_epoch"][i]), int(a["batch_index"][i])

    def time_of(self, step: int) -> float:
        return float(self.times[self.clamp(step) - 1])

    def step_at(self, seconds: float) -> int:
        """The last batch finished `seconds` into the recorded training."""
        return self.clamp(int(np.searchsorted(self.times, seconds, side="right")))

    def filters(self, step: int) -> np.ndarray:
        return self.recording.arrays["filters"][self.snapshot_index(step)].astype(np.float32)

    def val_confusion(self, step: int) -> np.ndarray:
        return self.recording.arrays["val_confusion"][self.snapshot_index(step)].astype(np.int64)

    def sample_probs(self, step: int) -> np.ndarray:
        return self.recording.arrays["sample_probs"][self.snapshot_index(step)].astype(np.float32)
