"""`python -m cnnlab train`: train the seed's MNIST CNN (or the dense preset) from a terminal.

With --json, stdout carries one JSON object per epoch and, last, one with the test
accuracy, the throughput, the data source, the backend ("threads", or "ray" when
CNNLAB_RAY_ADDRESS names a cluster) and the worker that trained (its node and process). It
uses the same job runner as the page. --record FILE.npz also writes the run as a recording
the Train page replays without training (format: cnnlab/train/recording.py).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
import uuid

from cnnlab.train.config import ARCHITECTURES, MAX_SEED, OPTIMIZERS, TrainConfig
from cnnlab.train.datasets import DATASETS


def _seed(text: str) -> int:
    """--seed, range-checked before anything is built (argparse prints one line)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(
            f"must be an integer 0..{MAX_SEED}, got {text[:40]!r}")
    return value


def _pair(text: str) -> tuple[int, int]:
    parts = text.replace("x", ",").split(",")
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected two integers like 32,64, got {text!r}")
    try:
        return int(parts[0]), int(parts[1])
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two integers like 32,64, got {text!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    seed = TrainConfig()   # the defaults: the seed's network and recipe
    parser.add_argument("--dataset", default=seed.dataset, choices=DATASETS,
                        help="mnist (Keras download, else the offline 5,000-digit sample) or "
                             "fashion_mnist (Keras download, else Debian's IDX files)")
    parser.add_argument("--arch", default=seed.architecture, choices=ARCHITECTURES,
                        help="cnn: the seed's network; dense: a dense net with the parameter "
                             "budget of the CNN that --filters, --kernels and --dense-units give")
    parser.add_argument("--epochs", type=int, default=seed.epochs)
    parser.add_argument("--batch-size", type=int, default=seed.batch_size)
    parser.add_argument("--lr", type=float, default=seed.learning_rate, help="learning rate")
    parser.add_argument("--optimizer", default=seed.optimizer, choices=OPTIMIZERS)
    parser.add_argument("--filters", type=_pair, default=seed.filters,
                        help="conv filters, e.g. 32,64")
    parser.add_argument("--kernels", type=_pair, default=seed.kernels,
                        help="conv kernel sides, e.g. 3,3")
    parser.add_argument("--dense-units", type=int, default=seed.dense_units)
    parser.add_argument("--dropout", type=float, default=seed.dropout)
    parser.add_argument("--seed", type=_seed, default=seed.seed,
                        help=f"0..{MAX_SEED}: the same seed gives the same curve")
    parser.add_argument("--mixed-precision", action="store_true", help="mixed_float16 policy")
    parser.add_argument("--offline", action="store_true",
                        help="do not try the Keras download (same as CNNLAB_OFFLINE=1)")
    parser.add_argument("--save", metavar="PATH.keras", help="save the trained model here")
    parser.add_argument("--record", metavar="PATH.npz",
                        help="write the run as a recording the Train page replays: every "
                             "batch, each epoch's validation, filter snapshots, confusion "
                             "matrices (format: cnnlab/train/recording.py)")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    from cnnlab.errors import ConfigError
    from cnnlab.train.datasets import DatasetUnavailable, load_dataset

    if args.save and not args.save.endswith(".keras"):
        return _fail(f"--save: the file name must end in .keras, got {args.save!r}")
    if args.save and not os.path.isdir(os.path.dirname(os.path.abspath(args.save))):
        return _fail(f"--save: no such directory: {os.path.dirname(args.save)}")
    if args.record and not args.record.endswith(".npz"):
        return _fail(f"--record: the file name must end in .npz, got {args.record!r}")
    if args.record and not os.path.isdir(os.path.dirname(os.path.abspath(args.record))):
        return _fail(f"--record: no such directory: {os.path.dirname(args.record)}")
    try:
        config = TrainConfig(
            dataset=args.dataset, architecture=args.arch, filters=tuple(args.filters),
            kernels=tuple(args.kernels), dense_units=args.dense_units, dropout=args.dropout,
            batch_size=args.batch_size, epochs=args.epochs, learning_rate=args.lr,
            optimizer=args.optimizer, seed=args.seed, mixed_precision=args.mixed_precision,
        )
        config.validate()
    except ConfigError as exc:
        return _fail(str(exc))
    try:
        dataset = load_dataset(config.dataset, allow_download=False if args.offline else None)
    except DatasetUnavailable as exc:
        return _fail(str(exc))
    return _train(config, dataset, args)


def _train(config, dataset, args: argparse.Namespace) -> int:
    from cnnlab.train.backend import backend_name, manager_from_env, worker_of
    from cnnlab.train.export import model_bytes
    from cnnlab.train.jobs import JobError, JobState
    from cnnlab.train.model import job_for
    from cnnlab.train.snapshots import add_snapshots

    def emit(obj: dict, text: str) -> None:
        print(json.dumps(obj) if args.json else text, flush=True)

    if not args.json:
        print(f"{config.label()}\ndata: {dataset.describe()}", flush=True)
    try:
        manager = manager_from_env(max_concurrent=1)
        # Each command is its own owner: a cluster's registry is shared with other users.
        extend = add_snapshots if args.record else None
        job = manager.submit(f"cli-{uuid.uuid4().hex[:12]}", job_for(config, dataset, extend))
    except JobError as exc:       # the cluster is unreachable, or refused the job
        return _fail(str(exc))
    printed = 0
    t0 = time.monotonic()
    try:
        while True:
            finished = job.wait(0.25)
            snap = job.snapshot()
            for entry in snap.epochs_log[printed:]:
                obj = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in entry.items()}
                obj["epochs"] = snap.epochs
                obj["images_per_second"] = round(snap.images_per_second or 0.0, 1)
                emit(obj, f"epoch {entry['epoch']}/{snap.epochs}: loss {entry.get('loss', 0):.4f} "
                          f"accuracy {entry.get('accuracy', 0):.4f} val_loss "
                          f"{entry.get('val_loss', 0):.4f} val_accuracy "
                          f"{entry.get('val_accuracy', 0):.4f}")
            printed = len(snap.epochs_log)
            if finished:
                break
    except KeyboardInterrupt:
        job.stop()
        job.wait()
        snap = job.snapshot()
    if snap.state == JobState.FAILED:
        return _fail(snap.error or "training failed")
    result: dict = {"final": True, "state": snap.state, "config": config.as_dict(),
                    **snap.info, "epochs_completed": len(snap.epochs_log),
                    "images_per_second": round(snap.images_per_second or 0.0, 1),
                    "train_seconds": round(snap.elapsed_s, 2),
                    "total_seconds": round(time.monotonic() - t0, 2),
                    "backend": backend_name(manager), "worker": worker_of(job)}
    if snap.state == JobState.DONE:
        result.update(snap.result)
    else:   # stopped by Ctrl-C: the partly trained model is still tested
        from cnnlab.train.inside import analyze_test

        result["test_accuracy"] = analyze_test(job.model, dataset).accuracy
    if args.save:
        try:
            with open(args.save, "wb") as f:
                f.write(model_bytes(job.model))
        except OSError as exc:
            return _fail(f"--save: {exc.strerror or exc}: {args.save}")
        result["saved"] = args.save
    if args.record:
        failure = _record(job, dataset, args.record)
        if failure:
            return _fail(failure)
        result["recorded"] = args.record
    emit(result, f"test accuracy {result['test_accuracy']:.4f} on {result['test_images']:,} "
                 f"images; {result['images_per_second']:,.0f} images/s; "
                 f"{result['train_seconds']:.1f} s training; data: {snap.info.get('source')}")
    return 0


def command_line() -> str | None:
    """The command as typed (with CNNLAB_OFFLINE when set), for a recording's metadata."""
    if sys.argv[1:2] != ["train"]:
        return None
    offline = "CNNLAB_OFFLINE=1 " if os.environ.get("CNNLAB_OFFLINE") else ""
    return f"{offline}python -m cnnlab {shlex.join(sys.argv[1:])}"


def _record(job, dataset, path: str) -> str | None:
    """Write the run's recording to `path`; an error line, or None."""
    from cnnlab.train.inside import analyze_test
    from cnnlab.train.recording import RecordingError, recording_bytes, recording_from_job

    try:
        confusion = analyze_test(job.model, dataset).confusion
        data = recording_bytes(recording_from_job(job, confusion, command=command_line()))
        with open(path, "wb") as f:
            f.write(data)
    except RecordingError as exc:
        return f"--record: {exc}"
    except OSError as exc:
        return f"--record: {exc.strerror or exc}: {path}"
    return None
