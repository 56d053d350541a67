"""Head-training epoch time: cached bottleneck features (fast mode) vs images through the
frozen Inception v3 base (the uncached path), in one process.

Both train the same head (Dense softmax on the standardised 2048 features) on the same
batches (`cnnlab.transfer.features.batch_stream`); the first epoch of each, which traces the graph,
is not timed. Prints the seconds per epoch of each and, last, `ratio=` uncached / cached
(the speed-up; the issue's goal is at least 20).

    .venv/bin/python bench/transfer.py [--size 150] [--per-class 32] [--epochs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from cnnlab.transfer.archive import SessionWorkspace, demo_archive, load_zip  # noqa: E402
from cnnlab.transfer.callbacks import epoch_timer  # noqa: E402
from cnnlab.transfer.config import NO_AUGMENTATION  # noqa: E402
from cnnlab.transfer.features import batch_stream, bottleneck_features  # noqa: E402
from cnnlab.transfer.image_folder import load_pixels, to_model_input  # noqa: E402
from cnnlab.transfer.model import (  # noqa: E402
    BOTTLENECK_WIDTH,
    adapt_head,
    build_base,
    build_classifier,
    compile_for_training,
    resolve_base_weights,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=150, help="image side (75..299)")
    parser.add_argument("--per-class", type=int, default=32, help="images per class (3 classes)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per path (first untimed)")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    import keras

    keras.utils.set_random_seed(0)
    workspace = SessionWorkspace()
    dataset = load_zip(demo_archive(per_class=args.per_class, size=args.size + 20),
                       "demo.zip", workspace)
    pixels = load_pixels(dataset.paths, args.size)
    labels = dataset.labels
    weights = resolve_base_weights()
    print(f"{len(labels)} images at {args.size}x{args.size}, batch {args.batch_size}; "
          f"base: {'ImageNet weights' if weights.pretrained else 'untrained'}")

    base = build_base(args.size, weights.weights)
    model, head = build_classifier(base, dataset.num_classes, NO_AUGMENTATION, seed=0)
    t0 = time.perf_counter()
    features = bottleneck_features(base, pixels, args.batch_size)
    print(f"bottleneck features, once: {time.perf_counter() - t0:.2f} s")
    adapt_head(head, features)

    steps = -(-len(labels) // args.batch_size)
    timings: dict[str, list[float]] = {}
    for name, train_model, inputs, shape in (
        ("cached", head, lambda idx: features[idx], (BOTTLENECK_WIDTH,)),
        ("uncached", model, lambda idx: to_model_input(pixels[idx]),
         (args.size, args.size, 3)),
    ):
        compile_for_training(train_model, 1e-3)
        stream = batch_stream(inputs, labels, shape, args.batch_size, args.epochs, seed=0)
        seconds: list[float] = []
        train_model.fit(stream, epochs=args.epochs, steps_per_epoch=steps, verbose=0,
                        shuffle=False, callbacks=[epoch_timer(seconds)])
        timings[name] = seconds[1:]  # the first epoch traces the graph
        print(f"{name}: {statistics.median(timings[name]):.4f} s per epoch "
              f"(epochs: {', '.join(f'{s:.4f}' for s in seconds)})")
    workspace.cleanup()
    ratio = statistics.median(timings["uncached"]) / statistics.median(timings["cached"])
    print(f"ratio={ratio:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
