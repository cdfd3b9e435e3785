import math

import pytest
import torch
from torch import nn

from padlens.core.activations import capture
from padlens.core.layers import iter_paths
from padlens.core.model import ModelConfig, build_model
from padlens.core.layers import is_container
from padlens.core.spatial_bias import (bias_table, border_bias, check_input_size, filter_asymmetry,
                                       format_padding_arithmetic, layer_biases, mean_filters, mean_map,
                                       padding_arithmetic, region_deviations, ring_width)


def _model(mode: str) -> nn.Sequential:
    torch.manual_seed(0)
    m = build_model(ModelConfig(widths=(8, 16, 16), stem_width=6, padding_mode=mode))
    for mod in m.modules():   # random statistics: the constant survives only through the padding mode
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 2.0)
            mod.bias.data.uniform_(-0.5, 0.5)
    return m.eval()


def _conv_paths(model):
    return [p for p, m in iter_paths(model) if isinstance(m, nn.Conv2d)]


# --- the measures themselves --------------------------------------------------------------------------

def test_mean_map_averages_channels():
    act = torch.stack([torch.zeros(4, 5), torch.ones(4, 5) * 3, torch.arange(20.).view(4, 5)])
    torch.testing.assert_close(mean_map(act), (3 + torch.arange(20.).view(4, 5)) / 3)
    with pytest.raises(ValueError, match=r"\[C,H,W\]"):
        mean_map(torch.zeros(4, 5))


def test_border_bias_by_hand():
    m = torch.zeros(8, 8)
    m[0, :] = m[-1, :] = m[:, 0] = m[:, -1] = 1.0      # ring width 1 for 8 pixels: 28 ones, center 0
    assert border_bias(m) == pytest.approx(1 / math.sqrt(28 / 64), rel=1e-12)
    assert border_bias(-m, signed=True) == pytest.approx(-1 / math.sqrt(28 / 64), rel=1e-12)
    assert border_bias(m * 1e-3) == pytest.approx(border_bias(m), rel=1e-9)   # scale-free
    # 16 rows x 8 columns: 2 ring rows at top and bottom, 1 ring column at the left and right
    assert (ring_width(16), ring_width(8), ring_width(5)) == (2, 1, 1)
    r = torch.full((16, 8), 2.0)
    r[2:14, 1:7] = 4.0                                 # center 12x6 = 72 pixels at 4, ring 56 at 2
    rms = math.sqrt((72 * 16 + 56 * 4) / 128)
    assert border_bias(r) == pytest.approx(2 / rms, rel=1e-12)
    r[1, 3] = 4.0                                      # a second-row pixel is ring for H=16
    assert border_bias(r) < 2 / rms


@pytest.mark.parametrize("size", [(1, 1), (2, 2), (3, 3), (5, 9), (32, 32)])
def test_constant_maps_have_exactly_zero_bias(size):
    for value in (0.0, 1.7, -3e-5, 123456.0):
        b = border_bias(torch.full(size, value))
        if min(size) < 3:
            assert math.isnan(b), "maps without a center are undefined"
        else:
            assert b == 0.0


def test_small_maps_are_undefined_and_layer_biases_skips_flat():
    acts = {(0,): torch.randn(4, 2, 2), (1,): torch.randn(4, 6, 6), (2,): torch.randn(10)}
    b = layer_biases(acts)
    assert set(b) == {(0,), (1,)}
    assert math.isnan(b[(0,)]) and b[(1,)] == pytest.approx(border_bias(acts[(1,)].mean(0)))


def test_filter_asymmetry():
    sym = torch.tensor([[1., 2., 1.], [2., 5., 2.], [1., 2., 1.]])
    assert filter_asymmetry(sym) == 0.0
    assert math.isnan(filter_asymmetry(torch.zeros(3, 3))) and filter_asymmetry(torch.ones(1, 1)) == 0.0
    left = torch.zeros(3, 3)
    left[:, 0] = 1.0                                   # left-right 1, top-bottom 0, rms sqrt(3/9)
    assert filter_asymmetry(left) == pytest.approx(1 / math.sqrt(1 / 3), rel=1e-12)
    assert filter_asymmetry(left * 7) == pytest.approx(filter_asymmetry(left), rel=1e-12)


# --- constant input through the network ---------------------------------------------------------------

