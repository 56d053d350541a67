"""The calculator against its oracle: every shape and parameter count equals what Keras
builds. One TensorFlow import for the whole module; the random models are small."""

from __future__ import annotations

import random

import pytest

from cnnlab.calc.analysis import analyze, resolve
from cnnlab.calc.keras_oracle import to_keras
from cnnlab.calc.presets import PRESETS
from cnnlab.calc.spec import LayerSpec, SpecError
from tests.keras_oracle import assert_equals_keras

keras = pytest.importorskip("keras")


def random_stack(rng: random.Random) -> tuple[tuple[int, int, int], list[LayerSpec]]:
    """A random small network: a spatial part (conv, pools, BN, LRN, zero padding, and
    inception-like concat and residual add blocks), then an optional head."""
    shape = (rng.randint(4, 20), rng.randint(4, 20), rng.choice((1, 2, 3)))
    layers: list[LayerSpec] = []
    channels = shape[2]
    prev = "input"
    n = 0

    def add(spec: LayerSpec) -> str:
        nonlocal n
        n += 1
        name = f"l{n}"
        layers.append(LayerSpec(**{**spec.__dict__, "name": name}))
        return name

    def pair(lo: int, hi: int) -> tuple[int, int]:
        if rng.random() < 0.3:
            return rng.randint(lo, hi), rng.randint(lo, hi)
        return (rng.randint(lo, hi),) * 2

    for _ in range(rng.randint(1, 4)):  # small: Keras needs ~10 ms of CPU per layer
        choice = rng.random()
        if choice < 0.35:
            groups = rng.choice((1, 1, 1, 2)) if channels % 2 == 0 else 1
            filters = rng.randint(1, 8) * groups
            prev = add(LayerSpec("conv", filters=filters, kernel=pair(1, 4),
                                 strides=rng.choice((None, pair(1, 3))),
                                 padding=rng.choice(("valid", "same")),
                                 use_bias=rng.random() < 0.8, groups=groups,
                                 activation=rng.choice((None, "relu", "tanh"))))
            channels = filters
        elif choice < 0.5:
            prev = add(LayerSpec(rng.choice(("maxpool", "avgpool")), kernel=pair(1, 3),
                                 strides=rng.choice((None, pair(1, 3))),
                                 padding=rng.choice(("valid", "same"))))
        elif choice < 0.58:
            prev = add(LayerSpec(rng.choice(("batchnorm", "dropout", "activation", "lrn")),
                                 rate=0.25, activation="relu",
                                 depth_radius=rng.randint(0, 3)))
        elif choice < 0.65:
            prev = add(LayerSpec("zeropad", pad=tuple(rng.randint(0, 2) for _ in range(4))))
        elif choice < 0.82:  # inception-like: parallel SAME branches, concatenated
            source = prev
            branches = [add(LayerSpec("conv", filters=rng.randint(1, 6), kernel=(k, k),
                                      padding="same", inputs=(source,)))
                        for k in rng.sample((1, 3, 5), rng.randint(2, 3))]
            if rng.random() < 0.5:
                branches.append(add(LayerSpec("maxpool", kernel=(3, 3), strides=(1, 1),
                                              padding="same", inputs=(source,))))
            prev = add(LayerSpec("concat", inputs=tuple(branches)))
            channels = sum(layer.filters or channels for layer in layers[-len(branches) - 1:-1])
        else:  # residual: two SAME convs keeping the channels, added to the block input
            source = prev
            mid = add(LayerSpec("conv", filters=rng.randint(1, 6), kernel=(3, 3),
                                padding="same", activation="relu", inputs=(source,)))
            out = add(LayerSpec("conv", filters=channels, kernel=(3, 3), padding="same",
                                inputs=(mid,)))
            prev = add(LayerSpec("add", inputs=(source, out)))
    head = rng.random()
    if head < 0.4:
        add(LayerSpec("flatten"))
        add(LayerSpec("dense", units=rng.randint(1, 10), activation="softmax",
                      use_bias=rng.random() < 0.8))
    elif head < 0.7:
        add(LayerSpec(rng.choice(("globalavgpool", "globalmaxpool"))))
        if rng.random() < 0.3:
            add(LayerSpec("batchnorm"))  # on a vector
        add(LayerSpec("dense", units=rng.randint(1, 10)))
    elif head < 0.8:
        add(LayerSpec("dense", units=rng.randint(1, 5)))  # Dense on H x W x C: last axis
    return shape, layers


def test_random_stacks_match_keras():
    rng = random.Random(20240611)
    checked = rejected = 0
    kinds: set[str] = set()
    while checked < 200:
        input_shape, layers = random_stack(rng)
        try:
            analyze(input_shape, layers)
        except SpecError as error:
            # Too small for its kernels: Keras must refuse it as well.
            assert "larger than" in str(error), error
            rejected += 1
            continue
        assert_equals_keras(input_shape, layers)
        kinds |= {spec.kind for spec in layers}
        checked += 1
    assert kinds >= {"conv", "maxpool", "avgpool", "dense", "flatten", "globalavgpool",
                     "batchnorm", "dropout", "activation", "lrn", "zeropad", "concat", "add"}
    assert rejected > 0  # the generator also produced impossible stacks


