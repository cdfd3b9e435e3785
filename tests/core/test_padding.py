import numpy as np
import pytest
import torch

from padlens.core.model import ModelConfig, build_model
from padlens.core.padding import PADDING_MODES, make_conv, symmetric_pad


@pytest.mark.parametrize("pad", [(1, 1, 1, 1), (2, 1, 0, 3), (3, 3, 2, 2)])
def test_symmetric_matches_numpy(pad):
    x = torch.arange(2 * 3 * 5 * 4, dtype=torch.float32).view(2, 3, 5, 4)
    left, right, top, bottom = pad
    want = np.pad(x.numpy(), ((0, 0), (0, 0), (top, bottom), (left, right)), mode="symmetric")
    np.testing.assert_array_equal(symmetric_pad(x, pad).numpy(), want)


def test_symmetric_too_large_is_refused():
    with pytest.raises(ValueError, match="larger than the input"):
        symmetric_pad(torch.zeros(1, 1, 2, 2), (3, 3, 3, 3))


def test_symmetric_equals_replicate_for_3x3_padding_1():
    torch.manual_seed(0)
    sym, rep = make_conv(3, 4, padding_mode="symmetric"), make_conv(3, 4, padding_mode="replicate")
    rep.load_state_dict(sym.state_dict())
    x = torch.randn(2, 3, 9, 9)
    torch.testing.assert_close(sym(x), rep(x))
    sym5 = make_conv(3, 4, kernel_size=5, padding=2, padding_mode="symmetric")
    rep5 = make_conv(3, 4, kernel_size=5, padding=2, padding_mode="replicate")
    rep5.load_state_dict(sym5.state_dict())
    assert not torch.allclose(sym5(x), rep5(x)), "with padding 2 symmetric and replicate must differ"


@pytest.mark.parametrize("mode", PADDING_MODES)
def test_every_mode_builds_and_pads_as_named(mode):
    model = build_model(ModelConfig(widths=(8, 8, 8), stem_width=6, padding_mode=mode)).eval()
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(c.padding_mode == mode for c in convs)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    # a constant input through one conv: only zero padding makes the border differ from the center
    conv = make_conv(1, 1, padding_mode=mode)
    with torch.no_grad():
        conv.weight.fill_(1.0)
    y = conv(torch.ones(1, 1, 6, 6))[0, 0]
    assert (y[0, 0] != y[3, 3]).item() == (mode == "zeros")


def test_unknown_mode_names_the_choices():
    with pytest.raises(ValueError, match="reflect"):
        make_conv(3, 3, padding_mode="mirror")


def test_partial_conv_of_a_constant_is_constant_where_zero_padding_darkens_the_border():
    zeros, partial = make_conv(1, 1, padding_mode="zeros"), make_conv(1, 1, bias=True, padding_mode="partial")
    with torch.no_grad():
        zeros.weight.fill_(1.0)
        partial.weight.fill_(1.0)
        partial.bias.fill_(0.5)
    x = torch.full((1, 1, 7, 5), 2.0)
    torch.testing.assert_close(partial(x), torch.full((1, 1, 7, 5), 9 * 2.0 + 0.5))
    z = zeros(x)[0, 0]
    assert (z[0, 0].item(), z[0, 2].item(), z[3, 2].item()) == (4 * 2.0, 6 * 2.0, 9 * 2.0)


@pytest.mark.parametrize("kernel,padding,stride", [(3, 1, 1), (5, 2, 1), (3, 1, 2)])
def test_partial_conv_matches_a_direct_computation(kernel, padding, stride):
    """Per output pixel: the sum over the real input pixels under the kernel, times kernel area / their
    count, plus the bias (not re-weighted)."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(2, 3, kernel, stride=stride, padding=padding, bias=True)
    partial = make_conv(2, 3, kernel, padding, bias=True, padding_mode="partial")
    partial.stride = (stride, stride)
    partial.load_state_dict(conv.state_dict())
    x = torch.randn(2, 2, 7, 6, dtype=torch.float64)
    w, b = conv.weight.detach().double().numpy(), conv.bias.detach().double().numpy()
    xp = np.pad(x.numpy(), ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    real = np.pad(np.ones((7, 6)), padding)
    out_h, out_w = (7 + 2 * padding - kernel) // stride + 1, (6 + 2 * padding - kernel) // stride + 1
    want = np.zeros((2, 3, out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            rows, cols = slice(i * stride, i * stride + kernel), slice(j * stride, j * stride + kernel)
            n_real = real[rows, cols].sum()
            want[:, :, i, j] = np.einsum("ncyx,ocyx->no", xp[:, :, rows, cols], w) * kernel * kernel / n_real + b
    np.testing.assert_allclose(partial.double()(x).detach().numpy(), want, rtol=1e-10, atol=1e-12)
    inside = (slice(None), slice(None), slice(2, -2), slice(2, -2))   # away from the border: plain zero padding
    if stride == 1:
        torch.testing.assert_close(partial(x)[inside], conv.double()(x)[inside])
