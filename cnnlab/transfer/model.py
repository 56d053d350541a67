"""The transfer model: a frozen Inception v3 base, augmentation layers and a new softmax head.

    base   = InceptionV3(include_top=False, pooling="avg")   # image → 2048 bottleneck features
    model  = augmentation → base (frozen, BatchNorm in inference mode) → Dense(k, softmax)

Also where the base's weights come from (`resolve_base_weights`), phase 2's unfreezing of the
top inception blocks, and the parameter counts. Keras is imported inside the functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from cnnlab.transfer.config import TOP_BLOCK_BOUNDARY, Augmentation
from cnnlab.transfer.image_folder import ImageFolder, Split, load_pixels, to_model_input

if TYPE_CHECKING:
    import keras

BOTTLENECK_WIDTH = 2048  # InceptionV3(include_top=False, pooling="avg") output
HEAD_NAME = "head"
STANDARDIZE_NAME = "bottleneck_standardization"


# ---------------------------------------------------------------------------------------
# Augmentation


def augmentation_layers(aug: Augmentation, seed: int | None = None) -> keras.Sequential | None:
    """The enabled preprocessing layers as one Sequential (None when none is enabled)."""
    if not aug.enabled:
        return None
    import keras

    layers: list = []
    if aug.flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
    if aug.rotation:
        layers.append(keras.layers.RandomRotation(aug.ROTATION_FACTOR, seed=seed))
    if aug.zoom:
        layers.append(keras.layers.RandomZoom(aug.ZOOM_FACTOR, seed=seed))
    if aug.contrast:
        # Inputs are already in [-1, 1]; the default range (0, 255) would clip them.
        layers.append(keras.layers.RandomContrast(aug.CONTRAST_FACTOR, value_range=(-1.0, 1.0),
                                                  seed=seed))
    return keras.Sequential(layers, name="augmentation")


def augment_preview(pixels: np.ndarray, aug: Augmentation, variants: int = 4,
                    seed: int = 0) -> np.ndarray:
    """uint8 (n, variants, s, s, 3): each image as training would see it, `variants` times.

    The layers run with training=True (at inference they pass images through unchanged).
    """
    pixels = np.asarray(pixels, dtype=np.uint8)
    out = np.repeat(pixels[:, None], variants, axis=1)
    layers = augmentation_layers(aug, seed=seed)
    if layers is None:
        return out
    x = to_model_input(out.reshape(-1, *pixels.shape[1:]))
    y = np.asarray(layers(x, training=True))
    back = np.clip(np.rint((y + 1.0) * 127.5), 0, 255).astype(np.uint8)
    return back.reshape(out.shape)


def augmentation_samples(dataset: ImageFolder, split: Split, aug: Augmentation, seed: int,
                         classes: int = 4, size: int = 128,
                         variants: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """(originals (n, size, size, 3), variants (n, variants, size, size, 3)) for the preview:
    the first training image of each of the first `classes` classes, then `augment_preview`."""
    train_labels = dataset.labels[split.train]
    picks = [int(np.flatnonzero(train_labels == c)[0])
             for c in range(min(dataset.num_classes, classes))]
    originals = load_pixels([dataset.paths[split.train[i]] for i in picks], size)
    return originals, augment_preview(originals, aug, variants=variants, seed=seed)


# ---------------------------------------------------------------------------------------
# The base's weights


@dataclass(frozen=True)
class BaseWeights:
    """Where the base's weights come from (`weights` is what InceptionV3 is given)."""

    weights: str | None       # no-top .h5 path, "imagenet", or None (untrained)
    pretrained: bool
    message: str              # one line for the page

    def key(self, seed: int) -> str:
        """Identifies the base's weights; an untrained base is a function of the seed."""
        return self.weights or f"untrained-seed{seed}"


UNTRAINED_MESSAGE = ("Untrained base: Inception v3 with random weights. Its bottleneck features "
                     "are random projections, so expect far lower accuracy than with ImageNet "
                     "weights.")


def resolve_base_weights(untrained: bool = False) -> BaseWeights:
    """The no-top weights through cnnlab.vision.inception's sourcing (env file, Keras cache);
    without them (or when asked), an untrained base that says so."""
    from cnnlab.vision import inception

    if untrained:
        return BaseWeights(None, False, UNTRAINED_MESSAGE)
    status = inception.weights_status(include_top=False)
    if status.source == "env":
        return BaseWeights(str(status.path), True, status.message)
    if status.source == "cache":
        # Keras finds its cached file (and checks its hash) through the real "imagenet" path.
        return BaseWeights("imagenet", True, status.message)
    return BaseWeights(None, False, f"{UNTRAINED_MESSAGE} {status.message}")


