"""`padlens coverage` and `padlens equivariance` on a checkpoint and on your own model, with --out files."""
import csv
import types

import numpy as np
import pytest
import torch
from torchvision.io import write_png

from padlens.cli.main import main
from padlens.core.checkpoint import save_checkpoint
from padlens.core.coverage import coverage_map
from padlens.core.data import CLASSES
from tests.tiny import NORM, tiny

OWN = """
from torch import nn

def build():
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, padding_mode="circular"), nn.ReLU(), nn.MaxPool2d(2),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))
"""


@pytest.fixture
def setup(tmp_path, cache_home):
    """A tiny zero-padded checkpoint, an own circular model and a test split in a folder named like the JPEG copy."""
    model, cfg = tiny("zeros")
    ckpt = tmp_path / "tiny.pt"
    save_checkpoint(ckpt, model, cfg, NORM, {"crop_pad": 4}, {"test_accuracy": 0.1})
    py = tmp_path / "own.py"
    py.write_text(OWN)
    gen = torch.Generator().manual_seed(0)
    for cls in CLASSES:
        d = tmp_path / "cifar10-jpeg" / "test" / cls
        d.mkdir(parents=True)
        for k in range(2):
            write_png(torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8, generator=gen), str(d / f"{k}.png"))
    return types.SimpleNamespace(ckpt=ckpt, model=model, data=tmp_path / "cifar10-jpeg", tmp=tmp_path,
                                 own=["--model-file", str(py), "--model-fn", "build"])


def test_coverage_prints_both_sizes_and_writes_the_maps(setup, capsys):
    out = setup.tmp / "cov"
    assert main(["coverage", "--checkpoint", str(setup.ckpt), "--device", "cpu", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "32x32" in text and "33x33" in text and "uneven at 33x33: model[1][1] MaxPool2d" in text
    with np.load(out / "coverage.npz") as d:
        counts = d["counts_32"]
        assert np.array_equal(counts, coverage_map(setup.model, 32).counts)
        assert d["counts_33"].shape == (33, 33)
    rows = list(csv.reader((out / "coverage.csv").open()))
    assert rows[0] == ["input_size", "y", "x", "paths"] and float(rows[1][3]) == counts[0, 0]
    assert (out / "coverage.png").read_bytes()[:4] == b"\x89PNG"


def test_coverage_of_an_own_circular_model_is_constant(setup, capsys):
    assert main(["coverage", *setup.own, "--device", "cpu", "--compare-size", "0"]) == 0
    text = capsys.readouterr().out
    row = next(line for line in text.splitlines() if line.startswith("32x32"))
    corner, edge, centre = row.split()[1:4]
    assert corner == edge == centre == "9" and "33x33" not in text


def test_coverage_refuses_a_size_the_model_cannot_take(setup, capsys):
    assert main(["coverage", "--checkpoint", str(setup.ckpt), "--device", "cpu", "--input-size", "4"]) == 2
    assert "does not run on a 4x4 input" in capsys.readouterr().err


def test_equivariance_writes_the_table_and_heatmap_and_says_jpeg(setup, capsys):
    out = setup.tmp / "eq"
    assert main(["equivariance", "--checkpoint", str(setup.ckpt), "--data", str(setup.data), "--device", "cpu",
                 "--images", "4", "--range", "-8", "8", "--step", "4", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "4 test images of CIFAR-10 (lossy JPEG copy)" in text and "model[1][1]" in text
    with np.load(out / "equivariance.npz") as d:
        sim, dx = d["similarity"], d["dx"]
        assert sim.shape == (len(d["layers"]), 25) and list(d["layers"])[-1] == "output"
        assert np.nanmin(sim) < 1 - 1e-3   # zero padding: not equivariant everywhere
    rows = list(csv.reader((out / "equivariance.csv").open()))
    assert rows[0][4] == f"dx={dx[0]} dy=-8" and rows[-1][0] == "output" and len(rows[1]) == 4 + 25
    assert (out / "equivariance.png").read_bytes()[:4] == b"\x89PNG"


def test_equivariance_of_an_own_circular_model_under_period_rolls_is_one(setup, capsys):
    assert main(["equivariance", *setup.own, "--data", str(setup.data), "--device", "cpu", "--images", "3",
                 "--range", "-4", "4", "--step", "2", "--mode", "roll"]) == 0
    text = capsys.readouterr().out
    conv = next(line for line in text.splitlines() if line.startswith("model[0] "))
    assert conv.split()[4] == "1.0000"   # the mean over its aligned shifts


def test_equivariance_rejects_bad_options(setup, capsys):
    base = ["equivariance", "--checkpoint", str(setup.ckpt), "--data", str(setup.data), "--device", "cpu"]
    assert main([*base, "--range", "8", "-8"]) == 2
    assert "the lowest shift comes first" in capsys.readouterr().err
    assert main([*base, "--images", "0"]) == 2
    assert "--images 0" in capsys.readouterr().err
