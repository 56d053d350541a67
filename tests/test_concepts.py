"""The three live experiments, with Keras / numpy as the oracle."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data

from cnnlab.nets import concepts as C


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return skimage.data.chelsea()


@pytest.fixture(scope="module")
def maps(photo) -> np.ndarray:
    return C.feature_maps(C.prepare_photo(photo, 96))


def test_prepare_photo_crops_and_scales(photo):
    out = C.prepare_photo(photo, 64)
    assert out.shape == (64, 64, 3) and out.dtype == np.float32
    assert 0 <= out.min() and out.max() <= 255 and out.max() > 100
    assert C.prepare_photo(skimage.data.camera(), 32).shape == (32, 32, 3)  # grey photo
    with pytest.raises(ValueError, match="shape"):
        C.prepare_photo(np.zeros((4, 4, 7), np.uint8))


def test_feature_maps_are_relu_gabor_responses(maps):
    assert maps.shape == (96, 96, 8)
    assert maps.min() >= 0 and maps.max() == pytest.approx(255, rel=1e-4)
    flat = C.feature_maps(np.full((32, 32, 3), 120, np.float32))
    # zero-mean filters and mirrored borders: a flat photo has no edges anywhere
    assert np.abs(flat).max() < 1e-3


def test_dense_vs_conv_params_formula_equals_keras():
    import keras

    counts = C.dense_vs_conv_params(12, 10, 3, filters=4, kernel=3, units=7)
    conv = keras.layers.Conv2D(4, 3, padding="same")
    conv.build((None, 12, 10, 3))
    dense = keras.layers.Dense(7)
    dense.build((None, 12 * 10 * 3))
    full = keras.layers.Dense(12 * 10 * 4)
    full.build((None, 12 * 10 * 3))
    assert counts == {"conv": conv.count_params(), "dense_units": dense.count_params(),
                      "dense_same_output": full.count_params()}
    big = C.dense_vs_conv_params(224, 224, 3, filters=32)
    assert big["conv"] == 896 and big["dense_same_output"] > 10**11


@pytest.mark.parametrize("dy, dx", [(3, -2), (0, 6), (-8, 8)])
def test_conv_maps_shift_with_the_image_dense_do_not(photo, dy, dx):
    result = C.shift_experiment(photo, dy, dx, size=32)
    assert result.conv_equivariance > 0.999
    assert abs(result.dense_equivariance) < 0.3
    assert result.conv_params == 5 * 5 + 1
    assert result.dense_params == 32**4 + 32**2
    # the window really moved: the shifted input is not the original
    assert not np.allclose(result.image, result.shifted)
    # and the conv map moved with it: shifted map == original map rolled, inside the borders
    inner = slice(2 + max(abs(dy), abs(dx)), 32 - 2 - max(abs(dy), abs(dx)))
    rolled = np.roll(result.conv_map, (-dy, -dx), axis=(0, 1))
    np.testing.assert_allclose(result.conv_map_shifted[inner, inner], rolled[inner, inner],
                               atol=1e-3)


def test_shift_beyond_margin_is_refused(photo):
    with pytest.raises(ValueError, match="margin"):
        C.shift_experiment(photo, 9, 0)


@pytest.mark.parametrize("kernel, stride, c_out", [(2, 2, None), (3, 2, 16)])
def test_max_pool_has_no_parameters_strided_conv_has_many(maps, kernel, stride, c_out):
    result = C.pool_vs_strided_conv(maps, kernel, stride, c_out)
    c_in = maps.shape[-1]
    c_out = c_out or c_in
    assert result.pool_params == 0
    assert result.conv_params == kernel * kernel * c_in * c_out + c_out
    assert result.pooled.shape == (48, 48, c_in)
    assert result.strided.shape == (48, 48, c_out)
    assert result.conv_formula.endswith(f"{result.conv_params:,}")
    if kernel == 2:  # numpy oracle for non-overlapping windows
        expected = maps.reshape(48, 2, 48, 2, c_in).max(axis=(1, 3))
        np.testing.assert_allclose(result.pooled, expected)


def test_lrn_equals_the_formula(maps):
    for radius, bias, alpha, beta in [(2, 2.0, 1e-4, 0.75), (0, 1.0, 1e-3, 0.5), (5, 0.5, 1e-2, 1)]:
        np.testing.assert_allclose(C.lrn(maps, radius, bias, alpha, beta),
                                   C.lrn_reference(maps, radius, bias, alpha, beta), rtol=1e-4,
                                   atol=1e-4)


def test_lrn_inhibits_by_neighbours(maps):
    identity = C.lrn(maps, 2, 1.0, 0.0, 0.75)  # 1 / 1**beta: nothing changes
    np.testing.assert_allclose(identity, maps, rtol=1e-6)
    weak, strong = C.lrn(maps, 2, 2.0, 1e-5, 0.75), C.lrn(maps, 2, 2.0, 1e-3, 0.75)
    assert strong.sum() < weak.sum()
    # depth_radius 0: a channel is normalised only by itself, its neighbours do not matter
    alone = C.lrn(maps, 0, 2.0, 1e-3, 0.75)
    changed = maps.copy()
    changed[..., 1] *= 3
    np.testing.assert_allclose(C.lrn(changed, 0, 2.0, 1e-3, 0.75)[..., 0], alone[..., 0])
    assert not np.allclose(C.lrn(changed, 2, 2.0, 1e-3, 0.75)[..., 0],
                           C.lrn(maps, 2, 2.0, 1e-3, 0.75)[..., 0])


def test_lrn_experiment_reports_what_the_page_shows(maps):
    result = C.lrn_experiment(maps, **{"depth_radius": 2, "bias": 2.0, "alpha": 1e-4,
                                       "beta": 0.75})
    assert result.max_abs_error < 1e-3
    assert 0 < result.kept < 1
    assert result.mean_after.shape == (8,) and (result.mean_after < result.mean_before).all()
    y, x = result.pixel
    assert result.pixel_before.max() == maps.max(axis=-1)[4:-4, 4:-4].max()
    np.testing.assert_allclose(result.pixel_after, result.after[y, x])
    c = result.strongest_channel
    window = maps[y, x, max(0, c - 2):c + 3]
    assert result.divisor == pytest.approx((2.0 + 1e-4 * float((window**2).sum())) ** 0.75,
                                           rel=1e-4)
    assert result.quiet_divisor == pytest.approx(2.0**0.75)
    assert result.divisor > result.quiet_divisor


def test_bad_lrn_arguments():
    with pytest.raises(ValueError, match="depth_radius"):
        C.check_lrn_args(-1, 1.0, 1e-4, 0.75)
    with pytest.raises(ValueError, match="divide by zero"):
        C.check_lrn_args(2, 0.0, 0.0, 0.75)