# ---------------------------------------------------------------------------------------
# Base, head, the whole classifier


def build_base(image_size: int, weights: str | None) -> keras.Model:
    """Inception v3 up to the 2048-wide global-average-pooled bottleneck, frozen.

    `weights`: a path to the no-top .h5 file, "imagenet" (Keras downloads it), or None for
    an untrained (randomly initialised) base.
    """
    import keras

    base = keras.applications.InceptionV3(
        include_top=False, weights=weights, input_shape=(image_size, image_size, 3),
        pooling="avg",
    )
    base.trainable = False
    return base


def head_initializer(seed: int):
    import keras

    return keras.initializers.GlorotUniform(seed=seed)


def build_classifier(base: keras.Model, num_classes: int, augmentation: Augmentation,
                     seed: int = 0) -> tuple[keras.Model, keras.Model]:
    """(full model, head model) sharing ONE Dense head layer.

    full:  image in [-1, 1] → augmentation (training only) → base → head (softmax)
    head:  2048 bottleneck features → the same head (what fast mode trains)
    """
    import keras

    if num_classes < 2:
        raise ValueError(f"a classifier needs at least two classes; got {num_classes}")
    size = base.input_shape[1]
    # Standardise each bottleneck feature with the training set's mean and variance (set by
    # `adapt_head`): ImageNet features range over 0..10, an untrained base's over 1e-4, and
    # one learning rate then suits both. Its 2 x 2048 (+1) numbers are not trained.
    standardize = keras.layers.Normalization(axis=-1, name=STANDARDIZE_NAME)
    head = keras.layers.Dense(num_classes, activation="softmax", name=HEAD_NAME,
                              kernel_initializer=head_initializer(seed))
    image = keras.Input(shape=(size, size, 3), name="image")
    x = image
    layers = augmentation_layers(augmentation, seed=seed)
    if layers is not None:
        x = layers(x)
    # training=False keeps BatchNorm in inference mode even once phase 2 unfreezes blocks
    # (Keras' transfer-learning guide): its statistics stay those of the base.
    x = base(x, training=False)
    model = keras.Model(image, head(standardize(x)), name="inception_v3_transfer")
    features = keras.Input(shape=(BOTTLENECK_WIDTH,), name="bottleneck_features")
    head_model = keras.Model(features, head(standardize(features)), name="head_only")
    return model, head_model


def adapt_head(model: keras.Model, train_features: np.ndarray) -> None:
    """Set the head's feature standardisation from the training images' bottleneck features."""
    model.get_layer(STANDARDIZE_NAME).adapt(np.asarray(train_features, dtype=np.float32))


def compile_for_training(model: keras.Model, learning_rate: float) -> None:
    import keras

    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])


def unfreeze_top_blocks(base: keras.Model, blocks: int) -> int:
    """Make the top `blocks` inception blocks trainable (BatchNorm stays frozen).

    Returns how many layers became trainable.
    """
    import keras

    boundary = TOP_BLOCK_BOUNDARY[blocks]
    names = [layer.name for layer in base.layers]
    last_frozen = names.index(boundary)
    base.trainable = True
    unfrozen = 0
    for i, layer in enumerate(base.layers):
        train = i > last_frozen and not isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = train
        unfrozen += bool(train and layer.weights)
    return unfrozen


# ---------------------------------------------------------------------------------------
# Parameter counts


@dataclass(frozen=True)
class ParameterCounts:
    trainable: int
    frozen: int

    @property
    def total(self) -> int:
        return self.trainable + self.frozen


def parameter_counts(model: keras.Model) -> ParameterCounts:
    """Trainable vs frozen (non-trainable) parameters, as Keras counts them."""
    def count(weights) -> int:
        return int(sum(int(np.prod(w.shape)) for w in weights))

    return ParameterCounts(count(model.trainable_weights), count(model.non_trainable_weights))


def head_parameters(num_classes: int) -> int:
    """The new head's trained weights: a 2048 x k kernel plus k biases."""
    return BOTTLENECK_WIDTH * num_classes + num_classes