@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular", "symmetric"])
def test_non_zero_padding_keeps_a_constant_input_constant(mode):
    model = _model(mode)
    acts, _ = capture(model, torch.full((1, 3, 32, 32), 0.8))
    biases = layer_biases(acts)
    defined = {p: b for p, b in biases.items() if not math.isnan(b)}
    assert set(_conv_paths(model)) <= set(defined)
    assert {p for p, b in biases.items() if math.isnan(b)} == {(4, 0)}   # the 1x1 global pool only
    for p, b in defined.items():
        assert b < 1e-5, f"{mode}: layer {p} has border bias {b}"
        spread = acts[p].amax((1, 2)) - acts[p].amin((1, 2))
        assert spread.abs().max() <= 1e-5 * (1 + acts[p].abs().max()), f"{mode}: layer {p} is not constant"


def test_zero_padding_biases_the_border():
    model = _model("zeros")
    acts, _ = capture(model, torch.full((1, 3, 32, 32), 0.8))
    biases = layer_biases(acts)
    convs = _conv_paths(model)
    assert len(convs) == 7
    for p in convs:
        assert biases[p] > 0.01, f"zero padding should bias conv {p}, got {biases[p]}"


def test_bias_table_has_one_row_per_layer_with_every_measure():
    """The one table the CLI prints, the report stores and the Spatial bias tab shows."""
    model = _model("zeros")
    blank, _ = capture(model, torch.zeros(1, 3, 36, 36))
    black, _ = capture(model, torch.full((1, 3, 36, 36), -2.0))
    rows = bias_table(model, {"zeros": blank, "black": black}, 36)
    leaves = [p for p, m in iter_paths(model) if not is_container(m) and p in blank]
    assert [r["path"] for r in rows] == leaves
    kernels, arith = mean_filters(model), {tuple(a["path"]): a for a in padding_arithmetic(model, 36)}
    for r in rows:
        act = blank[r["path"]]
        assert r["shape"] == list(act.shape)
        if act.dim() == 3:
            m = mean_map(act)
            assert r["size"] == list(m.shape) and r["zeros_regions"] == region_deviations(m)
            assert r["zeros"] == border_bias(m) or math.isnan(r["zeros"]) and math.isnan(border_bias(m))
            assert r["black_signed"] == border_bias(mean_map(black[r["path"]]), signed=True) or math.isnan(r["black"])
        else:                                   # the head's logits: no map
            assert r["size"] is None and math.isnan(r["zeros"])
        k = kernels.get(r["path"])
        assert r["filter_asymmetry"] == (filter_asymmetry(k) if k is not None else None)
        a = arith.get(r["path"])
        assert r["padding_arithmetic"] == ((("UNEVEN: " if a["uneven"] else "") + a["note"]) if a else "")
    assert any(r["padding_arithmetic"].startswith("UNEVEN: ") for r in rows)     # 9x9 -> 4x4 at 36
    maps_only = bias_table(model, {"zeros": {p: mean_map(a) for p, a in blank.items() if a.dim() == 3}}, 36)
    by_path = {r["path"]: r for r in rows}
    assert maps_only and all(r["zeros_worst_region"] == by_path[r["path"]]["zeros_worst_region"] for r in maps_only)


# --- mean filters -------------------------------------------------------------------------------------

def test_mean_filters_shapes_and_values():
    model = _model("zeros")
    filters = mean_filters(model)
    assert list(filters) == _conv_paths(model)
    assert all(k.shape == (3, 3) for k in filters.values())
    torch.testing.assert_close(filters[(1, 0)], model[1][0].weight.detach().mean((0, 1)))
    five = nn.Sequential(nn.Conv2d(3, 2, 5), nn.Sequential(nn.ReLU(), nn.Conv2d(2, 4, (1, 3))))
    assert {p: tuple(k.shape) for p, k in mean_filters(five).items()} == {(0,): (5, 5), (1, 1): (1, 3)}


def test_filters_that_cancel_have_no_asymmetry():
    """A whitening stem of +/- filter pairs: its float32 mean kernel is rounding noise, which scored ~1.15."""
    torch.manual_seed(0)
    half = torch.randn(4, 3, 3, 3)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(3, 8, 3))
    with torch.no_grad():
        for conv, lean in zip(model, (1e-5, 1e-2)):      # mean |w| ~0.8: 1e-5 is below 1e-3 of it, 1e-2 is not
            conv.weight.copy_(torch.cat([half, -half]))
            conv.weight[..., 0] += lean
    filters = mean_filters(model)
    assert torch.equal(filters[(0,)], torch.zeros(3, 3)) and math.isnan(filter_asymmetry(filters[(0,)]))
    torch.testing.assert_close(filters[(1,)][:, 0], torch.full((3,), 1e-2))
    assert filter_asymmetry(filters[(1,)]) == pytest.approx(math.sqrt(3), rel=1e-4)   # left column only


