"""What a run costs on a CPU: the images it sends through the Inception v3 base, per mode,
and the speed-up fast mode measured.

Pure arithmetic on a `TransferConfig`, the split's sizes and timings (no Keras).
"""

from __future__ import annotations

import numpy as np

from cnnlab.transfer.config import TransferConfig
from cnnlab.transfer.model import BOTTLENECK_WIDTH


def base_passes(config: TransferConfig, n_train: int, n_val: int, n_test: int) -> dict[str, int]:
    """Images sent through the Inception v3 base by a run (the cost that dominates on a CPU).

    Both modes pass every image once for the bottleneck features (fast mode trains on them;
    full mode sets the head's standardisation from them; both score the test set with them).
    Full mode then repeats the training and validation images every epoch; phase 2 does so in
    either mode, and scores the test set once more.
    """
    once = n_train + n_val + n_test
    per_epoch = n_train + n_val
    phase1 = config.epochs * per_epoch if config.mode == "full" else 0
    phase2 = config.fine_tune_epochs * per_epoch + n_test if config.phase2 else 0
    return {"features": once, "phase 1": phase1, "phase 2": phase2,
            "total": once + phase1 + phase2}


def describe_base_passes(config: TransferConfig, n_train: int, n_val: int, n_test: int) -> str:
    """One Markdown sentence: this run's passes through the base, step by step, and the total
    the other mode (`config.other_mode`) would send."""
    passes = base_passes(config, n_train, n_val, n_test)
    other = base_passes(config.other_mode, n_train, n_val, n_test)
    if passes["phase 1"]:
        training = (f", then {config.epochs} epochs x {n_train + n_val:,} training and "
                    f"validation images ({passes['phase 1']:,})")
    else:
        training = (", then the head trains on the stored features: one "
                    f"{BOTTLENECK_WIDTH:,} x k matrix product per image")
    phase2 = f", plus phase 2 ({passes['phase 2']:,})" if passes["phase 2"] else ""
    return (f"This run sends **{passes['total']:,} images** through Inception v3: every image "
            f"once for its bottleneck features ({passes['features']:,}){training}{phase2}. "
            f"{config.other_mode.mode.capitalize()} mode would send {other['total']:,}.")


def fast_mode_speedup(features_s: float, features_images: int, step_seconds: list[float],
                      n_train: int, batch_size: int) -> dict[str, float] | None:
    """Fast mode, measured: one pass of the training images through the frozen base (what
    every uncached epoch repeats) against a cached head epoch.

    `features_s` is the time the bottleneck pass took for `features_images` images;
    `step_seconds` the head's training steps. The cached epoch is the median step times the
    steps per epoch; the very first step is left out (it traces the graph), so at least two
    steps are needed (None otherwise).
    """
    steps = step_seconds[1:]
    if not steps or features_images <= 0:
        return None
    uncached_epoch = features_s / features_images * n_train
    cached_epoch = float(np.median(steps)) * -(-n_train // batch_size)
    return {"uncached_epoch_s": uncached_epoch, "cached_epoch_s": cached_epoch,
            "ratio": uncached_epoch / cached_epoch if cached_epoch > 0 else float("inf"),
            "features_s": features_s}
