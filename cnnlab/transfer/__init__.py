"""Transfer learning: Inception v3 frozen up to its bottleneck, a new softmax head.

The seed's answer 9, built for real:

    base   = InceptionV3(include_top=False, pooling="avg")   # image → 2048 bottleneck features
    model  = augmentation → base (frozen, BatchNorm in inference mode) → Dense(k, softmax)

Two ways to train the head (`TransferConfig.mode`):

- "fast": every image goes through the frozen base ONCE; the 2048-wide bottleneck features
  are cached (`FeatureCache`) and the head trains on them. An epoch costs one small matrix
  product per batch instead of a full Inception forward pass, so it is orders of magnitude
  faster; augmentation is impossible (the features are fixed).
- "full": images (augmented by Keras preprocessing layers) go through the frozen base at
  every step. Slower, but each epoch sees new variants of the pictures.

Both draw the same batches in the same order (`batch_stream`) and start from the same head
(`head_initializer(seed)`), so on the same data, seed and without augmentation they end with
the same head weights: the cache changes the speed, not the result.

Optional phase 2 unfreezes the top inception blocks (not their BatchNorm layers) and
fine-tunes them with a low learning rate, images through the whole network.

The modules, in the order data flows through them:

- `archive`: uploaded zips checked and unpacked into a per-session workspace; the demo zip.
- `image_folder`: class folders scanned into an `ImageFolder`, split by fraction, decoded.
- `config`: `TransferConfig` and `Augmentation`; `cost`: images a run sends through the base.
- `model`: base, head, augmentation layers, base weights, unfreezing, parameter counts.
- `features`: bottleneck features, their cache, the batches both modes train on.
- `run`: `TransferRun`, the phases as jobs of the one job runner (`cnnlab.train.jobs`);
  `callbacks`: the step timers it uses.
- `registry`: each owner's run (starting one, finding it after a refresh);
  `handoff`: the trained model handed to the Classify page.
- `charts`: the page's figures.

Keras/TensorFlow are imported inside the functions that need them.
"""
