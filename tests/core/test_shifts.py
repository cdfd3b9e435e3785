import pytest
import torch

from padlens.core.shifts import SHIFT_MODES, affine_shift, shift, shifted_copies, visible_fraction

MEAN = (0.49, 0.48, 0.45)
MEAN_U8 = [round(255 * c) for c in MEAN]          # [125, 122, 115]


def _dot(h=16, w=16, y=6, x=7, dtype=torch.uint8):
    """A black image with one bright pixel, different per channel, at row y, column x."""
    img = torch.zeros(1, 3, h, w, dtype=dtype)
    img[0, :, y, x] = torch.tensor([200, 150, 100], dtype=dtype) if dtype == torch.uint8 \
        else torch.tensor([0.8, 0.6, 0.4], dtype=dtype)
    return img


def _where(img):
    return [tuple(p) for p in torch.nonzero(img[0, 0] == img.max()).tolist()]   # (row, col)


@pytest.mark.parametrize("mode", list(SHIFT_MODES))
@pytest.mark.parametrize("dx, dy, where", [(3, 0, (6, 10)), (0, 4, (10, 7)), (-5, 3, (9, 2)), (2, -6, (0, 9))])
def test_direction(mode, dx, dy, where):
    img = _dot()
    out = shift(img, dx, dy, mode, MEAN)
    assert _where(out) == [where]                    # dx > 0 right, dy > 0 down
    torch.testing.assert_close(out[0, :, where[0], where[1]], img[0, :, 6, 7], rtol=0, atol=0)
    assert out.shape == img.shape and out.dtype == img.dtype


def test_affine_fills_black():
    img = torch.full((1, 3, 8, 8), 90, dtype=torch.uint8)
    out = shift(img, 3, -2, "affine")
    assert (out[..., :, :3] == 0).all() and (out[..., 6:, :] == 0).all()     # uncovered: left 3, bottom 2
    assert (out[..., :6, 3:] == 90).all()
    assert int((out == 0).sum()) == 3 * (64 - 5 * 6)


def test_affine_mean_fills_the_mean_color_uint8():
    img = torch.full((2, 3, 8, 8), 7, dtype=torch.uint8)
    out = shift(img, -2, 1, "affine-mean", MEAN)
    for c in range(3):
        assert (out[:, c, 0, :] == MEAN_U8[c]).all()       # top row uncovered
        assert (out[:, c, :, 6:] == MEAN_U8[c]).all()      # right two columns uncovered
        assert (out[:, c, 1:, :6] == 7).all()
    assert torch.equal(out, affine_shift(img, -2, 1, MEAN_U8))


def test_affine_mean_float_fills_the_mean_itself():
    img = torch.ones(1, 3, 8, 8)
    out = shift(img, 0, -3, "affine-mean", MEAN)
    torch.testing.assert_close(out[0, :, 5:, :], torch.tensor(MEAN).view(3, 1, 1).expand(3, 3, 8))
    assert (out[0, :, :5] == 1).all()


def test_affine_mean_needs_a_mean():
    with pytest.raises(ValueError, match="mean"):
        shift(_dot(), 1, 1, "affine-mean")


def test_roll_wraps_and_loses_nothing():
    img = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8)
    out = shift(img, 3, -2, "roll")
    assert _where(shift(_dot(), 12, 13, "roll")) == [(3, 3)]          # (6+13) % 16, (7+12) % 16
    assert torch.equal(out[..., 0, 3], img[..., 2, 0])               # row 2 wrapped up to row 0
    assert torch.equal(out[..., 5, 0], img[..., 7, 5])               # columns 5.. wrapped to the left
    assert torch.equal(torch.sort(out.flatten()).values, torch.sort(img.flatten()).values)
    assert torch.equal(shift(out, -3, 2, "roll"), img)


def test_unknown_mode():
    with pytest.raises(ValueError, match="shift mode"):
        shift(_dot(), 1, 0, "wrap")


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
@pytest.mark.parametrize("mode", ["affine", "affine-mean"])
def test_the_fast_shift_is_torchvision_affine_bit_for_bit(dtype, mode):
    """Every integer shift across (and beyond) a 32x32 frame, and an odd-sized frame."""
    torch.manual_seed(0)
    for h, w, reach in [(32, 32, 34), (7, 9, 10)]:
        img = torch.randint(1, 256, (2, 3, h, w), dtype=torch.uint8)
        img = img if dtype == torch.uint8 else img.float() / 255
        fill = 0.0 if mode == "affine" else (MEAN_U8 if dtype == torch.uint8 else list(MEAN))
        shifts = [(dx, dy) for dx in range(-reach, reach + 1) for dy in range(-reach, reach + 1, 3)]
        many = shifted_copies(img, shifts, mode, MEAN).view(len(shifts), *img.shape)
        for k, (dx, dy) in enumerate(shifts):
            ref = affine_shift(img, dx, dy, fill)
            assert torch.equal(many[k], ref) and torch.equal(shift(img, dx, dy, mode, MEAN), ref), (h, dx, dy)


def test_non_integer_shifts_go_through_torchvision():
    img = torch.rand(1, 3, 8, 8)
    assert torch.equal(shift(img, 1.5, 0.0), affine_shift(img, 1.5, 0.0))


def test_visible_fraction():
    assert visible_fraction(0, 0) == 1.0
    assert visible_fraction(4, 0) == 28 / 32
    assert visible_fraction(-4, 8) == 28 * 24 / 32 ** 2
    assert visible_fraction(32, 0) == 0.0 and visible_fraction(-40, 3) == 0.0
    assert visible_fraction(2, 2, size=8) == 36 / 64
    assert visible_fraction(30, -30, mode="roll") == 1.0
    img = torch.ones(1, 3, 32, 32)
    for dx, dy in [(5, -3), (-17, 20)]:                      # agrees with what shift leaves in the frame
        assert shift(img, dx, dy).mean().item() == pytest.approx(visible_fraction(dx, dy))
