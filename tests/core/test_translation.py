import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from padlens.core.data import Normalization, mean_color, stratified_subset
from padlens.core.inference import fast_model, fold_batchnorm
from padlens.core.jobs import Partial, Progress, run_job
from padlens.core.model import ModelConfig, build_model
from padlens.core.shifts import shift
from padlens.core.stats import Z95, wilson
from padlens.core.stats import wilson_halfwidth
from padlens.core.translation import (GridResult, GridSpec, chunk_ends, images_to_precision, phase_table,
                                      pooling_period, translation_grid)

NORM = Normalization((0.49, 0.48, 0.45), (0.25, 0.24, 0.26))
SPEC = GridSpec(-6, 3, -3, 5, 3)          # dx -6 -3 0 3, dy -3 0 3: rectangular and not centred
FAST = dict(first_chunk=10, chunk=10, batch_images=45)   # 3 chunks of 10 images; batches cut through shifts


@pytest.fixture(scope="module")
def data():
    gen = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (30, 3, 32, 32), dtype=torch.uint8, generator=gen)
    return images, torch.arange(30) % 10


def direct(model, images, labels, spec, mode="affine", fill_color=None):
    """The plain per-shift computation, one shift at a time, fp32, channels-first: (correct, mean CE, consistent);
    affine-mean fills with fill_color, by default the mean colour of the images."""
    fill_color = fill_color or mean_color(images)
    correct, loss, consistent = (np.zeros((len(spec.dys), len(spec.dxs))) for _ in range(3))
    with torch.no_grad():
        base = model(NORM.apply(images)).argmax(1)
        for r, dy in enumerate(spec.dys):
            for c, dx in enumerate(spec.dxs):
                logits = model(NORM.apply(shift(images, int(dx), int(dy), mode, fill_color)))
                correct[r, c] = (logits.argmax(1) == labels).sum().item()
                loss[r, c] = F.cross_entropy(logits, labels).item()
                consistent[r, c] = (logits.argmax(1) == base).sum().item()
    return correct, loss, consistent


def grid(model, images, labels, spec=SPEC, **kw):
    kw = {**FAST, **kw}
    return run_job(translation_grid(model, images, labels, NORM, spec, **kw))


@pytest.mark.parametrize("mode", ["affine", "affine-mean", "roll"])
def test_grid_equals_direct_computation(tiny_model, data, mode, monkeypatch):
    monkeypatch.setattr("padlens.core.translation.SNAPSHOT_SECONDS", 1e9)    # snapshots only at chunk ends
    images, labels = data
    events = []
    gen = translation_grid(tiny_model, images, labels, NORM, SPEC, mode=mode, info={"note": "x"}, **FAST)
    while True:
        try:
            events.append(next(gen))
        except StopIteration as stop:
            result = stop.value
            break
    correct, loss, consistent = direct(tiny_model, images, labels, SPEC, mode)
    assert result.accuracy.shape == (3, 4)
    np.testing.assert_array_equal(result.count, 30)
    np.testing.assert_array_equal(result.correct, correct)           # whole images: counts agree exactly
    np.testing.assert_array_equal(result.consistent, consistent)
    np.testing.assert_allclose(result.accuracy, correct / 30, rtol=1e-12)
    np.testing.assert_allclose(result.consistency, consistent / 30, rtol=1e-12)
    np.testing.assert_allclose(result.loss, loss, rtol=1e-5, atol=1e-6)
    assert 0 < consistent.min() < 30 and len(np.unique(correct)) > 1, "the data must make the comparison meaningful"
    assert result.info["mode"] == mode and result.info["note"] == "x" and result.info["precision"] == "fp32"
    progress = [e for e in events if isinstance(e, Progress)]
    assert [e.done for e in progress] == sorted(e.done for e in progress)
    assert progress[-1].done == progress[-1].total == 30 * 12
    partials = [e.value for e in events if isinstance(e, Partial)]
    assert len(partials) == 3                                          # one heatmap per chunk of 10
    assert [int(p.count.min()) for p in partials] == [10, 20, 30]     # snapshots, not the object still in work
    assert partials[-1] is not result


