"""The comparison job without widgets: two tiny checkpoints (zeros and circular padding) on a fake test split."""
import math
from itertools import pairwise

import pytest
import torch

from padlens.core.checkpoint import save_checkpoint
from padlens.core.comparison import common_layers, comparison_job
from padlens.core.jobs import run_job
from padlens.core.layers import describe_layers
from padlens.core.session import load_model
from padlens.core.translation import GridSpec
from tests.tiny import NORM, tiny


@pytest.fixture
def models(tmp_path, cache_home):
    out = []
    for mode in ("zeros", "circular"):
        model, cfg = tiny(mode)
        path = tmp_path / f"{mode}.pt"
        save_checkpoint(path, model, cfg, NORM, {"crop_pad": 4}, {"test_accuracy": 0.1})
        out.append((str(path), mode, load_model(path, torch.device("cpu"))))
    return out


def test_the_job_yields_one_partial_per_checkpoint(models, fake_data):
    partials, progress = [], []
    out = run_job(comparison_job(models, fake_data, GridSpec.square(-4, 4, 4), "roll", 10, precision="fp32"),
                  on_progress=progress.append, on_partial=partials.append)
    assert out["complete"] and [len(p["entries"]) for p in partials] == [1, 2]
    assert progress[-1].done == progress[-1].total and all(a.done <= b.done for a, b in pairwise(progress))
    zeros, circ = out["entries"]
    assert zeros.mean_images == 10 and zeros.grid.images == 10 and zeros.grid.info["mode"] == "roll"
    # every leaf layer with a [C,H,W] output has a map; maps below 3x3 have no bias
    assert (4, 0) in zeros.blank_maps and math.isnan(zeros.blank_bias[(4, 0)])
    assert (1,) not in zeros.blank_maps              # containers are not counted twice
    assert circ.bias_all("blank") < 1e-4 < zeros.bias_all("blank")


def test_stopped_after_the_first_checkpoint_it_keeps_that_one(models, fake_data):
    stop = []
    job = comparison_job(models, fake_data, GridSpec.square(-4, 4, 4), "affine", 10, precision="fp32",
                         should_stop=lambda: bool(stop))
    out = run_job(job, on_partial=lambda p: stop.append(1))
    assert not out["complete"] and [e.padding for e in out["entries"]] == ["zeros"]
    assert out["entries"][0].grid_done and out["entries"][0].mean_images == 10


def test_common_layers_are_those_every_model_has_at_the_same_path_and_shape():
    small, wide = tiny()[0], torch.nn.Sequential(*tiny()[0])
    wide[4] = torch.nn.Sequential(torch.nn.Conv2d(16, 3, 1))   # another head: its layers are not shared
    infos = [describe_layers(small), describe_layers(wide)]
    shared = common_layers(infos)
    assert shared and all(not i.is_container and len(i.output_shape) == 3 for i in shared)
    assert {i.path for i in shared} == {i.path for i in infos[0] if i.path[0] < 4 and not i.is_container
                                        and len(i.output_shape) == 3}
    assert common_layers([]) == []
