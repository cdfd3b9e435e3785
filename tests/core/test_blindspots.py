"""Blind spots: a scaled-down test image at every position of a canvas, probability and accuracy per position."""
import csv
import itertools

import numpy as np
import pytest
import torch
from torch import nn

from padlens.core.blindspots import (BlindspotSpec, backgrounds, blindspot_job, canvases, other_class, save_blindspots,
                                     save_data, summarize)
from padlens.core.data import Normalization
from padlens.core.device import resolve_precision
from padlens.core.jobs import Partial, Progress, run_job
from tests.tiny import NORM, tiny

IDENTITY = Normalization((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))   # the model sees pixels in [0, 1]


class OnePixel(nn.Module):
    """Class 0 when the red channel at pixel (column px, row py) is bright, else class 1: it reads nothing else."""

    def __init__(self, px: int, py: int):
        super().__init__()
        self.px, self.py = px, py
        self.scale = nn.Parameter(torch.tensor(10.0))

    def forward(self, x):
        v = x[:, 0, self.py, self.px]
        return torch.stack([self.scale * (v - 0.5), torch.zeros_like(v), *[torch.zeros_like(v)] * 8], 1)


def white(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.full((n, 3, 32, 32), 255, dtype=torch.uint8), torch.zeros(n, dtype=torch.long)


def test_a_model_reading_one_pixel_is_right_exactly_where_the_patch_covers_it():
    images, labels = white(3)
    px, py = 28, 2   # top right: columns are x (right), rows are y (down)
    r = run_job(blindspot_job(OnePixel(px, py), images, labels, IDENTITY, BlindspotSpec(8, 1), precision="fp32"))
    assert list(r.xs) == list(range(25)) and list(r.ys) == list(range(25))
    covered = (r.xs[None, :] <= px) & (px < r.xs[None, :] + 8) & (r.ys[:, None] <= py) & (py < r.ys[:, None] + 8)
    assert covered.sum() == 4 * 3   # x in 21..24, y in 0..2
    assert np.array_equal(r.accuracy, covered.astype(float))
    assert (r.probability[covered] > 0.9).all() and (r.probability[~covered] < 0.01).all()
    assert r.accuracy[r.cell(21, 0)] == 1 and r.accuracy[r.cell(20, 0)] == 0 and r.accuracy[r.cell(21, 3)] == 0
    assert r.full_accuracy == 1 and r.images == 3 and (r.count == 3).all()
    s = summarize(r)
    assert (s["best"]["x"], s["best"]["y"]) in {(x, y) for x in range(21, 25) for y in range(3)}
    assert s["worst"]["accuracy"] == 0 and s["centre"]["x"] == s["centre"]["y"] == 12
    # 25 x 25 positions, 96 of them touch the canvas edge: 6 of those cover the pixel, and 6 of the 529 others
    assert s["edge_accuracy"] == pytest.approx(6 / 96) and s["inner_accuracy"] == pytest.approx(6 / 529)


def test_the_canvas_holds_the_patch_at_its_top_left_on_each_background():
    g = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (4, 3, 32, 32), generator=g, dtype=torch.uint8)
    labels = torch.tensor([0, 0, 1, 2])
    assert other_class(labels).tolist() == [2, 2, 3, 0]
    assert other_class(torch.zeros(3, dtype=torch.long)).tolist() == [0, 1, 2]
    assert (backgrounds(pixels, labels, "blank") == 0).all()
    mean = backgrounds(pixels, labels, "mean", (0.1, 0.2, 0.3))
    assert torch.allclose(mean[3, :, 5, 7], torch.tensor([0.1, 0.2, 0.3]))
    behind = backgrounds(pixels, labels, "image")
    assert torch.equal(behind[1], pixels[2].float() / 255)
    patches = torch.rand(4, 3, 8, 8)
    positions = [(0, 0), (5, 3), (24, 24)]
    out = canvases(patches, behind, positions, 2, 11, 4)   # rows 2..10: (0,0) images 2,3; (5,3) 0-3; (24,24) 0-2
    assert out.shape == (9, 3, 32, 32)
    assert torch.equal(out[0, :, :8, :8], patches[2]) and torch.equal(out[0, :, 8:, :], behind[2, :, 8:, :])
    assert torch.equal(out[3, :, 3:11, 5:13], patches[1])   # row 5: position (5, 3), image 1; y rows, x columns
    assert torch.equal(out[3, :, :3], behind[1, :, :3]) and torch.equal(out[3, :, :, :5], behind[1, :, :, :5])
    assert torch.equal(out[8, :, 24:, 24:], patches[2])
    with pytest.raises(ValueError, match="background must be one of"):
        backgrounds(pixels, labels, "grey")


def test_circular_padding_repeats_the_map_at_the_pooling_period_and_zero_padding_does_not():
    """On a blank canvas a move of the patch by 8 px (three 2x2 pools) is a roll of the whole canvas."""
    g = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (4, 3, 32, 32), generator=g, dtype=torch.uint8)
    change = {}
    for mode in ("circular", "zeros"):
        model, _ = tiny(mode)
        with torch.no_grad():
            model[-1][2].weight.mul_(300)   # confident enough that the probabilities differ between positions
        r = run_job(blindspot_job(model, images, torch.arange(4), NORM, BlindspotSpec(16, 4), precision="fp32"))
        assert list(r.xs) == [0, 4, 8, 12, 16]
        p = r.probability
        change[mode] = max(np.abs(p[:, :3] - p[:, 2:]).max(), np.abs(p[:3] - p[2:]).max())   # x vs x + 8, y vs y + 8
    assert change["circular"] < 1e-5 and change["zeros"] > 1e-3


