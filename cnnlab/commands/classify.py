"""`python -m cnnlab classify IMAGE... [--top 5] [--json]`: ImageNet top classes with Inception v3.

The same path as the Classify page: cnnlab.vision.images decodes (one decoder for everything),
cnnlab.vision.inception preprocesses, predicts and decodes the labels offline. Files are
streamed: each is read, decoded, classified and printed before the next is read, so memory
holds one image whatever the number of files. A bad file (special files such as FIFOs and
devices, huge or empty files, non-images) prints its one-line message on stderr, its name
quoted when it holds a newline or another unprintable character; the good files are still
classified, and the exit status is then 2. No weights: the honest message, exit 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from cnnlab.ui.safe import one_line, quoted


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

    # One file at a time: read (kind and size checked first), decode (reduced while
    # decoding), classify, print, let go. A bad file costs no model load and stops nothing;
    # the model is loaded when the first good image needs it.
    classifier = None
    failed = False
    for path in args.images:
        try:
            img = images.read_image(path)
        except images.ImageError as exc:
            failed = True
            print(f"error: {exc}", file=sys.stderr, flush=True)
            continue
        name = quoted(os.path.basename(path))
        if classifier is None:
            try:
                classifier = inception.load_classifier("untrained" if args.untrained else "auto")
            except inception.WeightsUnavailable as exc:
                print(f"error: {one_line(exc, 2000)}", file=sys.stderr)
                return 1
            if args.untrained:
                print("warning: UNTRAINED network (random weights): the classes below mean "
                      "nothing", file=sys.stderr)
        try:
            result = classifier.classify(img, name, k=args.top)
        except Exception as exc:  # one line, and the other files go on
            failed = True
            print(f"error: {name}: could not be classified "
                  f"({type(exc).__name__}: {one_line(exc, 200)})", file=sys.stderr, flush=True)
            continue
        finally:
            del img
        if args.json:
            print(json.dumps({
                "file": os.path.basename(path),
                "top": [{"rank": r, "wnid": w, "label": label, "probability": round(p, 6)}
                        for r, (w, label, p) in enumerate(result.top, start=1)],
                "ms": round(result.seconds * 1000, 1),
                "untrained": classifier.untrained,
            }), flush=True)
        else:
            _print_text(result, classifier.untrained)
            sys.stdout.flush()
    return 2 if failed else 0
