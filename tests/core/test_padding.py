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