@pytest.mark.parametrize("name", [n for n in PRESETS if n != "VGG16"])
def test_presets_match_keras(name):
    assert_equals_keras(*PRESETS[name])


def test_seed_exercise_matches_keras_layer_by_layer():
    input_shape, layers = PRESETS["seed exercise"]
    model = assert_equals_keras(input_shape, layers)
    assert [layer.count_params() for layer in model.layers[1:]] == [2_800, 180_200, 720_400]
    assert model.count_params() == 903_400


@pytest.mark.slow
def test_vgg16_equals_keras_applications():
    input_shape, layers = PRESETS["VGG16"]
    stats = analyze(input_shape, layers)
    reference = keras.applications.VGG16(weights=None)
    assert stats.total_params == reference.count_params() == 138_357_544
    # every layer's shape and parameters, by Keras' own layer names
    assert_equals_keras(input_shape, layers, model=reference)


def test_lrn_layer_normalizes_and_round_trips(tmp_path):
    import numpy as np

    from cnnlab.nets.layers import LocalResponseNormalization

    x = np.random.default_rng(0).normal(size=(1, 2, 2, 7)).astype("float32")
    layer = LocalResponseNormalization(depth_radius=2, bias=1.0, alpha=2e-5, beta=0.75)
    y = np.asarray(layer(x))
    # By hand: y_c = x_c / (bias + alpha * sum_{|d - c| <= r} x_d^2) ** beta
    sq = np.pad(x**2, ((0, 0), (0, 0), (0, 0), (2, 2)))
    window = sum(sq[..., i:i + 7] for i in range(5))
    np.testing.assert_allclose(y, x / (1.0 + 2e-5 * window) ** 0.75, rtol=1e-5)
    assert layer.count_params() == 0
    input_shape, layers = (8, 8, 4), [LayerSpec("lrn", depth_radius=1, alpha=0.5),
                                      LayerSpec("flatten")]
    model = to_keras(input_shape, layers)
    path = tmp_path / "lrn.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.get_layer("lrn1").get_config()["alpha"] == 0.5
    probe = np.ones((1, 8, 8, 4), "float32")
    np.testing.assert_allclose(loaded(probe), model(probe), rtol=1e-6)


def test_to_keras_raises_spec_error_not_keras_error():
    with pytest.raises(SpecError, match=r"layer 1 \(conv1\): kernel 7x7 is larger"):
        to_keras((5, 5, 3), [LayerSpec("conv", filters=4, kernel=(7, 7))])


def test_resolved_names_are_keras_names():
    input_shape, layers = PRESETS["seed MNIST CNN"]
    model = assert_equals_keras(input_shape, layers)
    assert [layer.name for layer in model.layers[1:]] == [s.name for s in resolve(layers)]


def test_cli_json_params_equal_keras_count_params(capsys):
    import json

    from cnnlab.__main__ import main
    from cnnlab.calc.grammar import parse_layer

    texts = ["conv:6:5:act=tanh", "avgpool:2", "conv:16:5:1:same", "maxpool:3:2:same",
             "batchnorm", "dropout:0.25", "flatten", "dense:10:act=softmax"]
    argv = ["calc", "--input", "32x32x1", "--json"]
    for text in texts:
        argv += ["--layer", text]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    model = assert_equals_keras((32, 32, 1), [parse_layer(t) for t in texts])
    assert result["total_params"] == model.count_params()
    assert [layer["params"] for layer in result["layers"]] == \
        [layer.count_params() for layer in model.layers[1:]]
    assert [layer["output_shape"] for layer in result["layers"]] == \
        [list(layer.output.shape[1:]) for layer in model.layers[1:]]


@pytest.mark.parametrize("input_shape, layers", [
    ((5, 5, 3), [LayerSpec("conv", filters=4, kernel=(7, 7))]),
    ((4, 9, 3), [LayerSpec("maxpool", kernel=(5, 5))]),
    ((8, 8, 3), [LayerSpec("conv", filters=4, kernel=(1, 1), groups=2)]),
    ((8, 8, 3), [LayerSpec("conv", "a", filters=2), LayerSpec("conv", "b", filters=2,
                                                              kernel=(3, 3)),
                 LayerSpec("concat", inputs=("a", "b"))]),
    ((8, 8, 3), [LayerSpec("conv", "a", filters=2), LayerSpec("conv", "b", filters=3),
                 LayerSpec("add", inputs=("a", "b"))]),
    ((8, 8, 3), [LayerSpec("flatten"), LayerSpec("conv", filters=2, kernel=(1, 1))]),
])
def test_what_the_calculator_rejects_keras_cannot_build(input_shape, layers):
    from cnnlab.calc.keras_oracle import build_unchecked

    with pytest.raises(SpecError):
        analyze(input_shape, layers)
    with pytest.raises(Exception):  # noqa: B017  (Keras raises ValueError or TF errors)
        build_unchecked(input_shape, resolve(layers))
