"""The coverage map counts paths exactly: known counts for one and two layers, padding modes, strides, pools."""
import numpy as np
import pytest
import torch
from torch import nn

from padlens.core.coverage import comparison_size, coverage_map, padding_coverage_job, save_coverage
from padlens.core.jobs import run_job
from tests.tiny import tiny


def conv(mode="zeros", stride=1, cin=3, cout=4):
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, padding_mode=mode)


def test_one_zero_padded_3x3_conv_gives_4_6_9():
    counts = coverage_map(nn.Sequential(conv()), 6, 6).counts
    assert counts[0, 0] == counts[-1, -1] == 4
    assert counts[0, 2] == counts[3, 0] == 6
    assert (counts[1:-1, 1:-1] == 9).all()
    assert counts.sum() == 9 * 6 * 6 - 4 * 3 * 6 + 4   # every output reads 9 positions, less the padding


def test_circular_padding_gives_a_constant_map():
    counts = coverage_map(nn.Sequential(conv("circular")), 7, 7).counts
    assert (counts == 9).all()
    s = coverage_map(tiny("circular")[0], 32).summary   # stride-2 pools tile an even map: still constant
    assert s["constant"] and s["min"] == s["max"] == 9 ** 7


def test_two_layers_against_a_hand_count():
    # per axis on 4 pixels: conv 2 reaches [2, 3, 3, 2] of its inputs' outputs; conv 1 then sums 3 neighbours:
    # [2+3, 2+3+3, 3+3+2, 3+2] = [5, 8, 8, 5]; the map is the outer product
    counts = coverage_map(nn.Sequential(conv(), nn.ReLU(), conv(cin=4, cout=5)), 4, 4).counts
    assert np.array_equal(counts, np.outer([5, 8, 8, 5], [5, 8, 8, 5]))


def test_reflect_mirrors_paths_back_and_replicate_piles_them_on_the_edge():
    # reflect pad 1 of [x0..x4] is [x1, x0, ..., x4, x3]: x1 and x3 are read twice more -> [2, 4, 3, 4, 2]
    reflect = coverage_map(nn.Sequential(conv("reflect")), 5, 5).counts
    assert np.array_equal(reflect, np.outer([2, 4, 3, 4, 2], [2, 4, 3, 4, 2]))
    assert (coverage_map(nn.Sequential(conv("replicate")), 5, 5).counts == 9).all()


def test_strided_conv_on_2n_is_lopsided_and_on_2n_plus_1_is_not():
    # stride 2 on 4 px: windows at -1..1 and 1..3 -> [1, 2, 1, 1] (padding read on one side only);
    # on 5 px: windows at -1..1, 1..3, 3..5 -> [1, 2, 1, 2, 1], symmetric
    four = coverage_map(nn.Sequential(conv(stride=2)), 4, 4)
    assert np.array_equal(four.counts, np.outer([1, 2, 1, 1], [1, 2, 1, 1]))
    assert four.summary["asymmetry"] > 0 and four.uneven
    five = coverage_map(nn.Sequential(conv(stride=2)), 5, 5)
    assert np.array_equal(five.counts, np.outer([1, 2, 1, 2, 1], [1, 2, 1, 2, 1]))
    assert five.summary["asymmetry"] == 0 and not five.uneven


def test_a_max_pool_counts_every_window_position_and_drops_the_odd_row():
    counts = coverage_map(nn.Sequential(nn.MaxPool2d(2), nn.Flatten(), nn.Linear(3 * 4, 10)), 5, 5).counts
    assert (counts[:4, :4] == 1).all() and (counts[4] == 0).all() and (counts[:, 4] == 0).all()
    m = coverage_map(tiny()[0], 33)
    assert m.summary["asymmetry"] > 0 and any("MaxPool2d" in u for u in m.uneven)
    assert coverage_map(tiny()[0], 32).summary["asymmetry"] == 0


def test_resized_input_is_seen_from_the_image():
    m = coverage_map(nn.Sequential(conv()), 16, 8)
    assert m.counts.shape == (16, 16) and m.image.shape == (8, 8)
    assert m.image[4, 4] > m.image[0, 0] > 0


def test_a_functional_nonlinearity_is_refused():
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = conv()

        def forward(self, x):
            return torch.relu(self.conv(x))

    with pytest.raises(ValueError, match="not linear"):
        coverage_map(Functional(), 8)


