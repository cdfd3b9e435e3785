import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from padlens.core.data import Normalization
from padlens.core.jobs import run_job
from padlens.core.translation import GridResult, GridSpec, translation_grid
from padlens.core.worst_case import complete_radius, flip_histogram, flip_share, format_worst_case, worst_case

PLAIN = Normalization((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))


class CentrePixel(nn.Module):
    """Class 0 when the centre pixel is bright, else class 1: which shift flips an image is known by hand."""

    def forward(self, x):
        c = x[:, 0, x.shape[-2] // 2, x.shape[-1] // 2]
        return torch.stack([c, torch.full_like(c, 0.5)], 1)


def squares(halves, size=32):
    """Image k: a bright square of half-side halves[k] on the centre pixel. A shift keeps the centre bright
    while max(|dx|, |dy|) <= half, so the prediction first flips at radius half + 1."""
    images = torch.zeros(len(halves), 3, size, size, dtype=torch.uint8)
    c = size // 2
    for k, h in enumerate(halves):
        images[k, :, max(0, c - h):c + h + 1, max(0, c - h):c + h + 1] = 255
    return images


def grid(images, spec, mode="affine", **kw):
    return run_job(translation_grid(CentrePixel(), images, torch.zeros(len(images), dtype=torch.long), PLAIN,
                                    spec, mode, input_size=images.shape[-1], first_chunk=2, chunk=3, batch_images=7,
                                    **kw))


def test_each_images_smallest_flipping_radius_is_recorded_across_chunks_and_batches():
    halves = [0, 3, 1, 5, 2, 0, 4]   # radius 5 is beyond the -4..4 grid: never flipped
    r = grid(squares(halves), GridSpec.square(-4, 4, 1))
    want = [h + 1 if h + 1 <= 4 else math.inf for h in halves]
    np.testing.assert_array_equal(r.flip_radius, want)
    np.testing.assert_array_equal(flip_share(r.flip_radius, [1, 2, 3, 4, 8]), [2 / 7, 3 / 7, 4 / 7, 5 / 7, 5 / 7])
    radii, counts, never = flip_histogram(r.flip_radius)
    assert radii.tolist() == [1, 2, 3, 4] and counts.tolist() == [2, 1, 1, 1] and never == 2
    # an image flipped within r flips some cell within r: the worst case is at least every cell's flip rate
    cheb = np.maximum(*np.meshgrid(np.abs(r.dxs), np.abs(r.dys)))
    for radius in range(1, 5):
        assert (r.flip_radius <= radius).sum() >= (r.count - r.consistent)[cheb <= radius].max()


def test_a_step_2_grid_sees_only_its_own_shifts_and_says_so():
    halves = [0, 1, 2, 3, 5]
    r = grid(squares(halves), GridSpec.square(-4, 4, 2))
    np.testing.assert_array_equal(r.flip_radius, [2, 2, 4, 4, math.inf])
    w = worst_case(r)
    assert w["complete_radius"] == 0 and w["radii"] == [2, 4] and w["shifts"] == [8, 24] and w["flipped"] == [2, 4]
    text = "\n".join(format_worst_case(w))
    assert "lower bounds" in text and "r=1:" not in text and "r=2: 40.0%" in text and "no grid shift flips 1" in text
    assert complete_radius(np.arange(-3, 4), np.arange(-2, 3)) == 2


def test_roll_by_whole_widths_is_no_flip_and_a_roll_counts_at_its_smallest_radius():
    # 8x8 images: a roll by 8 is the image itself; a roll by 7 is a roll by -1
    r = grid(squares([0, 2, 4], size=8), GridSpec(0, 8, 0, 0, 1), mode="roll")
    np.testing.assert_array_equal(r.flip_radius, [1, 3, math.inf])
    only_far = grid(squares([0, 2], size=8), GridSpec(7, 8, 0, 0, 1), mode="roll")
    # a roll by 7 moves the square 1 px: the one-pixel square flips (at 7, the smallest radius this grid has
    # for that input), the five-pixel one does not
    np.testing.assert_array_equal(only_far.flip_radius, [7, math.inf])


def test_shifts_that_leave_the_frame_flip_at_their_radius():
    r = grid(squares([1, 3], size=8), GridSpec.square(-8, 8, 8))   # every shift but (0, 0) leaves only the fill
    np.testing.assert_array_equal(r.flip_radius, [8, 8])


def test_a_stopped_grid_keeps_the_record_of_finished_chunks_only(tmp_path):
    calls = []

    def stop():
        calls.append(1)
        return len(calls) > 40   # the first chunk (2 images x 81 shifts) takes 24 batches of 7, the second 35
    r = grid(squares([0, 1, 2, 3, 0, 1, 2, 3]), GridSpec.square(-4, 4, 1), should_stop=stop)
    assert 0 < len(r.flip_radius) == r.images < 8
    r.save_npz(tmp_path / "g.npz")
    np.testing.assert_array_equal(GridResult.load_npz(tmp_path / "g.npz").flip_radius, r.flip_radius)
    old = dict(np.load(tmp_path / "g.npz"))
    del old["flip_radius"]   # a grid saved before the record existed
    np.savez(tmp_path / "old.npz", **old)
    back = GridResult.load_npz(tmp_path / "old.npz")
    assert back.flip_radius is None and worst_case(back) is None
    assert "not recorded" in format_worst_case(None)[0]


@pytest.mark.parametrize("fr", [[], [math.inf, math.inf]])
def test_no_images_or_no_flips(fr):
    share = flip_share(np.array(fr), [1, 2])
    assert np.isnan(share).all() if not fr else (share == 0).all()


def test_the_report_states_each_grids_worst_case_from_its_own_record(report_run):
    text = report_run.md.read_text()
    assert "## Worst case over shifts (measured on the lossy JPEG copy of CIFAR-10" in text
    for r in report_run.doc["checkpoints"]:
        for mode, g in r["grids"].items():
            w = worst_case(GridResult.load_npz(report_run.out / r["label"] / f"translation_{mode}.npz"))
            assert g["worst_case"] == w and w["images"] == 20 and w["radii"] == [4]   # a -4..4 step-4 grid
            lo, hi = w["low"][0], w["high"][0]
            never = w["histogram"]["never"]
            assert (f"| {r['label']} | {mode} | 20 | {100 * w['share'][0]:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}] | "
                    in text) and text.count(f"| {r['label']} | {mode} | 20 | ") >= 1 and f" | {never} |" in text
    assert "lower bounds of the true worst case" in text and "Most flipped within r = 4" in text


def test_the_report_measures_the_worst_case_on_every_whole_pixel_shift(report_run):
    """The step-1 grid: every shift within its range tried, so the shares are exact (no lower bound) at every
    radius, each recomputed here from the grid the report saved."""
    text = report_run.md.read_text()
    assert report_run.doc["settings"]["worst_case_images"] == 12
    assert "Every whole-pixel shift within 2 px (24 shifts, `affine`, 12 class-balanced test images, fp32)" in text
    assert "Within r = 1: most flipped " in text and "Within r = 2: most flipped " in text
    for r in report_run.doc["checkpoints"]:
        folder = report_run.out / r["label"]
        grid = GridResult.load_npz(folder / "worst_case_grid.npz")
        w = worst_case(grid)
        assert list(grid.dxs) == [-2, -1, 0, 1, 2] and grid.images == 12 and grid.info["mode"] == "affine"
        assert w["radii"] == [1, 2] and w["complete_radius"] == 2
        assert {k: r["worst_case"][k] for k in w} == w
        cells = [f"{100 * s:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]" for s, lo, hi in zip(w["share"], w["low"], w["high"])]
        assert f"| {r['label']} | {r['padding_mode']} | 12 | {cells[0]} | {cells[1]} | " in text
        assert (folder / "worst_case.csv").read_text().splitlines()[1].startswith("1,8,")
    calls = [args for name, args in report_run.calls if name == "heatmaps" and Path(args[1]).name == "worst_case"]
    assert len(calls) == 2 and all(list(a[0].dxs) == [-2, -1, 0, 1, 2] for a in calls), "each checkpoint's worst-case figure drawn"
