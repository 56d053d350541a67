"""Head-training epoch time: cached bottleneck features (fast mode) vs images through the
frozen Inception v3 base (the uncached path), in one process.

Both train the same head (Dense softmax on the standardised 2048 features) on the same
batches (`cnnlab.transfer.run.batch_stream`); the first epoch of each, which traces the graph,
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

from cnnlab.transfer import data as td  # noqa: E402
from cnnlab.transfer import run as tl  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=150, help="image side (75..299)")
    parser.add_argument("--per-class", type=int, default=32, help="images per class (3 classes)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per path (first untimed)")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    import keras

    keras.utils.set_random_seed(0)
    workspace = td.SessionWorkspace()
    dataset = td.load_zip(td.demo_archive(per_class=args.per_class, size=args.size + 20),
                          "demo.zip", workspace)
    pixels = td.load_pixels(dataset.paths, args.size)
    labels = dataset.labels
    weights = tl.resolve_base_weights()
    print(f"{len(labels)} images at {args.size}x{args.size}, batch {args.batch_size}; "
          f"base: {'ImageNet weights' if weights.pretrained else 'untrained'}")

    base = tl.build_base(args.size, weights.weights)
    model, head = tl.build_classifier(base, dataset.num_classes, tl.NO_AUGMENTATION, seed=0)
    t0 = time.perf_counter()
    features = tl.bottleneck_features(base, pixels, args.batch_size)
    print(f"bottleneck features, once: {time.perf_counter() - t0:.2f} s")
    tl.adapt_head(head, features)

    steps = -(-len(labels) // args.batch_size)
    timings: dict[str, list[float]] = {}
    for name, train_model, inputs, shape in (
        ("cached", head, lambda idx: features[idx], (tl.BOTTLENECK_WIDTH,)),
        ("uncached", model, lambda idx: td.to_model_input(pixels[idx]),
         (args.size, args.size, 3)),
    ):
        tl.compile_for_training(train_model, 1e-3)
        stream = tl.batch_stream(inputs, labels, shape, args.batch_size, args.epochs, seed=0)
        seconds: list[float] = []
        train_model.fit(stream, epochs=args.epochs, steps_per_epoch=steps, verbose=0,
                        shuffle=False, callbacks=[tl.epoch_timer(seconds)])
        timings[name] = seconds[1:]  # the first epoch traces the graph
        print(f"{name}: {statistics.median(timings[name]):.4f} s per epoch "
              f"(epochs: {', '.join(f'{s:.4f}' for s in seconds)})")
    workspace.cleanup()
    ratio = statistics.median(timings["uncached"]) / statistics.median(timings["cached"])
    print(f"ratio={ratio:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
