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
from tests.figure_checks import assert_paper_figure
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
    assert_paper_figure(out / "coverage.png", out / "coverage.svg", "tiny", "33x33")


def test_coverage_modes_put_other_paddings_beside_the_models_own(setup, capsys):
    out = setup.tmp / "modes"
    assert main(["coverage", "--checkpoint", str(setup.ckpt), "--device", "cpu", "--modes", "circular,zeros",
                 "--compare-size", "0", "--out", str(out)]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.split()[1:2] == ["32x32"]]
    assert [r[0] for r in rows] == ["zeros", "circular"], "the model's own first, each mode once"
    assert rows[1][2] == rows[1][3] == rows[1][4] and rows[0][2] != rows[0][4], "circular: constant; zeros: not"
    with np.load(out / "coverage_circular.npz") as d:
        assert np.ptp(d["counts_32"]) == 0
    assert (out / "coverage.npz").is_file() and not (out / "coverage_zeros.npz").exists()
    assert_paper_figure(out / "coverage.png", out / "coverage.svg", "circular", "zeros (this model)")
    assert main(["coverage", "--checkpoint", str(setup.ckpt), "--device", "cpu", "--modes", "mirror"]) == 2
    assert "unknown padding mode mirror" in capsys.readouterr().err


def test_coverage_of_an_own_circular_model_is_constant(setup, capsys):
    assert main(["coverage", *setup.own, "--device", "cpu", "--compare-size", "0"]) == 0
    text = capsys.readouterr().out
    row = next(line for line in text.splitlines() if line.split()[1:2] == ["32x32"])
    corner, edge, centre = row.split()[2:5]
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
    assert_paper_figure(out / "equivariance.png", out / "equivariance.svg", "lossy JPEG copy", "cosine similarity")


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


def test_blindspots_prints_the_map_and_writes_the_files(setup, capsys):
    out = setup.tmp / "bs"
    assert main(["blindspots", "--checkpoint", str(setup.ckpt), "--data", str(setup.data), "--device", "cpu",
                 "--images", "3", "--patch-size", "8", "--stride", "8", "--background", "mean", "--precision", "fp32",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "3 test images of CIFAR-10 (lossy JPEG copy)" in text and "8x8 patch every 8 px" in text
    assert "y\\x     0    8   16   24" in text   # columns x, rows y
    with np.load(out / "blindspots.npz") as d:
        acc = d["accuracy"]
        assert acc.shape == (4, 4) and (d["count"] == 3).all()
    row = next(line for line in text.splitlines() if line.startswith("  16 "))
    assert row.split()[1:] == [f"{100 * v:.0f}" for v in acc[2]]
    rows = list(csv.reader((out / "blindspots.csv").open()))
    assert rows[0][:3] == ["model", "x", "y"] and len(rows) == 1 + 16 and rows[1][0] == "tiny"
    assert_paper_figure(out / "blindspots.png", out / "blindspots.svg", "8x8 patch every 8 px", "accuracy",
                        "lossy JPEG copy")


def test_blindspots_ctrl_c_reports_the_images_finished(setup, capsys, monkeypatch):
    from padlens.cli import terminal
    calls = iter(range(100))   # two checks per image (81 positions in batches of 64): the fifth stops
    monkeypatch.setattr(terminal.CtrlC, "__call__", lambda self: next(calls) >= 4 and setattr(self, "pressed", True)
                        or self.pressed)
    out = setup.tmp / "bs"
    assert main(["blindspots", "--checkpoint", str(setup.ckpt), "--data", str(setup.data), "--device", "cpu",
                 "--images", "5", "--patch-size", "16", "--stride", "2", "--precision", "fp32",
                 "--out", str(out)]) == 130
    assert "(interrupted: partial, 2 of 5 images)" in capsys.readouterr().out
    with np.load(out / "blindspots.npz") as d:
        assert (d["count"] == 2).all()


def test_blindspots_rejects_bad_options(setup, capsys):
    base = ["blindspots", "--checkpoint", str(setup.ckpt), "--data", str(setup.data), "--device", "cpu"]
    assert main([*base, "--patch-size", "33"]) == 2
    assert "patch size 33: give 1 to 32 pixels" in capsys.readouterr().err
    assert main([*base, "--stride", "0"]) == 2
    assert "stride 0" in capsys.readouterr().err
    assert main([*base, "--images", "0"]) == 2
    assert "--images 0" in capsys.readouterr().err


def test_channels_ranks_every_layer_ablates_the_top_and_writes_the_files(setup, capsys):
    from padlens.core.activations import blank_input, capture
    from padlens.core.channels import rank_channels
    out = setup.tmp / "ch"
    assert main(["channels", "--checkpoint", str(setup.ckpt), "--data", str(setup.data), "--device", "cpu",
                 "--images", "20", "--grid-images", "4", "--mean-images", "10", "--ablate", "2", "--top", "3",
                 "--precision", "fp32", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "blank: blank input, all zeros after normalization" in text and "mean: dataset mean" in text
    assert "(10 test images); per layer the channels scoring >= 0.5 and the top 3" in text
    assert "model[3][4] Conv2d 16x4x4, blank input, mean filters of model[3][4]:" in text
    direct = rank_channels(setup.model, capture(setup.model, blank_input("normalized", NORM))[0])[(3, 4)]
    top = direct.top(2)
    assert f"zeroing channels {top} of model[3][4] Conv2d (the top 2 on the blank input):" in text
    assert "accuracy on 20 test images (fp32): before" in text and "predictions changed:" in text
    assert "translation grid (affine, 25 shifts, 4 images)" in text
    assert sorted(p.name for p in out.iterdir()) == ["channels.csv", "channels.npz", "channels.png", "channels.svg",
                                                     "channels_ablation.csv", "channels_ablation.png",
                                                     "channels_ablation.svg"]
    with np.load(out / "channels.npz") as d:
        np.testing.assert_array_equal(d["blank/model[3][4]/score"], direct.score)
        assert list(d["ablation/channels"]) == top and int(d["ablation/evaluated"]) == 20
    rows = list(csv.reader((out / "channels.csv").open()))
    assert rows[0][:6] == ["input", "layer", "type", "map", "rank", "channel"]
    assert {r[0] for r in rows[1:]} == {"blank", "mean"}
    assert_paper_figure(out / "channels.png", out / "channels.svg", "the top 3 channels of", min_width=600)
    assert_paper_figure(out / "channels_ablation.png", out / "channels_ablation.svg", "after - before")


def test_channels_of_one_layer_without_ablation_needs_no_data_and_bad_options_are_refused(setup, capsys,
                                                                                           monkeypatch):
    monkeypatch.delenv("PADLENS_DATA", raising=False)
    base = ["channels", "--checkpoint", str(setup.ckpt), "--device", "cpu"]
    assert main([*base, "--layer", "model[2][6]", "--ablate", "0", "--mean-images", "0"]) == 0
    text = capsys.readouterr().out
    assert "model[2][6] GELU 16x8x8, blank input, mean filters of model[2][4]:" in text and "zeroing" not in text
    assert main([*base, "--layer", "model[9]", "--ablate", "0", "--mean-images", "0"]) == 2
    assert "no ranked layer 'model[9]': give one of model[0][0]" in capsys.readouterr().err
    assert main([*base, "--input", "mean", "--mean-images", "0"]) == 2
    assert "--input mean ranks on the dataset mean" in capsys.readouterr().err
    assert main([*base, "--top", "0"]) == 2
    assert "--top 0: give a number of channels, at least 1" in capsys.readouterr().err
