"""`python -m cnnlab classify IMAGE... [--top 5] [--json]`: ImageNet top classes with Inception v3.

The same path as the Classify page: cnnlab.vision.images decodes (one decoder for everything),
cnnlab.vision.inception preprocesses, predicts and decodes the labels offline. A bad file prints
its one-line message on stderr; the good files are still classified, and the exit
status is then 2. No weights: the honest message, exit 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def _top(text: str) -> int:
    try:
        k = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 1 <= k <= 1000:
        raise argparse.ArgumentTypeError(f"--top must be between 1 and 1000, got {k}")
    return k


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", metavar="IMAGE",
                        help="image files (JPEG, PNG, WebP, GIF, BMP, TIFF)")
    parser.add_argument("--top", type=_top, default=5, help="how many classes to show (default 5)")
    parser.add_argument("--json", action="store_true",
                        help="one JSON object per image on stdout")
    parser.add_argument("--untrained", action="store_true",
                        help="random weights, to show the pipeline only: the classes mean nothing")


def _print_text(result, untrained: bool) -> None:
    flag = "  [UNTRAINED network: meaningless]" if untrained else ""
    print(f"{result.name}  ({result.seconds * 1000:.0f} ms){flag}")
    for rank, (wnid, label, prob) in enumerate(result.top, start=1):
        print(f"  {rank:>2}. {label:<30} {prob * 100:6.2f}%  {wnid}")


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from cnnlab.vision import images, inception

    # Decode everything first: bad files cost no model load, good ones are all kept.
    decoded, errors = [], []
    for path in args.images:
        try:
            decoded.append((os.path.basename(path), images.read_image(path)))
        except images.ImageError as exc:
            errors.append(str(exc))

    if decoded:
        try:
            classifier = inception.load_classifier("untrained" if args.untrained else "auto")
        except inception.WeightsUnavailable as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        if args.untrained:
            print("warning: UNTRAINED network (random weights): the classes below mean nothing",
                  file=sys.stderr)
        for name, img in decoded:
            try:
                result = classifier.classify(img, name, k=args.top)
            except Exception as exc:  # one line, and the other files go on
                errors.append(f"{name}: could not be classified ({type(exc).__name__}: {exc})")
                continue
            if args.json:
                print(json.dumps({
                    "file": name,
                    "top": [{"rank": r, "wnid": w, "label": label, "probability": round(p, 6)}
                            for r, (w, label, p) in enumerate(result.top, start=1)],
                    "ms": round(result.seconds * 1000, 1),
                    "untrained": classifier.untrained,
                }), flush=True)
            else:
                _print_text(result, classifier.untrained)
                sys.stdout.flush()
    for message in errors:
        print(f"error: {message}", file=sys.stderr)
    return 2 if errors else 0
