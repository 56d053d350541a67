"""`python -m cnnlab explain IMAGE --model inception|PATH.keras [--methods ...] [--sanity] [--json]`:
where did the network look, how faithful is each map, does it survive randomization?

The same path as the pages: cnnlab.vision.images decodes (a bad file prints its one-line
message, exit 2), cnnlab.vision.explain.explain computes. `--model inception` loads
Inception v3 as `classify` does (CNNLAB_INCEPTION_WEIGHTS or the Keras cache; no weights:
the honest message, exit 1; `--untrained`: random weights, said on stderr and in the
JSON). `--model PATH.keras`: a model saved by the Train page (one channel: the image goes
through MNIST's preprocessing) or the Transfer page (three channels: centre-crop, resize,
scale to [-1, 1]).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from cnnlab.vision.explain.report import METHODS

DEFAULT_METHODS = ("gradcam", "gradcam++", "scorecam", "smoothgrad", "integrated_gradients",
                   "occlusion")


def _methods(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in METHODS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown method {', '.join(unknown) or '(none)'}; choose from {', '.join(METHODS)}")
    return names


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def _class(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a class index, got {text!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", metavar="IMAGE", help="an image file (JPEG, PNG, WebP, GIF, BMP, TIFF)")
    parser.add_argument("--model", required=True, metavar="inception|PATH.keras",
                        help="Inception v3, or a .keras file saved by the Train or Transfer page")
    parser.add_argument("--untrained", action="store_true",
                        help="Inception with random weights (offline demo): the maps mean nothing")
    parser.add_argument("--methods", type=_methods, default=DEFAULT_METHODS,
                        help=f"comma-separated, from {','.join(METHODS)} "
                             f"(default {','.join(DEFAULT_METHODS)})")
    parser.add_argument("--class", dest="class_index", type=_class, default=None, metavar="K",
                        help="explain class K (default: the top class)")
    parser.add_argument("--sanity", action="store_true",
                        help="cascading randomization of the top blocks (Adebayo et al. 2018)")
    parser.add_argument("--sanity-depth", type=_positive, default=4, metavar="N",
                        help="how many blocks to re-draw, top first (default 4)")
    parser.add_argument("--scorecam-channels", type=_positive, default=None, metavar="N",
                        help="Score-CAM on the N most active channels only (default: all)")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")


def _error(message: str, code: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def _load_keras(path: Path):
    """(model, None) or (None, one-line reason)."""
    if not path.is_file():
        return None, f"{path.name}: no such model file"
    import keras

    try:
        model = keras.saving.load_model(path)
    except Exception as exc:  # a zip that is no model, a model from elsewhere, ...
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        return None, f"{path.name}: not a Keras model cnnlab can load ({reason})"
    if len(model.input_shape) != 4 or model.input_shape[-1] not in (1, 3):
        return None, f"{path.name}: not an image classifier (input {model.input_shape})"
    return model, None


def _model_input(model, img):
    """The decoded image as this model's input, or a one-line reason."""
    import numpy as np

    from cnnlab.vision import images

    height, width, channels = (int(d) for d in model.input_shape[1:])
    if channels == 1:
        from cnnlab.train.digit import preprocess_digit

        steps = preprocess_digit(img)
        x = steps.x
        if (height, width) != (28, 28):
            from PIL import Image

            resized = Image.fromarray(steps.centered).resize((width, height), Image.Resampling.BILINEAR)
            x = (np.asarray(resized, np.float32) / 255.0)[..., None]
        return x, None
    if height != width:
        return None, f"a three-channel model must take square images, this one takes {height}x{width}"
    return images.inception_input(img, height), None


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from cnnlab.vision import images

    try:
        img = images.read_image(args.image)
    except images.ImageError as exc:
        return _error(str(exc))
    is_inception = args.model == "inception"
    if args.untrained and not is_inception:
        return _error("--untrained applies to --model inception only")
    labels = None
    if is_inception:
        from cnnlab.vision import inception

        try:
            classifier = inception.load_classifier("untrained" if args.untrained else "auto")
        except inception.WeightsUnavailable as exc:
            return _error(str(exc), 1)
        if args.untrained:
            print("warning: UNTRAINED network (random weights): the maps explain nothing learned",
                  file=sys.stderr)
        model, x = classifier.model, images.inception_input(img, classifier.size)
        labels = classifier.class_names
    else:
        model, problem = _load_keras(Path(args.model))
        if problem:
            return _error(problem)
        x, problem = _model_input(model, img)
        if problem:
            return _error(f"{Path(args.model).name}: {problem}")
    n_classes = int(model.output_shape[-1])
    if args.class_index is not None and not 0 <= args.class_index < n_classes:
        return _error(f"--class must be in [0, {n_classes}), got {args.class_index}")

    from cnnlab.vision.explain import ExplainOptions, explain

    options = ExplainOptions(scorecam_channels=args.scorecam_channels,
                             sanity_depth=args.sanity_depth)
    try:
        report = explain(model, x, args.class_index, args.methods, args.sanity, options=options)
    except ValueError as exc:  # e.g. a model with no conv layer for the CAMs
        return _error(f"{Path(args.model).name}: {exc}")
    out = {"file": Path(args.image).name, "model": args.model,
           "untrained": bool(is_inception and args.untrained), **report.to_dict()}
    if labels is not None:
        out["label"] = labels[report.class_index]
    if args.json:
        print(json.dumps(out), flush=True)
        return 0
    name = f" ({out['label']})" if "label" in out else ""
    print(f"{out['file']}: class {report.class_index}{name}, output {report.output:.4f}, "
          f"CAM layer {report.layer}" + ("  [UNTRAINED network]" if out["untrained"] else ""))
    print(f"  {'method':<22} {'seconds':>8} {'deletion↓':>9} {'insertion↑':>10}")
    for m in report.methods.values():
        print(f"  {m.label:<22} {m.seconds:8.3f} {m.deletion_auc:9.4f} {m.insertion_auc:10.4f}")
    if report.sanity is not None:
        print("  sanity check (Spearman rho with the trained map, blocks re-drawn cumulatively):")
        for m in report.methods.values():
            steps = ", ".join(f"{b} {r:+.2f}" for b, r in m.randomized_similarity)
            print(f"  {m.label:<22} {steps}\n  {'':<22} {m.verdict()}")
    return 0