# --- padding arithmetic -------------------------------------------------------------------------------

def test_padding_arithmetic_even_at_32():
    model = _model("zeros")
    rows = padding_arithmetic(model, 32)
    assert [r["path"] for r in rows] == [p for p, m in iter_paths(model)
                                         if isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.AdaptiveMaxPool2d))]
    assert not any(r["uneven"] for r in rows)
    assert all(r["note"].endswith("even") and "dropped" not in r["note"] for r in rows)
    conv = rows[0]
    assert conv["path"] == (0, 0) and conv["input"] == conv["output"] == (32, 32) and conv["pads"]
    assert conv["note"] == "32x32 -> 32x32: pads 1 px on every side (zeros); even"
    pools = [r for r in rows if r["type"] == "MaxPool2d"]
    assert [(r["input"], r["output"]) for r in pools] == [((32, 32), (16, 16)), ((16, 16), (8, 8)),
                                                         ((8, 8), (4, 4))]
    assert "model[1][1]" in format_padding_arithmetic(rows)


def test_padding_arithmetic_uneven_at_36():
    # by hand: 36 -> pool 18 -> pool 9 -> a 2x2 stride-2 pool reads rows 0..7 of 9: the last one is dropped
    rows = {r["path"]: r for r in padding_arithmetic(_model("zeros"), 36)}
    uneven = [p for p, r in rows.items() if r["uneven"]]
    assert uneven == [(3, 1)]
    r = rows[(3, 1)]
    assert (r["input"], r["output"]) == ((9, 9), (4, 4))
    assert r["note"] == "9x9 -> 4x4: no padding; the last row and column are dropped (uneven)"
    assert not padding_arithmetic(_model("zeros"), 40)[-1]["uneven"]   # 40, 20, 10: all even
    assert [r["path"] for r in padding_arithmetic(_model("zeros"), 28) if r["uneven"]] == [(3, 1)]  # 7 -> 3


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
def test_padding_arithmetic_strided_conv_same_and_ceil_mode():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1),     # 32 + 2 - 3 = 31, odd for stride 2
                          nn.Conv2d(4, 4, 4, padding="same"),          # torch pads 1 before, 2 after
                          nn.MaxPool2d(3, stride=2, ceil_mode=True),   # 16: windows at 0..14, last overhangs
                          nn.Conv2d(4, 4, (3, 1), stride=(2, 1)))      # 8 rows: windows 0..2, 2..4, 4..6
    rows = padding_arithmetic(model, 32)
    assert [r["output"] for r in rows] == [(16, 16), (16, 16), (8, 8), (3, 8)]
    assert rows[0]["note"] == ("32x32 -> 16x16: pads 1 px on every side (zeros); padding read: 1 at the top "
                               "and left, 0 at the bottom and right (uneven)")
    assert rows[1]["padding"] == ((1, 2), (1, 2)) and rows[1]["uneven"]
    assert "past the bottom and right edge (ceil_mode)" in rows[2]["note"]
    assert rows[3]["note"] == "8x8 -> 3x8: no padding; the last row is dropped (uneven)"
    odd = padding_arithmetic(model, 33)
    assert odd[0]["output"] == (17, 17) and not odd[0]["uneven"]        # 33 + 2 - 3 = 32: even


def test_padding_arithmetic_refuses_a_too_small_input():
    with pytest.raises(ValueError, match=r"does not run on a 4x4 input \(the smallest larger size it takes is 8x8\)"):
        padding_arithmetic(_model("zeros"), 4)


def test_check_input_size_names_the_smallest_size_that_works():
    """Reflect padding needs maps wider than the padding: at 12 the last conv sees a 1x1 map."""
    model = _model("reflect").train()
    check_input_size(model, 16)
    with pytest.raises(ValueError, match=r"^the model does not run on a 12x12 input \(the smallest larger size "
                                         r"it takes is 16x16\): .*[Pp]adding"):
        check_input_size(model, 12)
    assert model.training, "the model's mode is restored"
    fixed = nn.Sequential(nn.Conv2d(3, 2, 3, padding=1), nn.Flatten(), nn.Linear(2 * 32 * 32, 10))
    with pytest.raises(ValueError, match=r"40x40 input: "):      # only 32 fits the head: no larger size to name
        check_input_size(fixed, 40)