def test_affine_mean_fills_with_the_data_colour_not_the_normalization_mean(tiny_model, data):
    """An own model normalized to [0, 1] has mean 0: the fill must still be the data set's mean colour."""
    images, labels = data
    colour = (0.6, 0.3, 0.1)
    spec = GridSpec.square(-8, 8, 8)
    result = grid(tiny_model, images, labels, spec, mode="affine-mean", fill_color=colour)
    correct, _, _ = direct(tiny_model, images, labels, spec, "affine-mean", colour)
    np.testing.assert_array_equal(result.correct, correct)
    assert result.info["fill_color"] == list(colour)
    black = grid(tiny_model, images, labels, spec, mode="affine")
    assert "fill_color" not in black.info and not np.array_equal(black.loss_sum, result.loss_sum)


def test_out_of_frame_shifts_and_odd_batches_equal_direct(tiny_model, data):
    """Shifts that leave only fill run once for all images; batches of 7 rows cut through shifts."""
    images, labels = data
    spec = GridSpec(-32, 32, -48, 0, 16)                 # dx -32..32, dy -48..0: 8 of 15 cells fully out of frame
    r = grid(tiny_model, images[:13], labels[:13], spec, first_chunk=4, chunk=9, batch_images=7)
    correct, loss, consistent = direct(tiny_model, images[:13], labels[:13], spec)
    np.testing.assert_array_equal(r.count, 13)
    np.testing.assert_array_equal(r.correct, correct)
    np.testing.assert_array_equal(r.consistent, consistent)
    np.testing.assert_allclose(r.loss, loss, rtol=1e-5, atol=1e-6)


