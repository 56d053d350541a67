"""`python -m cnnlab recordings`: the recorded training runs cnnlab ships (or the files named).

Each was made with `python -m cnnlab train ... --record FILE` on real data; the Train page
replays one with `train?replay=NAME`. With --json, stdout carries one JSON list of objects:
`name`, `dataset`, `label`, `epochs`, `test_accuracy`, `train_images`, `validation_images`,
`test_images`, `source`, `command`, `machine`, `created`, `train_seconds`. A file that is not
a valid recording is one line on stderr and exit status 2. Never imports TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="*", metavar="FILE.npz",
                        help="recordings to describe (default: the shipped ones)")
    parser.add_argument("--json", action="store_true", help="one JSON list")


def run(args: argparse.Namespace) -> int:
    from cnnlab.train.recording import RecordingError, load_recording, load_shipped, shipped_names
    from cnnlab.ui.safe import one_line

    rows = []
    try:
        if args.files:
            for name in args.files:
                rows.append(load_recording(name).summary(Path(name).stem))
        else:
            for name in shipped_names():
                rows.append(load_shipped(name).summary(name))
    except RecordingError as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(rows))
        return 0
    if not rows:
        print("no recordings")
    for row in rows:
        acc = row["test_accuracy"]
        print(f"{row['name']}: {one_line(row['label'])}; {row['epochs']} epochs, test accuracy "
              f"{'-' if acc is None else f'{acc:.2%}'} on {row['test_images']:,} images\n"
              f"  data: {one_line(row['source'])}\n  command: {one_line(row['command'])}\n"
              f"  machine: {one_line(row['machine'].get('cpu'))}, {row['machine'].get('cores')} "
              f"cores, TensorFlow {row['machine'].get('tensorflow')}, {row['created']}")
    return 0
