"""Padding-aware channels: a channel built to respond only at the border ranks first, zeroing it removes its border
bias and changes the outputs only through it, the files hold the numbers, the report states them."""
import csv
import math

import numpy as np
import pytest
import torch

from padlens.core.activations import blank_input, capture
from padlens.core.channels import (ABLATION_HEAD, CSV_HEAD, ChannelAblation, ablated, ablation_job, default_layer,
                                   find_layer, rank_channels, save_channels, scan_job, summarize)
from padlens.core.jobs import run_job
from padlens.core.layers import iter_paths
from padlens.core.session import LoadedModel
from padlens.core.spatial_bias import border_bias
from padlens.core.translation import GridSpec
from tests.tiny import NORM, tiny

CONV, BORDER = (1, 0), 3   # model[1][0] (6 -> 8 channels); channel 3 responds at the border only


def border_model():
    """tiny() whose stem outputs a positive constant on the blank input and whose model[1][0] passes it through its
    centre tap only (a constant map: no border effect), except channel 3: a kernel summing to 0 (8 in the centre, -1
    around), which gives 0 inside and a positive response only where the zero padding cuts the kernel."""
    model, _ = tiny()
    with torch.no_grad():
        model[0][0].bias.fill_(0.5)
        conv = model[CONV[0]][CONV[1]]
        conv.weight.zero_()
        conv.weight[:, :, 1, 1] = torch.linspace(0.2, 1.0, conv.out_channels)[:, None]
        conv.weight[BORDER] = -1.0
        conv.weight[BORDER, :, 1, 1] = 8.0
    return model.eval()


def blank_ranking(model):
    acts, _ = capture(model, blank_input("normalized", NORM))
    return rank_channels(model, acts)


def test_a_channel_that_responds_only_at_the_border_ranks_first():
    model = border_model()
    layers = blank_ranking(model)
    lc = layers[CONV]
    assert lc.label == "model[1][0] Conv2d 8x32x32"
    assert lc.top(1) == [BORDER] and lc.score[BORDER] > 0.5 and lc.responding() == 1
    assert lc.centre[BORDER] == pytest.approx(0, abs=1e-5) and lc.border[BORDER] > 0.1
    assert np.all(np.delete(lc.score, BORDER) == 0)        # the centre-only channels are constant maps
    # one definition: the score is core.spatial_bias.border_bias of the channel's own map, signed
    assert lc.score[BORDER] == border_bias(torch.from_numpy(lc.maps[BORDER]).double(), signed=True)
    # each channel's mean filter is its kernel averaged over the input channels, for the conv and what follows it
    w = model[1][0].weight.detach()
    np.testing.assert_allclose(lc.filters[BORDER], w[BORDER].mean(0).numpy(), rtol=1e-6)
    assert layers[(1, 3)].conv == "model[1][0]" and layers[(1, 3)].filters.shape == (8, 3, 3)
    assert all(min(x.maps.shape[1:]) >= 3 for x in layers.values())   # below 3x3 there is no centre to rank by
    assert (4, 0) not in layers


def test_zeroing_the_channel_removes_its_border_bias(fake_data):
    model = border_model()
    loaded = LoadedModel(model, NORM, "border")
    r = run_job(ablation_job(loaded, fake_data, CONV, [BORDER], images=20, grid_images=0, precision="fp32"))
    i = r.bias_layers.index("model[1][0]")
    assert r.bias_before[i] > 0.1 and r.bias_after[i] == 0.0   # what is left are the constant channels
    s = summarize(r)
    assert s["bias_at_layer"] == [r.bias_before[i], 0.0] and s["grid"] is None
    assert r.evaluated == 20 and r.complete
    assert "model[1][0]" in r.layer and list(model[1][0].weight.shape) == [8, 6, 3, 3]   # the model is not changed


def test_zeroing_changes_the_outputs_only_through_that_channel(fake_data):
    model = border_model()
    x = NORM.apply(fake_data.images[:8])
    by_hand = border_model()
    with torch.no_grad():
        by_hand[1][0].weight[BORDER] = 0   # the conv's own output in that channel: exactly zero
    cut = ablated(model, CONV, [BORDER], 8)
    assert isinstance(cut[1][0], ChannelAblation)
    assert [p for p, _ in iter_paths(cut) if p != (1, 0, "layer")] == [p for p, _ in iter_paths(model)]
    with torch.inference_mode():
        assert torch.equal(cut(x), by_hand(x)) and not torch.equal(cut(x), model(x))
    # with the next convolution blind to channel 3, zeroing it changes no prediction and no accuracy
    with torch.no_grad():
        model[1][4].weight[:, BORDER] = 0
    r = run_job(ablation_job(LoadedModel(model, NORM, "border"), fake_data, CONV, [BORDER], images=40,
                             grid_images=0, precision="fp32"))
    assert r.changed == 0 and r.correct[0] == r.correct[1] and r.evaluated == 40
    d, (lo, hi) = r.difference
    assert d == 0 and lo < 0 < hi


