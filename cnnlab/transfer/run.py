"""A transfer run: a dataset split and a `TransferConfig` → one or two jobs of the shared
job runner (`cnnlab.train.jobs`).

Phase 1 trains the head (fast mode on cached bottleneck features, full mode on images through
the frozen base); the optional phase 2 fine-tunes the top inception blocks. Each phase's
`build()` runs in the job's thread as a list of named steps; the page polls `status()` and the
jobs' snapshots. Keras/TensorFlow are imported inside the functions that need them.

On the Ray backend a phase's `build()` runs on a copy of the run in a worker process: the run
travels there pickled (`__getstate__`: no lock, no jobs, the model as a .keras file, the test
images and this run's cached features only), streams its `status()`, and comes back in the
phase's `setup.context`, from which this run takes what the build made (`_absorb`).
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from cnnlab.train.jobs import JobState, TrainingJob, TrainSetup, random_draws, seeds_itself
from cnnlab.train.jobs import current_job as job_of_this_thread
from cnnlab.train.manager import JobManager
from cnnlab.train.metrics import TestReport, predict_probs, test_report
from cnnlab.transfer.callbacks import batch_timer
from cnnlab.transfer.config import TransferConfig
from cnnlab.transfer.cost import fast_mode_speedup
from cnnlab.transfer.features import FeatureCache, batch_stream, bottleneck_features
from cnnlab.transfer.image_folder import PARTS, ImageFolder, Split, SplitImages, to_model_input
from cnnlab.transfer.model import (
    BOTTLENECK_WIDTH,
    BaseWeights,
    ParameterCounts,
    adapt_head,
    build_base,
    build_classifier,
    compile_for_training,
    parameter_counts,
    unfreeze_top_blocks,
)

if TYPE_CHECKING:
    import keras

Features = dict[str, np.ndarray]  # part -> (n, 2048) bottleneck features


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n > 1 else ''}"


def phase_job(build: Callable[[], TrainSetup], config: TransferConfig, phase: int) -> TrainingJob:
    """The runner's job for one phase, labelled for the page."""
    if phase == 1:
        label = (f"Transfer ({config.mode} mode): the head, "
                 f"{_plural(config.epochs, 'epoch')}")
    else:
        label = (f"Transfer phase 2: top {_plural(config.fine_tune_blocks, 'inception block')}, "
                 f"{_plural(config.fine_tune_epochs, 'epoch')}")
    return TrainingJob(build, seed=config.seed + phase - 1, label=label,
                       config={"kind": "transfer", "phase": phase, **config.as_dict()})


