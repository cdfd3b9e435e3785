"""Shift equivariance per layer: exact for circular padding and whole-period rolls, lost with zero padding."""
import numpy as np
import pytest
import torch
from torch import nn

from padlens.core.equivariance import equivariance_job, save_equivariance, summarize
from padlens.core.jobs import run_job
from padlens.core.translation import GridSpec
from tests.tiny import NORM, tiny

PERIOD_GRID = GridSpec(-8, 8, -8, 8, 8)   # multiples of the tiny model's pooling period (three 2x2 pools)


def images(n=6):
    return torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


def test_circular_padding_and_period_rolls_are_equivariant_at_every_layer():
    r = run_job(equivariance_job(tiny("circular")[0], images(), NORM, PERIOD_GRID, "roll", batch_images=4,
                                 batch_rows=10))   # batches that split shifts and images
    assert r.aligned.all() and (r.counts == 6).all()
    assert np.abs(r.similarity - 1).max() < 1e-5
    assert summarize(r)["largest_drop"] is None       # no layer loses anything beyond float rounding
    assert r.layers[-1] == "output" and "MaxPool2d" in r.types and "AdaptiveMaxPool2d" in r.types


def test_zero_padding_breaks_it_at_some_layer():
    r = run_job(equivariance_job(tiny("zeros")[0], images(), NORM, PERIOD_GRID, "roll"))
    sim = r.similarity
    assert np.allclose(sim[:, 4], 1, atol=1e-5)       # (0, 0), the middle column: nothing moves
    assert np.nanmin(sim) < 1 - 1e-3
    s = summarize(r)
    assert len(s["period_shifts"]) == 8 and s["largest_drop"] is not None


def test_shifts_that_are_not_multiples_of_a_stride_are_not_applicable():
    r = run_job(equivariance_job(tiny("circular")[0], images(2), NORM, GridSpec(0, 2, 0, 0, 1), "roll"))
    strides = [r.stride(i) for i in range(len(r.layers))]
    for i, s in enumerate(strides):
        expect = [True, True, True] if s is None else [dx % s == 0 for dx in (0, 1, 2)]
        assert list(r.aligned[i]) == expect, r.layers[i]
        assert np.isnan(r.similarity[i][~r.aligned[i]]).all()
    spatial = [s is not None for s in strides]   # a roll by a multiple of the stride moves a circular map exactly
    assert np.abs(r.similarity[spatial][r.aligned[spatial]] - 1).max() < 1e-5


def test_affine_shifts_compare_only_the_region_valid_in_both():
    # a pointwise model is equivariant wherever content is still in the frame; the black fill is left out
    pointwise = nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU(), nn.Conv2d(4, 4, 1)).eval()
    r = run_job(equivariance_job(pointwise, images(3), NORM, GridSpec(-5, 5, -3, 3, 1), "affine"))
    assert np.abs(r.similarity[:-1] - 1).max() < 1e-5
    assert np.nanmin(r.similarity[-1]) < 1 - 1e-3   # the output (the whole last map) sees the fill: not invariant
    r = run_job(equivariance_job(pointwise, images(1), NORM, GridSpec(32, 32, 0, 0, 1), "affine"))
    assert not r.aligned[:-1].any()                  # nothing of the map stays in frame: n/a, not 0


def test_stopped_job_keeps_what_it_finished_and_files(tmp_path):
    calls = iter(range(100))
    r = run_job(equivariance_job(tiny()[0], images(4), NORM, PERIOD_GRID, "roll", batch_images=2, batch_rows=6,
                                 should_stop=lambda: next(calls) >= 2))
    assert 0 < r.counts.max() < 4
    written = save_equivariance(r, tmp_path)
    with np.load(written[0]) as d:
        assert np.array_equal(d["similarity"], r.similarity, equal_nan=True)
    lines = written[1].read_text().splitlines()
    assert lines[0].startswith("layer,type,map,images,dx=-8 dy=-8") and len(lines) == 1 + len(r.layers)
    assert "n/a" in written[1].read_text()           # shifts not finished have no images
    assert len(written) == 2, "the figure is the app's (gui)"