def test_ablation_with_a_grid_and_its_intervals(fake_data, cache_home):
    model, _ = tiny()
    loaded = LoadedModel(model, NORM, "tiny", cache_id="tiny-test")
    spec = GridSpec(-4, 4, -4, 4, 4)
    events, partials = [], []
    job = ablation_job(loaded, fake_data, (2, 6), [0, 1, 2], images=30, grid_images=10, spec=spec, precision="fp32")
    r = run_job(job, on_progress=events.append, on_partial=partials.append)
    before, after = r.grids
    assert before.images == after.images == 10 and before.accuracy.shape == (3, 3)
    np.testing.assert_array_equal(r.grid_difference, after.accuracy - before.accuracy)
    assert events[-1].done == events[-1].total   # the counts add up to the whole job
    # a snapshot after the border bias, the accuracy and each grid; the first has no accuracy yet
    assert len(partials) == 4 and partials[0].evaluated == 0 and partials[2].grids[1] is None
    assert partials[0] is not r and partials[-1].complete
    s = summarize(r)
    assert s["images"] == 30 and s["changed"] == r.changed and s["grid"]["shifts"] == 9
    (b, a), ((lo, hi), _) = r.accuracy, r.intervals
    assert lo <= b <= hi and s["interval_before"] == [lo, hi]
    assert (cache_home / "padlens" / "translation").is_dir()   # both grids went through core.grid_cache
    assert len(list((cache_home / "padlens" / "translation").glob("*.npz"))) == 2
    again = run_job(ablation_job(loaded, fake_data, (2, 6), [0, 1, 2], images=30, grid_images=10, spec=spec,
                                 precision="fp32"))
    np.testing.assert_array_equal(again.grids[1].correct, after.correct)


def test_scan_job_ranks_each_input_and_stops_between_them(fake_data):
    model, _ = tiny()
    events, partials = [], []
    scan = run_job(scan_job(model, NORM, fake_data.images[:20], ("blank", "black", "mean")),
                   on_progress=events.append, on_partial=partials.append)
    assert list(scan.inputs) == ["blank", "black", "mean"] and scan.info["mean_images"] == 20
    assert events[-1].done == events[-1].total == 22   # one per blank input, one per image of the mean
    assert [list(p.inputs) for p in partials] == [["blank"], ["blank", "black"], ["blank", "black", "mean"]]
    assert default_layer(scan) == (3, 4)      # the last convolution
    assert find_layer(scan, "model[2][6]") == (2, 6)
    with pytest.raises(ValueError, match=r"no ranked layer 'model\[9\]': give one of model\[0\]\[0\]"):
        find_layer(scan, "model[9]")
    calls = iter(range(100))
    partial = run_job(scan_job(model, NORM, fake_data.images[:20], ("blank", "mean"),
                               should_stop=lambda: next(calls) >= 2))
    assert list(partial.inputs) == ["blank"]   # a dataset mean stopped part-way is not ranked
    with pytest.raises(ValueError, match="inputs must be among"):
        run_job(scan_job(model, NORM, None, ("noise",)))


def test_bad_channels_are_refused():
    model, _ = tiny()
    with pytest.raises(ValueError, match="model\\[1\\]\\[0\\] has channels 0 to 7, not 8"):
        ablated(model, (1, 0), [8], 8)
    with pytest.raises(ValueError, match="at least one channel"):
        ablated(model, (1, 0), [], 8)


def test_files_hold_the_ranking_and_the_ablation(fake_data, tmp_path):
    model = border_model()
    scan = run_job(scan_job(model, NORM, fake_data.images[:10], ("blank", "mean"),
                            info={"data": "CIFAR-10 JPEG test"}))
    r = run_job(ablation_job(LoadedModel(model, NORM, "border"), fake_data, CONV, [BORDER], images=20, grid_images=4,
                             spec=GridSpec(-4, 4, 0, 0, 4), precision="fp32"))
    written = save_channels(scan, tmp_path, CONV, ablation=r)
    assert [p.name for p in written] == ["channels.npz", "channels.csv", "channels_ablation.csv"]
    with np.load(written[0]) as d:
        np.testing.assert_array_equal(d["blank/model[1][0]/score"], scan.layer("blank", CONV).score)
        assert d["mean/model[1][0]/maps"].shape == (8, 32, 32) and "blank/model[2][0]/maps" not in d.files
        assert list(d["ablation/correct"]) == list(r.correct) and d["ablation/grid_accuracy_after"].shape == (1, 3)
    rows = list(csv.reader(written[1].open()))
    assert rows[0] == CSV_HEAD
    first = next(x for x in rows if x[0] == "blank" and x[1] == "model[1][0]")
    assert first[4:6] == ["1", str(BORDER)] and first[-1] == "model[1][0]"
    layers = scan.inputs["blank"].values()
    assert len(rows) == 1 + 2 * sum(len(x.score) for x in layers)
    ab = list(csv.reader(written[2].open()))
    assert ab[0] == ABLATION_HEAD and ab[1][0] == "accuracy" and ab[1][-1] == "20"
    bias = next(x for x in ab if x[0] == "border_bias" and x[1] == "model[1][0]")
    assert float(bias[4]) > 0.1 and float(bias[5]) == 0
    assert sum(x[0] == "grid_accuracy" for x in ab) == 3


def test_report_states_each_checkpoints_channels(report_run):
    from padlens.core.report import CHANNEL_ABLATE
    from padlens.core.session import load_model
    text = report_run.md.read_text()
    assert "## Padding-aware channels (measured on the lossy JPEG copy of CIFAR-10)" in text
    entry = report_run.doc["checkpoints"][0]
    c = entry["channels"]
    a = c["ablation"]
    lm = load_model(report_run.ckpts[0], torch.device("cpu"))
    direct = blank_ranking(lm.model)
    assert a["layer"] == "model[3][4]" and a["channels"] == direct[(3, 4)].top(CHANNEL_ABLATE)
    assert a["images"] == 40 and c["mean_images"] == 20   # the split holds 40 images; the report's mean averages 20
    blank = {x["layer"]: x for x in c["inputs"]["blank"]}
    assert blank["model[3][4]"]["responding"] == direct[(3, 4)].responding()
    assert f"{a['changed']} of 40 |" in text and f"| {entry['label']} | zeros |" in text
    assert math.isfinite(a["accuracy_before"]) and (report_run.out / entry["label"] / "channels.csv").is_file()