class TransferRun:
    """One transfer-learning run of one browser session.

    Holds the data, the config, the job(s) it submits to the shared `JobManager`, and the
    trained full model (`model`, base + head) once phase 1 has built it. The page polls
    `status()` and the jobs' snapshots; `advance()` submits phase 2 when phase 1 is done.
    """

    def __init__(self, dataset: ImageFolder, split: Split, config: TransferConfig,
                 base_weights: BaseWeights, cache: FeatureCache | None = None) -> None:
        config.validate()
        self.config = config
        self.base_weights = base_weights
        self.class_names = list(dataset.class_names)
        self.cache = cache if cache is not None else FeatureCache()
        self._dataset_key = dataset.fingerprint()
        self.images = SplitImages(dataset, split, config.image_size)
        # The page and the tests read these (the same objects as the images'):
        self.labels, self.pixels = self.images.labels, self.images.pixels
        self.test_names = self.images.test_names
        self.image_size = config.image_size
        self._lock = threading.Lock()
        self._stage = "waiting to start"
        self._stage_progress = 0.0
        self.timings: dict[str, float] = {}
        self.batch_seconds: dict[int, list[float]] = {1: [], 2: []}  # per phase, training steps
        self.feature_cache_hit: bool | None = None
        self.freed = False     # evicted by the runner: nothing left to show
        self.model: keras.Model | None = None
        self.base: keras.Model | None = None
        self.head_model: keras.Model | None = None
        self.parameters: dict[str, ParameterCounts] = {}
        self.phase1 = phase_job(self._build_phase1, config, 1)
        self.phase2: TrainingJob | None = None
        self._absorbed: set[str] = set()       # phases whose results this run has taken

    # ---- status for the page --------------------------------------------------------------
    def _set_stage(self, text: str, progress: float) -> None:
        with self._lock:
            self._stage, self._stage_progress = text, progress

    def status(self) -> tuple[str, float]:
        self._absorb()
        job = self.current_job if self.phase1 is not None else None
        remote = getattr(job, "stage", None)   # a phase building in a Ray worker
        if remote is not None and not job.state.finished:
            return remote
        with self._lock:
            return self._stage, self._stage_progress

    def jobs(self) -> list[TrainingJob]:
        return [j for j in (self.phase1, self.phase2) if j is not None]

    @property
    def current_job(self) -> TrainingJob:
        return self.phase2 or self.phase1

    @property
    def finished(self) -> bool:
        """Nothing more will happen: a phase failed or stopped, or every phase is done."""
        self._absorb()
        states = [j.state for j in self.jobs()]
        if any(s in (JobState.FAILED, JobState.STOPPED) for s in states):
            return True
        if states[-1] != JobState.DONE:
            return False
        return self.phase2 is not None or not self.config.phase2

    def report(self) -> TestReport | None:
        """The test report of the last phase that completed."""
        self._absorb()
        for job in reversed(self.jobs()):
            report = job.result.get("report")
            if report is not None:
                return report
        return None

    def counted_parameters(self, class_names: list[str]) -> ParameterCounts | None:
        """Keras' count of phase 1's model, once built, when it was built for these classes."""
        self._absorb()
        counted = self.parameters.get("phase 1")
        return counted if counted is not None and self.class_names == class_names else None

    # ---- lifecycle --------------------------------------------------------------------------
    def submit(self, manager: JobManager, owner: str) -> None:
        # The runner's job (on Ray, a proxy of the run in the cluster) is the one to watch.
        self.phase1 = manager.submit(owner, self.phase1)

    def advance(self, manager: JobManager, owner: str) -> bool:
        """Submit phase 2 once phase 1 is done (called from the page's polling). True if it did."""
        self._absorb()
        with self._lock:
            if (not self.config.phase2 or self.phase2 is not None
                    or self.phase1.state != JobState.DONE or self.model is None):
                return False
            self.phase2 = phase_job(self._build_phase2, self.config, 2)
        self.phase2 = manager.submit(owner, self.phase2)
        return True

    def stop(self) -> None:
        for job in self.jobs():
            job.stop()

    def free(self) -> None:
        """Let go of the Inception model, the pixels and the cached features (an evicted run;
        the feature cache is per session and goes with it)."""
        self.model = self.base = self.head_model = None
        self.images = None
        self.pixels = {}
        self.cache = None
        self.freed = True

    def forget(self, manager: JobManager, owner: str) -> None:
        """Let the runner drop this run's jobs (their models and images)."""
        for job in self.jobs():
            manager.forget(owner, job.id)

    def release_training_data(self) -> None:
        """Once finished: drop the training and validation pixels (the test images stay for
        the misclassified gallery)."""
        if self.finished:
            self.images.release_training()

    # ---- phase 1, in the worker thread --------------------------------------------------------
    @seeds_itself
    def _build_phase1(self) -> TrainSetup:
        cfg = self.config
        job = job_of_this_thread()

        def stop() -> bool:
            return job is not None and job.stop_requested

        with random_draws():   # the weights' draws; decoding and features run outside the lock
            self._build_model()
        if not self.images.decode(stop, self._decoding_stage):
            return self._stopped_setup()
        # Both modes need the training features once: the head's standardisation is set from
        # them (fast mode also trains on them). They are cached per dataset/size/weights.
        features = self._features(stop)
        if features is None:
            return self._stopped_setup()
        adapt_head(self.head_model, features["train"])
        self.parameters["phase 1"] = parameter_counts(self.model)
        if cfg.mode == "fast":
            train_model = self.head_model
            x, validation = self._feature_batches(features)
        else:
            train_model = self.model
            x, validation = self._image_batches(cfg.epochs, cfg.seed)
        compile_for_training(train_model, cfg.learning_rate)
        self._set_stage(f"training the head ({cfg.mode} mode)", 1.0)

        def test_probs() -> np.ndarray:
            # The base is frozen in phase 1 (and augmentation is off at inference), so the full
            # model's output on a test image IS the head's output on its cached features.
            return predict_probs(self.head_model, features["test"], cfg.batch_size)

        return self._setup(1, train_model, x, validation, cfg.epochs, test_probs,
                           {"mode": cfg.mode, "base": self.base_weights.message})

    def _build_model(self) -> None:
        self._set_stage("building Inception v3", 0.0)
        self.base = build_base(self.image_size, self.base_weights.weights)
        self.model, self.head_model = build_classifier(
            self.base, len(self.class_names), self.config.augmentation, self.config.seed)

    def _decoding_stage(self, done: int, total: int) -> None:
        self._set_stage(f"decoding {total} images at {self.image_size}x{self.image_size}",
                        done / max(total, 1))

    def _stopped_setup(self) -> TrainSetup:
        # The runner sees the stop request right after build() and ends as "stopped".
        return TrainSetup(model=self.model, x=np.zeros((0, 1)), epochs=0)

    def _features(self, stop: Callable[[], bool]) -> Features | None:
        """Every image's bottleneck features, from the cache or once through the base."""
        key = self._feature_key()
        cached = self.cache.get(key)
        self.feature_cache_hit = cached is not None
        if cached is not None:
            self.timings.setdefault("features_s", 0.0)
            all_features = cached
        else:
            all_features = self._compute_features(stop)
            if all_features is None:
                return None
            self.cache.put(key, all_features)
        n_train, n_val = len(self.labels["train"]), len(self.labels["val"])
        return {"train": all_features[:n_train], "val": all_features[n_train:n_train + n_val],
                "test": all_features[n_train + n_val:]}

    def _compute_features(self, stop: Callable[[], bool]) -> np.ndarray | None:
        pixels = np.concatenate([self.pixels[p] for p in PARTS])

        def progress(done: int, total: int) -> None:
            self._set_stage(f"bottleneck features: {done}/{total} images through the "
                            "frozen base (once; cached for the next runs)", done / total)

        t0 = time.perf_counter()
        features = bottleneck_features(self.base, pixels, self.config.batch_size, progress, stop)
        if features is not None:
            self.timings["features_s"] = time.perf_counter() - t0
            self.timings["features_images"] = float(len(pixels))
        return features

    def _feature_batches(self, features: Features) -> tuple[Any, tuple]:
        """Fast mode's training stream (cached features) and validation data."""
        cfg, y = self.config, self.labels
        x = batch_stream(lambda idx: features["train"][idx], y["train"], (BOTTLENECK_WIDTH,),
                         cfg.batch_size, cfg.epochs, cfg.seed)
        return x, (features["val"], y["val"])

    def _image_batches(self, epochs: int, seed: int) -> tuple[Any, tuple]:
        """The training stream of images through the whole model, and validation data."""
        train_pixels, size, y = self.pixels["train"], self.image_size, self.labels
        x = batch_stream(lambda idx: to_model_input(train_pixels[idx]), y["train"],
                         (size, size, 3), self.config.batch_size, epochs, seed)
        return x, (to_model_input(self.pixels["val"]), y["val"])

    def _setup(self, phase: int, model: keras.Model, x: Any, validation: tuple, epochs: int,
               test_probs: Callable[[], np.ndarray], info: dict[str, Any]) -> TrainSetup:
        """What the runner fits, and the test report it computes after a complete phase."""
        bs = self.config.batch_size
        n_train = len(self.labels["train"])
        last = phase == 2 or not self.config.phase2
        counts = self.parameters[f"phase {phase}"]

        def evaluate(_model) -> dict[str, Any]:
            report = test_report(test_probs(), self.labels["test"], self.class_names)
            self._set_stage("done" if last else "phase 1 done", 1.0)
            return {"report": report, "test_accuracy": report.accuracy}

        return TrainSetup(
            model=model, x=x, validation_data=validation, epochs=epochs, batch_size=bs,
            steps_per_epoch=-(-n_train // bs), samples_per_epoch=n_train, evaluate=evaluate,
            fit_kwargs={"shuffle": False, "callbacks": [batch_timer(self.batch_seconds[phase])]},
            info={**info, "trainable": counts.trainable, "frozen": counts.frozen},
            context={"transfer_run": self},    # where this run comes back from a worker
        )

    # ---- phase 2, in the worker thread --------------------------------------------------------
    def _build_phase2(self) -> TrainSetup:
        cfg = self.config
        self._set_stage(f"phase 2: unfreezing the top {cfg.fine_tune_blocks} inception "
                        "block(s)", 0.0)
        job = job_of_this_thread()
        # In a Ray worker only the test images travelled: decode the others here.
        if not self.images.decode(lambda: job is not None and job.stop_requested,
                                  self._decoding_stage):
            return self._stopped_setup()
        unfreeze_top_blocks(self.base, cfg.fine_tune_blocks)
        compile_for_training(self.model, cfg.fine_tune_learning_rate)
        self.parameters["phase 2"] = parameter_counts(self.model)
        x, validation = self._image_batches(cfg.fine_tune_epochs, cfg.seed + 1)
        self._set_stage("phase 2: fine-tuning", 1.0)
        return self._setup(2, self.model, x, validation, cfg.fine_tune_epochs,
                           self._full_test_probs, {"mode": "fine-tune"})

    def _full_test_probs(self) -> np.ndarray:
        return predict_probs(self.model, to_model_input(self.pixels["test"]),
                             self.config.batch_size)

    # ---- a phase that trained in another process (the Ray backend) ------------------------
    def _feature_key(self) -> tuple:
        return (self._dataset_key, self.image_size, self.base_weights.key(self.config.seed))

    def __getstate__(self) -> dict[str, Any]:
        """What travels to a worker and back (see the module docstring)."""
        state = dict(self.__dict__)
        for name in ("_lock", "phase1", "phase2", "base", "head_model", "_absorbed"):
            state.pop(name, None)
        state["_base_name"] = self.base.name if self.base is not None else None
        features = self.cache.get(self._feature_key())
        state["cache"] = {} if features is None else {self._feature_key(): features}
        images = copy.copy(self.images)          # the training pixels stay where they are
        images.pixels = {p: v for p, v in self.images.pixels.items() if p == "test"}
        state["images"], state["pixels"] = images, images.pixels
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        cached, base_name = state.pop("cache"), state.pop("_base_name")
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self.phase1 = self.phase2 = None
        self._absorbed = set()
        self.cache = FeatureCache()
        for key, features in cached.items():
            self.cache.put(key, features)
        self.base = self.model.get_layer(base_name) if self.model is not None else None
        self.head_model = None

    def _absorb(self) -> None:
        """Take what a finished phase's build made in another process: the model, Keras'
        counts, timings, the test images, the features for the cache, the last stage."""
        for job in self.jobs():
            if job.id in self._absorbed or not job.state.finished:
                continue
            setup = job.setup
            if setup is None:        # no build, or (Ray) its results not fetched yet: later
                continue
            self._absorbed.add(job.id)
            remote = setup.context.get("transfer_run")
            if remote is None or remote is self:
                continue                         # it trained here: nothing to take
            self.model, self.base = remote.model, remote.base
            self.parameters.update(remote.parameters)
            self.timings.update(remote.timings)
            self.batch_seconds.update({k: v for k, v in remote.batch_seconds.items() if v})
            if remote.feature_cache_hit is not None:
                self.feature_cache_hit = remote.feature_cache_hit
            if "test" in remote.pixels:
                self.pixels["test"] = remote.pixels["test"]
            features = remote.cache.get(self._feature_key())
            if features is not None:
                self.cache.put(self._feature_key(), features)
            self._set_stage(*remote.status())

    # ---- speed-up of fast mode --------------------------------------------------------------
    def speedup(self) -> dict[str, float] | None:
        """Fast mode's measured speed-up (`cost.fast_mode_speedup`); None in full mode, when
        the features came from the cache, or before the second training step."""
        self._absorb()
        if self.config.mode != "fast" or "features_images" not in self.timings:
            return None
        return fast_mode_speedup(self.timings["features_s"], int(self.timings["features_images"]),
                                 self.batch_seconds[1], len(self.labels["train"]),
                                 self.config.batch_size)