def test_a_stop_keeps_whole_images_and_they_match_a_run_on_those_images():
    model, _ = tiny("zeros")
    g = torch.Generator().manual_seed(2)
    images = torch.randint(0, 256, (5, 3, 32, 32), generator=g, dtype=torch.uint8)
    labels = torch.arange(5)
    spec = BlindspotSpec(12, 4, "mean")   # 6 x 6 = 36 positions: one image per 64-row batch
    calls = itertools.count()
    events = []
    partial = run_job(blindspot_job(model, images, labels, NORM, spec, precision="fp32", fill_color=(0.4, 0.5, 0.6),
                                    should_stop=lambda: next(calls) >= 3), on_progress=events.append)
    assert partial.images == 3 and (partial.count == 3).all() and partial.full_count == 3
    assert partial.info["fill_color"] == [0.4, 0.5, 0.6] and partial.info["images_asked"] == 5
    direct = run_job(blindspot_job(model, images[:3], labels[:3], NORM, spec, precision="fp32",
                                   fill_color=(0.4, 0.5, 0.6)))
    np.testing.assert_allclose(partial.probability, direct.probability, rtol=1e-6)
    np.testing.assert_array_equal(partial.accuracy, direct.accuracy)
    assert events[-1].done == 3 * 37 and events[-1].total == 5 * 37


def test_partials_come_per_image_group_and_the_default_precision_is_resolved():
    model, _ = tiny("zeros")
    images = torch.zeros(3, 3, 32, 32, dtype=torch.uint8)
    job = blindspot_job(model, images, torch.arange(3), NORM, BlindspotSpec(16, 8))   # 9 positions: 7 images a batch
    events = []
    while True:
        try:
            events.append(next(job))
        except StopIteration as stop:
            result = stop.value
            break
    parts = [e.value for e in events if isinstance(e, Partial)]
    assert len(parts) == 1 and parts[0].images == 3 and result.images == 3
    assert any(isinstance(e, Progress) for e in events)
    assert result.info["precision"] == resolve_precision("auto", torch.device("cpu"))


def test_bad_settings_are_refused_with_the_fix():
    model, _ = tiny("zeros")
    images, labels = white(1)
    for spec, msg in ((BlindspotSpec(40), "give 1 to 32 pixels"), (BlindspotSpec(16, 0), "at least 1 pixel"),
                      (BlindspotSpec(16, 2, "noise"), "background must be one of")):
        with pytest.raises(ValueError, match=msg):
            run_job(blindspot_job(model, images, labels, NORM, spec))


def test_files_hold_the_maps(tmp_path):
    images, labels = white(2)
    r = run_job(blindspot_job(OnePixel(3, 30), images, labels, IDENTITY, BlindspotSpec(16, 8), precision="fp32",
                              info={"data": "CIFAR-10 test (JPEG copy)"}))
    npz, table = save_blindspots(r, tmp_path, "one pixel")
    with np.load(npz) as d:
        np.testing.assert_array_equal(d["accuracy"], r.accuracy)
        assert list(d["x"]) == [0, 8, 16] and d["count"].max() == 2
    rows = list(csv.reader(table.open()))
    assert rows[0][:3] == ["model", "x", "y"] and len(rows) == 1 + 9
    row = next(x for x in rows[1:] if x[1] == "0" and x[2] == "16")   # covers column 3, row 30
    assert row[3:5] == ["8", "24"] and float(row[7]) == 1.0 and row[5] == "2"
    both = save_data(tmp_path / "both.npz", {"a": r, "b": r})
    with np.load(both) as d:
        assert "a/probability" in d.files and "b/count" in d.files
    with pytest.raises(ValueError, match=r"\.csv or \.npz"):
        save_data(tmp_path / "maps.txt", {"a": r})


def test_report_states_each_checkpoints_blind_spots(report_run):
    from padlens.core.data import load_split, stratified_subset
    from padlens.core.report import BLINDSPOT_IMAGES, BLINDSPOT_SPEC
    from padlens.core.session import load_model
    text = report_run.md.read_text()
    assert "## Blind spots (measured on the lossy JPEG copy of CIFAR-10)" in text
    entry = report_run.doc["checkpoints"][0]
    b = entry["blindspots"]
    test = load_split(report_run.data, "test")
    idx = stratified_subset(test.labels, BLINDSPOT_IMAGES, 0)
    lm = load_model(report_run.ckpts[0], torch.device("cpu"))
    direct = summarize(run_job(blindspot_job(lm.model, test.images[idx], test.labels[idx], lm.norm, BLINDSPOT_SPEC,
                                             precision=report_run.doc["settings"]["grid_precision"])))
    assert b["images"] == BLINDSPOT_IMAGES and b["worst"] == direct["worst"]
    assert abs(b["mean_accuracy"] - direct["mean_accuracy"]) < 1e-9
    w = b["worst"]
    assert f"({w['x']}, {w['y']}) {100 * w['accuracy']:.1f}%" in text
    assert f"| {entry['label']} | zeros | {BLINDSPOT_IMAGES} |" in text
    assert (report_run.out / entry["label"] / "blindspots.csv").is_file()
