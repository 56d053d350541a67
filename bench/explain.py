"""The explanation lab on Inception v3 at 299 x 299 on this CPU: each method's time, and
Score-CAM batched against one channel at a time.

1. Each method (cnnlab.vision.explain) on one photo for its top class: the seconds of a
   warm call (its tf.functions traced by a first call, not timed), then the seconds of its
   deletion and insertion curves (2 x 33 forward passes) and both areas.
2. Score-CAM: `score_cam` puts all 2048 masked inputs of mixed10 through the network in
   batches of 32; `score_cam_looped` upsamples each channel with Pillow and runs one
   forward pass per channel. The looped side runs on LOOPED_CHANNELS channels only and is
   scaled to all informative channels (it is linear in the number of channels: one pass
   each); the weights of those channels must agree with the batched ones.

Weights: random (InceptionV3(weights=None), seeded): the same architecture and so the same
timings as the ImageNet weights; the maps and areas mean nothing. Last line:
ratio=<looped seconds for all channels / batched seconds>.
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

LOOPED_CHANNELS = 256
BATCH = 32


def main() -> None:
    import keras
    import numpy as np

    from cnnlab.vision import images, inception
    from cnnlab.vision.explain import METHODS, ExplainOptions, access_for, cams, compute_method
    from cnnlab.vision.explain.faithfulness import deletion_insertion

    keras.utils.set_random_seed(0)
    model = inception.load_inception(True, "untrained")
    x = images.inception_input(images.sample_photo("chelsea"))
    access = access_for(model)
    c = int(access.outputs(x[None])[0].argmax())
    options = ExplainOptions(batch_size=BATCH)
    print(f"Inception v3, random weights, 299x299, class {c}, CPU cores: {os.cpu_count()}")
    print(f"{'method':<22} {'warm s':>8} {'first s':>8} {'del+ins s':>9} {'deletion':>9} {'insertion':>9}")
    for name in METHODS:
        if name == "scorecam":  # trace on a few channels, then time all 2048 once
            start = time.perf_counter()
            cams.score_cam(access, x, c, BATCH, max_channels=BATCH)
            first = time.perf_counter() - start
            result = batched = compute_method(access, name, x, c, options)
        else:
            first = compute_method(access, name, x, c, options).seconds
            result = compute_method(access, name, x, c, options)
        start = time.perf_counter()
        curves = deletion_insertion(access, x, result.map, c, batch_size=BATCH)
        curve_seconds = time.perf_counter() - start
        extra = ""
        if "completeness_gap" in result.details:
            extra = f"  steps {result.details['steps']}, completeness gap {result.details['completeness_gap']:.4f}"
        if "channels" in result.details:
            extra = f"  {result.details['channels']} channels in batches of {BATCH}"
        print(f"{METHODS[name]:<22} {result.seconds:8.2f} {first:8.2f} {curve_seconds:9.2f} "
              f"{curves.deletion_auc:9.4f} {curves.insertion_auc:9.4f}{extra}")

    batched_seconds = batched.seconds
    informative = int(batched.details["channels"])
    maps = access.feature_maps(x)
    flat = maps.reshape(-1, maps.shape[-1])
    subset = np.flatnonzero(flat.max(0) > flat.min(0))[:LOOPED_CHANNELS]
    cams.score_cam_looped(access, x, c, channels=subset[:2])  # warm the batch-1 forward
    looped = cams.score_cam_looped(access, x, c, channels=subset)
    per_channel = looped.seconds / len(subset)
    looped_all = per_channel * informative
    diff = float(np.abs(looped.details["weights"][subset] - batched.details["weights"][subset]).max())
    print(f"Score-CAM batched: {informative} channels in {batched_seconds:.1f} s "
          f"({batched_seconds / informative * 1000:.1f} ms per channel)")
    print(f"Score-CAM looped: {len(subset)} channels in {looped.seconds:.1f} s "
          f"({per_channel * 1000:.1f} ms per channel), scaled to {informative} channels: {looped_all:.1f} s")
    print(f"largest weight difference, batched vs looped, on those {len(subset)} channels: {diff:.2e}")
    print(f"ratio={looped_all / batched_seconds:.2f}")


if __name__ == "__main__":
    main()
