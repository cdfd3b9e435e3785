import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from core.shifts import SHIFT_MODES, shift, visible_fraction

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


def _reference(x, dx, dy, fill):
    """Integer shift by slicing: content moves dx right and dy down, uncovered pixels take `fill`."""
    h, w = x.shape[-2:]
    out = torch.empty_like(x)
    out[:] = torch.as_tensor(fill, dtype=x.dtype).view(-1, 1, 1)
    hh, ww = h - abs(dy), w - abs(dx)
    if hh > 0 and ww > 0:
        out[..., max(dy, 0):max(dy, 0) + hh, max(dx, 0):max(dx, 0) + ww] = \
            x[..., max(-dy, 0):max(-dy, 0) + hh, max(-dx, 0):max(-dx, 0) + ww]
    return out


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
    torch.testing.assert_close(out, _reference(img, -2, 1, MEAN_U8), rtol=0, atol=0)


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
def test_affine_equals_torchvision_and_slicing(dtype):
    torch.manual_seed(0)
    img = torch.randint(1, 256, (2, 3, 12, 10), dtype=torch.uint8)
    img = img if dtype == torch.uint8 else img.float() / 255
    for dx, dy in [(0, 0), (1, 0), (0, -1), (3, 5), (-4, 2), (-9, -11), (10, 0), (0, 12), (40, -40)]:
        out = shift(img, dx, dy, "affine")
        tv = TF.affine(img, angle=0, translate=[dx, dy], scale=1, shear=[0, 0])
        assert torch.equal(out, tv), (dx, dy)
        assert torch.equal(out, _reference(img, dx, dy, [0, 0, 0])), (dx, dy)


def test_affine_mean_equals_slicing_for_every_shift():
    img = torch.randint(0, 256, (1, 3, 6, 7), dtype=torch.uint8)
    for dx in range(-8, 9):
        for dy in range(-7, 8):
            assert torch.equal(shift(img, dx, dy, "affine-mean", MEAN), _reference(img, dx, dy, MEAN_U8)), (dx, dy)


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