def test_report_states_each_checkpoints_equivariance(report_run):
    from padlens.core.data import load_split, stratified_subset
    from padlens.core.report import EQUIVARIANCE_GRID, EQUIVARIANCE_IMAGES
    from padlens.core.session import load_model
    text = report_run.md.read_text()
    assert "## Shift equivariance per layer (measured on the lossy JPEG copy of CIFAR-10)" in text
    test = load_split(report_run.data, "test")
    subset = test.images[stratified_subset(test.labels, EQUIVARIANCE_IMAGES, 0)]
    entry = report_run.doc["checkpoints"][0]
    lm = load_model(report_run.ckpts[0], torch.device("cpu"))
    direct = summarize(run_job(equivariance_job(lm.model, subset, lm.norm, EQUIVARIANCE_GRID, "roll")))
    e = entry["equivariance"]
    assert e["images"] == EQUIVARIANCE_IMAGES and e["mode"] == "roll"
    assert abs(e["output_period"] - direct["output_period"]) < 1e-9
    assert f"| {entry['label']} | zeros | {EQUIVARIANCE_IMAGES} |" in text and f"{e['output_period']:.4f}" in text
    assert (report_run.out / entry["label"] / "equivariance.csv").is_file()


def direct_similarity(model, pixels, spec, mode):
    """The definition, computed the plain way: every layer's output for each image and each shifted copy, moved
    by torch.roll or cut to the overlap, cosines in float64, averaged over the images (n/a: NaN)."""
    from padlens.core.equivariance import OUTPUT, _layers
    from padlens.core.layers import hook_outputs
    from padlens.core.shifts import shift
    found = _layers(model, NORM.apply(pixels[:1]))

    def outputs(x):
        got = {}
        hooks = hook_outputs(model, lambda p, out: got.__setitem__(p, out.double()), [(p, m) for p, m, _ in found])
        with torch.inference_mode():
            got[OUTPUT] = model(NORM.apply(x)).double()
        for h in hooks:
            h.remove()
        return [got[p] for p, _, _ in found] + [got[OUTPUT]]

    ref = outputs(pixels)
    shifts = [(dx, dy) for dy in spec.dys for dx in spec.dxs]
    sim = np.full((len(ref), len(shifts)), np.nan)
    for k, (dx, dy) in enumerate(shifts):
        out = outputs(shift(pixels, int(dx), int(dy), mode))
        for i, (a, r) in enumerate(zip(out, ref)):
            if a.dim() == 2 or a.shape[-2:] == (1, 1):
                pass                                       # no position left: compared unshifted
            else:
                h, w = a.shape[-2:]
                if (dx * w) % 32 or (dy * h) % 32:
                    continue
                fx, fy = dx * w // 32, dy * h // 32
                if mode == "roll":
                    r = torch.roll(r, (fy, fx), (-2, -1))
                elif abs(fx) >= w or abs(fy) >= h:
                    continue
                else:
                    a = a[..., max(0, fy):h + min(0, fy), max(0, fx):w + min(0, fx)]
                    r = r[..., max(0, -fy):h - max(0, fy), max(0, -fx):w - max(0, fx)]
            sim[i, k] = torch.nn.functional.cosine_similarity(a.flatten(1), r.flatten(1), eps=1e-300).mean().item()
    return sim


@pytest.mark.parametrize("mode", ["roll", "affine"])
def test_the_job_computes_the_definition(mode):
    """The strided comparisons of the job (padded references, whole-shift batches) give the plain computation's
    numbers, on a zero-padded model (where they differ from 1) and a grid of aligned and n/a shifts, wrapping
    rolls included (18 px on the 16-px maps)."""
    model, pixels, spec = tiny("zeros")[0], images(3), GridSpec(-6, 18, -2, 2, 2)
    r = run_job(equivariance_job(model, pixels, NORM, spec, mode, batch_images=2, batch_rows=5))
    want = direct_similarity(model, pixels, spec, mode)
    assert np.array_equal(np.isnan(r.similarity), np.isnan(want))
    assert np.nanmax(np.abs(r.similarity - want)) < 1e-5
    assert np.nanmin(want) < 0.99                          # something to get wrong
