"""The explanation lab on Inception v3 at 299 x 299 on this CPU: each method's time, and
Score-CAM batched against one channel at a time.

1. Each method (cnnlab.vision.explain) on one photo for its top class: the seconds of a
   warm call (its tf.functions traced by a first call, not timed; Score-CAM's first call
   runs one batch only), then the seconds of its deletion and insertion curves
   (2 x 33 forward passes) and both areas.
2. Score-CAM: `score_cam` puts the masked inputs of mixed10's channels through the
   network in batches of 16; `score_cam_looped` upsamples each channel with Pillow and
   runs one forward pass per channel. Both run on the same ROUNDS x CHUNK channels (a
   seeded sample of the informative ones), interleaved round by round so that the other
   work on this shared machine weighs on both alike; the looped time for all channels is
   that per-channel time scaled (it is one forward pass per channel). Their weights
   must agree.

Weights: random (InceptionV3(weights=None), seeded): the same architecture and so the same
timings as the ImageNet weights; the maps and areas mean nothing (a random network's
softmax is uniform, 1/1000). Last line: ratio=<looped seconds / batched seconds>.
"""

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROUNDS = 4
CHUNK = 64
BATCH = 16


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

    informative = int(batched.details["channels"])
    maps = access.feature_maps(x)
    flat = maps.reshape(-1, maps.shape[-1])
    pool = np.flatnonzero(flat.max(0) > flat.min(0))
    sample = np.random.default_rng(0).permutation(pool)[:ROUNDS * CHUNK]
    cams.score_cam_looped(access, x, c, channels=sample[:2])  # warm the batch-1 forward pass
    batched_s = looped_s = 0.0
    diff = 0.0
    for r in range(ROUNDS):
        chunk = np.sort(sample[r * CHUNK:(r + 1) * CHUNK])
        runs = [("batched", lambda ch=chunk: cams.score_cam(access, x, c, BATCH, channels=ch)),
                ("looped", lambda ch=chunk: cams.score_cam_looped(access, x, c, channels=ch))]
        results = {}
        for side, run in (runs if r % 2 == 0 else runs[::-1]):  # alternate who goes first
            results[side] = run()
        batched_s += results["batched"].seconds
        looped_s += results["looped"].seconds
        diff = max(diff, float(np.abs(results["batched"].details["weights"][chunk]
                                      - results["looped"].details["weights"][chunk]).max()))
    n = ROUNDS * CHUNK
    ratio = looped_s / batched_s
    print(f"Score-CAM, all {informative} informative channels batched: {batched.seconds:.1f} s "
          f"(the table above)")
    print(f"Score-CAM on the same {n} channels, {ROUNDS} interleaved rounds: batched {batched_s:.1f} s "
          f"({batched_s / n * 1000:.1f} ms a channel), looped {looped_s:.1f} s "
          f"({looped_s / n * 1000:.1f} ms a channel)")
    print(f"looped, scaled to all {informative} channels: {looped_s / n * informative:.1f} s")
    print(f"largest weight difference, batched vs looped: {diff:.2e}")
    print(f"ratio={ratio:.2f}")


if __name__ == "__main__":
    main()