def test_job_sizes_and_files(tmp_path):
    assert comparison_size(32) == 33 and comparison_size(33) == 32 and comparison_size(48) == 32
    both = run_job(padding_coverage_job(tiny()[0], ["zeros", "circular"], [32, 33]))
    maps = both["zeros"]
    assert list(both) == ["zeros", "circular"] and [m.size for m in maps] == [32, 33]
    assert both["circular"][0].summary["constant"] and not maps[0].summary["constant"]
    written = save_coverage(maps, tmp_path)
    assert [p.name for p in written] == ["coverage.npz", "coverage.csv"], "the figure is the app's (gui)"
    with np.load(written[0]) as d:
        assert np.array_equal(d["counts_33"], maps[1].counts)
    rows = written[1].read_text().splitlines()
    assert rows[0] == "input_size,y,x,paths" and len(rows) == 1 + 32 * 32 + 33 * 33
    with pytest.raises(ValueError, match="does not run"):
        run_job(padding_coverage_job(tiny()[0], ["zeros"], [32, 4]))


def test_report_states_each_checkpoints_coverage(report_run):
    from padlens.core.checkpoint import load_checkpoint
    text = report_run.md.read_text()
    assert "## Coverage (foveation)" in text
    for ckpt, entry in zip(report_run.ckpts, report_run.doc["checkpoints"]):
        at32, at33 = entry["coverage"]["sizes"]
        direct = coverage_map(load_checkpoint(ckpt)[0], 32).summary
        assert at32["input_size"] == 32 and at33["input_size"] == 33
        assert at32["corner"] == direct["corner"] and at32["centre"] == direct["centre"]
        assert f"| {entry['label']} | {entry['padding_mode']} | 32x32 | {direct['corner']:.10g} |" in text
        assert at33["uneven"] and not at32["uneven"]
        assert (report_run.out / entry["label"] / "coverage.csv").is_file()
    zeros, reflect = report_run.doc["checkpoints"]
    assert zeros["coverage"]["sizes"][0]["corner"] != reflect["coverage"]["sizes"][0]["corner"]


class Wrapped(nn.Module):
    """The same network behind a forward of its own: counted on every channel, the general way."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x)


@pytest.mark.parametrize("mode", ["zeros", "reflect", "circular", "symmetric", "partial"])
def test_one_channel_counts_equal_every_channel_counts(mode):
    from padlens.core.coverage import with_padding
    model = with_padding(tiny()[0], mode)
    for size in (32, 33):
        fast, full = coverage_map(model, size), coverage_map(Wrapped(model), size)
        # equal; partial padding's counts are not whole, and _snap may round either copy's near-whole ones
        assert np.allclose(fast.counts, full.counts, rtol=1e-6, atol=0)
        assert np.allclose(fast.image, full.image, rtol=1e-6, atol=0)
        assert [u.split(" ", 1)[1] for u in fast.uneven] == [u.split(" ", 1)[1] for u in full.uneven]   # by path


def test_with_padding_changes_only_the_padding():
    from padlens.core.coverage import padding_coverage_job, with_padding
    from padlens.core.padding import PartialConv2d, SymmetricConv2d
    model = tiny()[0]
    same = with_padding(model, "zeros")
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(same(x), model(x))
    sym = with_padding(model, "symmetric")
    assert isinstance(sym[1][0], SymmetricConv2d) and sym[1][0].weight is model[1][0].weight   # shared, not copied
    assert isinstance(with_padding(model, "partial")[2][4], PartialConv2d)
    assert type(model[1][0]) is nn.Conv2d and model[1][0].padding_mode == "zeros"           # the model as it was
    with pytest.raises(ValueError, match="unknown padding mode"):
        with_padding(model, "mirror")
    events = []
    maps = run_job(padding_coverage_job(model, ["zeros", "circular"], [32, 33]), on_partial=events.append)
    assert list(maps) == ["zeros", "circular"] and [m.size for m in maps["circular"]] == [32, 33]
    assert maps["circular"][0].summary["constant"] and not maps["zeros"][0].summary["constant"]
    assert np.array_equal(maps["circular"][1].counts, coverage_map(with_padding(model, "circular"), 33).counts)
    assert [list(e) for e in events] == [["zeros"], ["zeros", "circular"]]