class _Counting(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model, self.rows = model, 0

    def forward(self, x):
        self.rows += len(x)
        return self.model(x)


def test_rolls_by_whole_widths_run_once_and_equal_direct(tiny_model, data):
    """Rolls by -32, 0, 32 give one image, -16 and 16 another: the 5x5 cells hold 4 distinct inputs."""
    images, labels = data
    spec = GridSpec(-32, 32, -32, 32, 16)
    counting = _Counting(tiny_model)
    progress = []
    r = run_job(translation_grid(counting, images, labels, NORM, spec, mode="roll", **FAST),
                on_progress=progress.append)
    correct, loss, consistent = direct(tiny_model, images, labels, spec, "roll")
    np.testing.assert_array_equal(r.count, 30)
    np.testing.assert_array_equal(r.correct, correct)
    np.testing.assert_array_equal(r.consistent, consistent)
    np.testing.assert_allclose(r.loss, loss, rtol=1e-5, atol=1e-6)
    assert counting.rows == 30 * 4 + 30                       # 4 distinct shifts + the unshifted predictions
    assert progress[-1].done == progress[-1].total == 30 * 25 and "+21 that repeat" in progress[-1].message


def test_long_chunks_send_heatmaps_between_chunk_ends(tiny_model, data, monkeypatch):
    monkeypatch.setattr("padlens.core.translation.SNAPSHOT_SECONDS", 0.0)
    images, labels = data
    partials = [e.value for e in translation_grid(tiny_model, images, labels, NORM, SPEC, **FAST)
                if isinstance(e, Partial)]
    # chunk 1 whole (10 images), then one snapshot per 45-row batch of chunks 2 and 3 and one at each end
    assert partials[0].count.min() == partials[0].count.max() == 10
    totals = [int(p.count.sum()) for p in partials]
    assert totals == sorted(totals) and len(partials) > 3 and totals[-1] == 30 * 12
    uneven = [p for p in partials if p.count.min() != p.count.max()]
    assert uneven, "a mid-chunk heatmap has cells with more images than others"


def test_the_heatmaps_come_at_the_chunk_ends(tiny_model, data, monkeypatch):
    """chunk_ends is the schedule the grid runs (the time-to-precision projection relies on it)."""
    monkeypatch.setattr("padlens.core.translation.SNAPSHOT_SECONDS", 1e9)   # no heatmap between chunk ends
    images, labels = data
    seen = [ev.value.images for ev in translation_grid(tiny_model, images, labels, NORM, SPEC, first_chunk=3,
                                                         chunk=8) if isinstance(ev, Partial)]
    assert seen == chunk_ends(30, 3, 8) == [3, 9, 17, 25, 30]


def test_images_to_precision_is_the_first_chunk_end_precise_enough():
    ends = chunk_ends(10_000, 10)
    half = images_to_precision(np.array([[0.5, 0.9], [0.1, np.nan]]), 0.02, 10_000, 10)
    assert half in ends and wilson_halfwidth(half // 2, half) <= 0.02   # the cell at 50% decides: ~2,400
    assert wilson_halfwidth(ends[ends.index(half) - 1] // 2, ends[ends.index(half) - 1]) > 0.02
    assert 2_400 <= half <= 2_900
    assert images_to_precision(np.array([0.99, 1.0]), 0.02, 10_000, 10) < half   # certain cells need fewer
    assert images_to_precision(np.array([0.5]), 0.02, 1_000, 10) is None         # not within 1,000 images


def test_grid_at_zero_shift_is_plain_accuracy(tiny_model, data):
    images, labels = data
    r = grid(tiny_model, images, labels, GridSpec(-1, 1, -1, 1, 1))
    with torch.no_grad():
        logits = tiny_model(NORM.apply(images))
    row, col = r.cell(0, 0)
    assert r.accuracy[row, col] == pytest.approx((logits.argmax(1) == labels).float().mean().item())
    assert r.consistency[row, col] == 1.0
    with pytest.raises(KeyError):
        r.cell(2, 0)


def test_cancel_returns_partial_result(tiny_model, data):
    images, labels = data
    calls = []

    def should_stop():
        calls.append(1)
        return len(calls) > 4      # chunk 1 (3 forwards), one forward of chunk 2 (45 rows: 4.5 shifts), then stop

    snapshots = []
    result = run_job(translation_grid(tiny_model, images, labels, NORM, SPEC, should_stop=should_stop, **FAST),
                     on_partial=lambda r: snapshots.append(r.count.copy()))
    assert len(snapshots) == 1 and (snapshots[0] == 10).all()
    assert sorted(np.unique(result.count)) == [10, 15, 20]      # a cell counts the images it has seen
    assert (result.count == 20).sum() == 4 and (result.count == 15).sum() == 1
    assert result.images == 10
    first20 = grid(tiny_model, images[:20], labels[:20])     # the cells that saw 20 images agree with a 20-image run
    done = result.count == 20
    np.testing.assert_array_equal(result.correct[done], first20.correct[done])
    np.testing.assert_allclose(result.loss_sum[done], first20.loss_sum[done], rtol=1e-5)


def test_stop_at_once_gives_empty_result(tiny_model, data):
    images, labels = data
    r = run_job(translation_grid(tiny_model, images, labels, NORM, SPEC, should_stop=lambda: True, **FAST))
    assert r.count.sum() == 0 and np.isnan(r.accuracy).all() and r.images == 0


def test_first_heatmap_comes_from_fewer_images_on_big_grids(tiny_model, data):
    """At most FIRST_ROWS forward passes before the first Partial: the 33x33 default grid (961 shifts
    with content) starts from 3 images, a 3x4 grid from 10."""
    from padlens.core.translation import FIRST_ROWS
    images, labels = data
    assert FIRST_ROWS // 961 == 3
    for spec, first in ((GridSpec(), 3), (SPEC, 10)):
        job = translation_grid(tiny_model, images, labels, NORM, spec)
        seen = next(e.value for e in job if isinstance(e, Partial))
        assert seen.images == first
        job.close()


def test_no_images_and_empty_first_chunk(tiny_model, data):
    images, labels = data
    empty = grid(tiny_model, images[:0], labels[:0])
    assert empty.count.shape == (3, 4) and empty.count.sum() == 0
    r = grid(tiny_model, images[:12], labels[:12], first_chunk=0, chunk=5)      # chunks of 5, 5, 2
    np.testing.assert_array_equal(r.count, 12)
    np.testing.assert_array_equal(r.correct, grid(tiny_model, images[:12], labels[:12]).correct)


def test_bf16_runs_with_same_shapes(tiny_model, data):
    images, labels = data
    r16 = grid(tiny_model, images, labels, precision="bf16")
    r32 = grid(tiny_model, images, labels, precision="fp32")
    assert r16.info["precision"] == "bf16"
    assert r16.accuracy.shape == r32.accuracy.shape == (3, 4)
    np.testing.assert_array_equal(r16.count, r32.count)
    assert np.isfinite(r16.accuracy).all() and ((0 <= r16.accuracy) & (r16.accuracy <= 1)).all()
    np.testing.assert_allclose(r16.loss, r32.loss, atol=0.05)


def test_stratified_subset_balanced_prefixes_and_seeded():
    gen = torch.Generator().manual_seed(3)
    labels = (torch.arange(120) % 10)[torch.randperm(120, generator=gen)]
    idx = stratified_subset(labels, None, seed=0)
    assert sorted(idx.tolist()) == list(range(120))                # a permutation: nothing lost or repeated
    for k in range(1, 121):
        counts = torch.bincount(labels[idx[:k]], minlength=10)
        assert counts.max() - counts.min() <= 1, k
    assert torch.equal(stratified_subset(labels, 50, seed=0), idx[:50])
    assert torch.equal(stratified_subset(labels, 50, seed=7), stratified_subset(labels, 50, seed=7))
    assert not torch.equal(stratified_subset(labels, 50, seed=7), idx[:50])
    assert len(stratified_subset(labels, 500)) == 120


def test_stratified_subset_with_uneven_classes():
    labels = torch.tensor([0] * 3 + [1] * 10 + [2] * 6)
    idx = stratified_subset(labels, 9, seed=1)
    assert torch.bincount(labels[idx], minlength=3).tolist() == [3, 3, 3]
    assert len(set(idx.tolist())) == 9


def test_grid_spec_axes():
    default = GridSpec()
    assert len(default.dxs) == len(default.dys) == 33
    assert default.dxs[0] == -32 and default.dxs[-1] == 32 and 0 in default.dxs
    np.testing.assert_array_equal(GridSpec.square(-3, 3, 1).dxs, np.arange(-3, 4))
    spec = GridSpec(-4, 2, 0, 4, 2)
    np.testing.assert_array_equal(spec.dxs, [-4, -2, 0, 2])
    np.testing.assert_array_equal(spec.dys, [0, 2, 4])
    r = GridResult.empty(spec)
    assert r.count.shape == (3, 4) and r.cell(2, 4) == (2, 3)
    np.testing.assert_array_equal(GridSpec.square(0, 0, 5).dxs, [0])
    # steps count from 0 whenever the range holds it: (0, 0) is always a cell
    np.testing.assert_array_equal(GridSpec.square(-32, 32, 3).dxs, np.arange(-30, 31, 3))
    np.testing.assert_array_equal(GridSpec(-5, 7, 1, 9, 4).dxs, [-4, 0, 4])
    np.testing.assert_array_equal(GridSpec(-5, 7, 1, 9, 4).dys, [1, 5, 9])   # no 0 in range: from the start


@pytest.mark.parametrize("kw", [dict(step=0), dict(step=-2), dict(x_min=3, x_max=2), dict(y_min=1, y_max=-1),
                                dict(step=1.5), dict(x_min=-2.5)])
def test_bad_grid_spec(kw):
    with pytest.raises(ValueError):
        GridSpec(**kw)


def _result(seed=0):
    rng = np.random.default_rng(seed)
    spec = GridSpec(-2, 2, -4, 0, 2)
    r = GridResult.empty(spec, {"checkpoint": "m.pt", "n": 5, "crop_pad": 4})
    r.count[:] = 5
    r.count[0, 1] = 0
    r.correct[:] = rng.integers(0, 6, r.count.shape) * (r.count > 0)
    r.loss_sum[:] = rng.random(r.count.shape) * 5
    r.consistent[:] = np.minimum(r.correct + 1, r.count)
    return r


def test_npz_round_trip(tmp_path):
    r = _result()
    r.save_npz(tmp_path / "sub" / "t.npz")
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["t.npz"]     # no temp file left
    back = GridResult.load_npz(tmp_path / "sub" / "t.npz")
    for name in ("dxs", "dys", "correct", "loss_sum", "consistent", "count", "accuracy", "loss", "consistency",
                 "accuracy_ci", "consistency_ci"):
        np.testing.assert_array_equal(getattr(back, name), getattr(r, name), err_msg=name)
    assert np.isnan(back.accuracy[0, 1]) and back.info == r.info
    with np.load(tmp_path / "sub" / "t.npz") as d:
        np.testing.assert_array_equal(d["accuracy"], r.accuracy)
        assert json.loads(str(d["info"]))["crop_pad"] == 4
        for name, k in (("accuracy", r.correct), ("consistency", r.consistent)):   # the file carries the intervals
            low, high = wilson(k, r.count)
            np.testing.assert_array_equal(d[f"{name}_low"], low)
            np.testing.assert_array_equal(d[f"{name}_high"], high)
        assert (d["accuracy_low"][r.count > 0] < d["accuracy_high"][r.count > 0]).all()


def test_npz_info_with_paths(tmp_path):
    r = _result()
    r.info["checkpoint"] = tmp_path / "m.pt"            # a Path is stored as its text
    r.save_npz(tmp_path / "t.npz")
    assert GridResult.load_npz(tmp_path / "t.npz").info["checkpoint"] == str(tmp_path / "m.pt")


def test_write_csv(tmp_path):
    r = _result()
    r.write_csv(tmp_path / "t.csv")
    lines = (tmp_path / "t.csv").read_text().splitlines()
    assert lines[0] == "dx,dy,accuracy,loss,consistency,images,acc_low,acc_high,cons_low,cons_high"
    assert len(lines) == 1 + 3 * 3
    rows = [line.split(",") for line in lines[1:]]
    assert [(int(a), int(b)) for a, b, *_ in rows[:4]] == [(-2, -4), (0, -4), (2, -4), (-2, -2)]
    dx, dy, acc, loss, cons, n, acc_lo, acc_hi, cons_lo, cons_hi = rows[5]
    row, col = r.cell(int(dx), int(dy))
    assert float(acc) == pytest.approx(r.accuracy[row, col], abs=1e-6)
    assert float(loss) == pytest.approx(r.loss[row, col], abs=1e-6)
    assert float(cons) == pytest.approx(r.consistency[row, col], abs=1e-6) and int(n) == 5
    want = (*wilson(r.correct[row, col], 5), *wilson(r.consistent[row, col], 5))
    assert [float(v) for v in (acc_lo, acc_hi, cons_lo, cons_hi)] == pytest.approx(want, abs=1e-6)
    assert float(acc_lo) <= float(acc) <= float(acc_hi) and float(acc_lo) < float(acc_hi)
    assert rows[1][2] == "nan" and rows[1][5] == "0" and rows[1][6:] == ["nan"] * 4   # (0, -4) had no images


def test_phase_table():
    spec = GridSpec.square(-8, 7, 1)
    r = GridResult.empty(spec)
    dx, dy = np.meshgrid(spec.dxs, spec.dys)
    r.count[:] = 10
    r.correct[:] = (dx % 4) + 4 * (dy % 4) - 0.5 * (dx < 0)    # phase value, halves averaged in
    r.count[dy == 5] = 0                                      # empty cells are ignored
    table = phase_table(r, 4)
    expected = (np.arange(4)[None, :] + 4 * np.arange(4)[:, None] - 0.25) / 10
    np.testing.assert_allclose(table, expected)
    assert phase_table(r, 1).shape == (1, 1)


def test_phase_table_missing_phase_is_nan():
    r = GridResult.empty(GridSpec.square(-4, 4, 2))
    r.count[:] = 1
    table = phase_table(r, 4)
    assert np.isnan(table[1]).all() and np.isnan(table[:, 3]).all() and np.isfinite(table[::2, ::2]).all()


def test_pooling_period(tiny_model):
    assert pooling_period(tiny_model) == 8
    assert pooling_period(build_model(ModelConfig(widths=(8, 8), stem_width=6))) == 4
    strided = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.Sequential(nn.MaxPool2d(3, stride=3)), nn.AvgPool2d(2))
    assert pooling_period(strided) == 12
    assert pooling_period(nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveMaxPool2d(1))) == 1


def test_fold_batchnorm_same_logits(tiny_model, data):
    images, _ = data
    fused = fold_batchnorm(tiny_model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
    assert sum(isinstance(m, nn.BatchNorm2d) for m in tiny_model.modules()) == 6, "original untouched"
    assert len(list(fused.modules())) == len(list(tiny_model.modules()))        # index paths kept
    x = NORM.apply(images)
    with torch.no_grad():
        want, got = tiny_model(x), fused(x)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5 * want.abs().max().item())
    assert torch.equal(got.argmax(1), want.argmax(1))


def test_fast_model_folds_only_outside_exact_fp32(tiny_model):
    cpu = torch.device("cpu")
    def has_bn(m):
        return any(isinstance(x, nn.BatchNorm2d) for x in m.modules())
    assert has_bn(fast_model(tiny_model, cpu, "fp32")) and not has_bn(fast_model(tiny_model, cpu, "bf16"))
    assert has_bn(fast_model(tiny_model, cpu, "bf16", fold=False))


def test_fold_batchnorm_with_a_reused_activation_and_a_custom_root():
    """One ReLU object at two places of a Sequential, the Sequential inside a plain module."""
    torch.manual_seed(0)
    act = nn.ReLU()
    seq = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), act, nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4), act)

    class Root(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = seq

        def forward(self, x):
            return self.features(x).mean((2, 3))

    model = Root()
    with torch.no_grad():
        model.features[3].running_mean.uniform_(-1, 1)
        model.features[3].running_var.uniform_(0.5, 2)
    model.eval()
    fused = fold_batchnorm(model)
    assert [type(m).__name__ for m in fused.features] == ["Conv2d", "ReLU", "Conv2d", "Identity", "ReLU"]
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(fused(x), model(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("padding", ["circular", "symmetric", "partial"])
def test_fold_batchnorm_keeps_padding_mode(padding):
    torch.manual_seed(0)
    model = build_model(ModelConfig(widths=(8,), stem_width=6, padding_mode=padding)).eval()
    for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    fused = fold_batchnorm(model)
    assert type(fused[1][0]) is type(model[1][0]) and fused[1][0].padding_mode == padding
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(fused(x), model(x), rtol=1e-4, atol=1e-5)


def test_fold_batchnorm_general_convs():
    torch.manual_seed(0)
    bn = lambda c: nn.BatchNorm2d(c, affine=True)  # noqa: E731
    model = nn.Sequential(
        nn.Conv2d(4, 6, (3, 1), padding=(1, 0), groups=2, bias=True), bn(6),         # grouped, non-square
        nn.Conv2d(6, 6, 3, stride=2, padding=2, dilation=2), nn.MaxPool2d(2), bn(6),  # strided, through a pool
        nn.Conv2d(6, 4, 3, padding=1), nn.MaxPool2d(2), bn(4),                       # negative scale: kept
    ).eval()
    for m in model:
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.bias.data.uniform_(-1, 1)
            m.weight.data.uniform_(0.5, 1.5)
    model[7].weight.data[0] = -1.0
    fused = fold_batchnorm(model)
    assert [type(m).__name__ for m in fused] == ["Conv2d", "Identity", "Conv2d", "MaxPool2d", "Identity",
                                                 "Conv2d", "MaxPool2d", "BatchNorm2d"]
    assert fused[0].groups == 2 and fused[0].padding == (1, 0) and fused[2].stride == (2, 2)
    x = torch.randn(3, 4, 20, 20)
    with torch.no_grad():
        torch.testing.assert_close(fused(x), model(x), rtol=1e-4, atol=1e-5)


def test_pitfalls_numbers_match_the_grid():
    from padlens.core.translation import pitfalls
    spec = GridSpec(-20, 20, 0, 0, 4)
    r = GridResult.empty(spec, {"mode": "affine"})
    r.count[:] = 10
    r.correct[0] = [1, 2, 3, 4, 5, 9, 5, 4, 3, 2, 1]    # dx = -20 .. 20
    p = pitfalls(r, crop_pad=4, period=8)
    assert p["unshifted"] == 0.9 and p["unshifted_images"] == 10
    assert abs(p["inside"] - (5 + 9 + 5) / 30) < 1e-12
    assert abs(p["outside"] - (1 + 2 + 3 + 4) * 2 / 80) < 1e-12
    assert (p["inside_cells"], p["outside_cells"]) == (3, 8)
    assert abs(p["hidden"] - 2 / 20) < 1e-12       # only dx = -20 and 20 leave less than half in frame
    assert p["phase_min"] < p["phase_max"]
    assert pitfalls(r, None, 8)["inside"] is None


def test_cell_intervals_are_wilson_intervals_of_the_counts():
    """Known counts: 0 of 10 and 10 of 10 have closed forms, 30 of 100 the textbook score interval."""
    r = GridResult.empty(GridSpec(0, 3, 0, 0, 1))
    r.count[0] = [10, 10, 100, 0]
    r.correct[0] = [0, 10, 30, 0]
    r.consistent[0] = [10, 5, 100, 0]
    z2 = Z95 ** 2
    lo, hi = r.accuracy_ci
    np.testing.assert_allclose(lo[0, :2], [0, 10 / (10 + z2)])
    np.testing.assert_allclose(hi[0, :2], [z2 / (10 + z2), 1])
    centre = (0.3 + z2 / 200) / (1 + z2 / 100)
    half = Z95 * np.sqrt(0.3 * 0.7 / 100 + z2 / 40000) / (1 + z2 / 100)
    np.testing.assert_allclose([lo[0, 2], hi[0, 2]], [centre - half, centre + half])
    assert 0.21 < lo[0, 2] < 0.22 and 0.39 < hi[0, 2] < 0.40              # Wilson's 30/100: 21.9% to 39.6%
    np.testing.assert_allclose(r.accuracy_halfwidth[0, :3], (hi - lo)[0, :3] / 2)
    assert np.isnan(lo[0, 3]) and np.isnan(hi[0, 3]) and np.isnan(r.accuracy_halfwidth[0, 3])   # no images
    c_lo, c_hi = r.consistency_ci                                            # consistency is a proportion too
    half5 = Z95 * np.sqrt(0.25 / 10 + z2 / 400) / (1 + z2 / 10)             # 5 of 10: centred on 50%
    np.testing.assert_allclose([c_lo[0, 0], c_lo[0, 1], c_hi[0, 1]], [10 / (10 + z2), 0.5 - half5, 0.5 + half5])


def _widths(tiny_model, images, labels):
    """The widest cell interval after each chunk (10, 20, 30 images) of a run without a target."""
    job = translation_grid(tiny_model, images, labels, NORM, SPEC, **FAST)
    return [float(np.nanmax(e.value.accuracy_halfwidth)) for e in job if isinstance(e, Partial)]


def test_a_precision_target_stops_once_every_cell_is_that_narrow(tiny_model, data, monkeypatch):
    monkeypatch.setattr("padlens.core.translation.SNAPSHOT_SECONDS", 1e9)    # snapshots only at chunk ends
    images, labels = data
    w10, w20, w30 = _widths(tiny_model, images, labels)
    assert w10 > w20 > w30, "more images, narrower intervals"
    full = grid(tiny_model, images, labels)
    r = grid(tiny_model, images, labels, target_halfwidth=(w10 + w20) / 2)
    np.testing.assert_array_equal(r.count, 20)                   # stopped after the second chunk, every cell alike
    np.testing.assert_array_equal(r.correct, grid(tiny_model, images[:20], labels[:20]).correct)
    assert np.nanmax(r.accuracy_halfwidth) <= r.info["target_halfwidth"] < w10
    assert r.info["precision_reached"].startswith("precision reached: every cell within ±")
    assert "after 20 of 30 images" in r.info["precision_reached"] and "precision_not_reached" not in r.info
    wider = grid(tiny_model, images, labels, target_halfwidth=(w10 + 0.5) / 2)
    assert wider.images == 10 < r.images, "a wider target stops sooner"
    reached_at_the_end = grid(tiny_model, images, labels, target_halfwidth=(w20 + w30) / 2)
    np.testing.assert_array_equal(reached_at_the_end.correct, full.correct)
    assert not {"precision_reached", "precision_not_reached"} & set(reached_at_the_end.info)
    narrow = grid(tiny_model, images, labels, target_halfwidth=w30 / 2)
    np.testing.assert_array_equal(narrow.count, 30)
    assert "precision_reached" not in narrow.info and "after all 30 images" in narrow.info["precision_not_reached"]
    assert "target_halfwidth" not in full.info


@pytest.mark.parametrize("target", [0, -0.02, 0.5, 2.0])
def test_a_target_outside_0_to_half_is_refused_with_an_example(tiny_model, data, target):
    images, labels = data
    with pytest.raises(ValueError, match="0.02 to stop at"):
        grid(tiny_model, images, labels, target_halfwidth=target)


def test_a_grid_that_reached_its_precision_is_cached_under_its_own_key(tiny_checkpoint, fake_data, cache_home,
                                                                       monkeypatch):
    from padlens.core.grid_cache import GridRequest
    from padlens.core.session import load_model
    monkeypatch.setattr("padlens.core.translation.SNAPSHOT_SECONDS", 1e9)
    loaded = load_model(tiny_checkpoint, torch.device("cpu"))
    spec = GridSpec.square(-4, 4, 4)

    def request(target):
        return GridRequest(loaded, fake_data, spec, n_images=60, precision="fp32", target_halfwidth=target)
    plain = request(None)
    widths = [float(np.nanmax(e.value.accuracy_halfwidth)) for e in plain.job() if isinstance(e, Partial)]
    assert len(widths) > 2 and widths[0] > widths[1]
    target = (widths[0] + widths[1]) / 2                         # reached after the second chunk, before all 60
    req = request(target)
    assert req.key != plain.key and not req.same_grid(plain) and req.cached() is None
    result = run_job(req.job())
    assert 0 < result.images < 60 and result.info["cache"].startswith("cached as")
    assert f"{result.images} test images" in result.info["title"], "the title counts the images that ran"
    back = request(target).cached()
    assert back is not None and back.info["precision_reached"] == result.info["precision_reached"]
    np.testing.assert_array_equal(back.correct, result.correct)
    assert request(None).cached() is not None, "the full grid keeps its own cache file"
    narrower = request(target / 2)
    assert narrower.cached() is None and narrower.key != req.key
    with pytest.raises(ValueError, match="0.02"):
        request(2.0)
