"""The mosaic and its click mapping: every pixel of every tile maps back to its channel and pixel, gaps and the
empty tail of the last row map to None, for one map, 512 maps and non-square maps."""
import numpy as np
import pytest

from padlens.core.mosaic import grid_shape, mosaic, scale_maps, tile_at


@pytest.mark.parametrize("n", [1, 2, 3, 5, 10, 17, 64, 96, 100, 384, 512])
def test_grid_shape_holds_every_channel_close_to_square_wider_than_tall(n):
    rows, cols = grid_shape(n)
    assert rows * cols >= n and (rows - 1) * cols < n, "room for every channel, and no empty row"
    assert 0 <= cols - rows <= 1, "close to square, wider than tall"


@pytest.mark.parametrize("n, h, w, gap", [(1, 4, 4, 1), (3, 1, 7, 1), (5, 3, 2, 1), (7, 5, 3, 2), (10, 4, 6, 0),
                                          (512, 4, 4, 1)])
def test_every_mosaic_pixel_maps_back_to_its_channel_and_pixel(n, h, w, gap):
    maps = np.arange(n * h * w, dtype=np.float32).reshape(n, h, w)   # every value says where it came from
    img, rows, cols = mosaic(maps, gap)
    assert (rows, cols) == grid_shape(n)
    assert img.shape == (rows * (h + gap) - gap, cols * (w + gap) - gap)
    seen = np.zeros((n, h, w), dtype=int)
    for y in range(img.shape[0]):
        for x in range(img.shape[1]):
            hit = tile_at(y + 0.5, x + 0.5, h, w, rows, cols, n, gap)   # a click anywhere inside the pixel
            assert (hit is None) == np.isnan(img[y, x]), (y, x, hit)
            if hit is not None:
                k, ty, tx = hit
                assert img[y, x] == maps[k, ty, tx] and tile_at(y, x, h, w, rows, cols, n, gap) == hit
                seen[k, ty, tx] += 1
    assert (seen == 1).all(), "each pixel of each map is in the mosaic exactly once"


def test_gaps_the_empty_tail_and_outside_map_to_none():
    n, h, w = 5, 3, 4                       # 2 x 3 tiles: the last tile of the second row is empty
    img, rows, cols = mosaic(np.zeros((n, h, w), np.float32), gap=1)
    assert (rows, cols) == (2, 3)
    assert tile_at(h, 0, h, w, rows, cols, n) is None                # the gap row between the tile rows
    assert tile_at(0, w, h, w, rows, cols, n) is None                # the gap column
    assert tile_at(h + 1, 2 * (w + 1), h, w, rows, cols, n) is None  # where a sixth channel would be
    assert np.isnan(img[h + 1:, 2 * (w + 1):]).all()
    for y, x in [(-0.5, 0), (0, -0.01), (img.shape[0], 0), (0, img.shape[1]), (1e6, 1e6)]:
        assert tile_at(y, x, h, w, rows, cols, n) is None, (y, x)
    assert tile_at(h + 1, 2 * (w + 1) - 2, h, w, rows, cols, n) == (4, 0, w - 1)   # the last channel's edge


def test_one_map_is_the_map_itself():
    m = np.random.default_rng(0).random((1, 6, 9), dtype=np.float32)
    img, rows, cols = mosaic(m)
    assert (rows, cols) == (1, 1)
    np.testing.assert_array_equal(img, m[0])


@pytest.mark.parametrize("scale", ["per map", "per layer", "fixed"])
def test_scaled_maps_lie_in_0_1_and_a_constant_map_is_grey(scale):
    rng = np.random.default_rng(1)
    maps = np.concatenate([rng.normal(3, 2, (3, 4, 5)), np.full((1, 4, 5), 7.0)]).astype(np.float32)
    out = scale_maps(maps, scale, fixed=(0.0, 5.0))
    assert out.shape == maps.shape and out.dtype == np.float32 and np.isfinite(out).all()
    assert out.min() >= 0 and out.max() <= 1
    if scale == "per map":
        np.testing.assert_allclose(out[:3].min(axis=(1, 2)), 0)
        np.testing.assert_allclose(out[:3].max(axis=(1, 2)), 1)
        assert (out[3] == 0.5).all()
    elif scale == "per layer":
        assert out.min() == 0 and out.max() == 1
        np.testing.assert_allclose(out, (maps - maps.min()) / (maps.max() - maps.min()), rtol=1e-6)
    else:
        np.testing.assert_allclose(out, np.clip(maps / 5, 0, 1), rtol=1e-6)


def test_an_unknown_scale_names_the_choices():
    with pytest.raises(ValueError, match="per map"):
        scale_maps(np.zeros((1, 2, 2)), "log")
