import csv
import sys
import types

import numpy as np
import pytest
import torch
from torchvision.io import write_png

from padlens.core.checkpoint import save_checkpoint
from padlens.cli.main import main
from padlens.core.data import CLASSES, Normalization, load_split, stratified_subset
from padlens.core.evaluate import evaluate
from padlens.core.model import ModelConfig, build_model
from padlens.core.translation import GridResult
from tests.conftest import TINY

NORM = Normalization((0.49, 0.48, 0.45), (0.25, 0.24, 0.26))


@pytest.fixture
def setup(tmp_path, tiny_model, cache_home):
    """A tiny checkpoint and an ImageFolder test split of 3 random PNGs per class."""
    ckpt = tmp_path / "tiny.pt"
    save_checkpoint(ckpt, tiny_model, TINY, NORM, {"epochs": 1, "crop_pad": 3}, {"test_accuracy": 0.1})
    gen = torch.Generator().manual_seed(0)
    for cls in CLASSES:
        d = tmp_path / "data" / "test" / cls
        d.mkdir(parents=True)
        for k in range(3):
            write_png(torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8, generator=gen), str(d / f"{k}.png"))
    return ckpt, tmp_path / "data"


def _translate(ckpt, data, out, *extra):
    return main(["translate", "--checkpoint", str(ckpt), "--data", str(data), "--range", "-4", "4", "--step", "4",
                 "--images", "20", "--out", str(out), "--device", "cpu", "--precision", "fp32", *extra])


def test_translate_writes_npz_csv_and_figures(setup, tmp_path, tiny_model, capsys, monkeypatch):
    ckpt, data = setup
    calls = []
    fake = types.ModuleType("padlens.gui.figures")
    fake.save_heatmap_figures = lambda result, out: calls.append((result, out)) or [out / "translation_heatmaps.png"]
    monkeypatch.setitem(sys.modules, "padlens.gui.figures", fake)
    assert _translate(ckpt, data, tmp_path / "out") == 0
    printed = capsys.readouterr().out

    with np.load(tmp_path / "out" / "translation.npz") as d:
        np.testing.assert_array_equal(d["dx"], [-4, 0, 4])
        np.testing.assert_array_equal(d["dy"], [-4, 0, 4])
        np.testing.assert_array_equal(d["count"], np.full((3, 3), 20))
        accuracy, consistency = d["accuracy"], d["consistency"]
        np.testing.assert_allclose(accuracy, d["correct"] / 20)
    r = GridResult.load_npz(tmp_path / "out" / "translation.npz")
    assert r.info["checkpoint"] == str(ckpt) and r.info["crop_pad"] == 3 and r.info["seed"] == 0
    assert r.info["images"] == 20 and "ImageFolder" in r.info["data"] and r.info["mode"] == "affine"
    assert r.info["precision"] == "fp32" and r.info["fused"] is False   # exact fp32 is never folded

    # the unshifted cell is the plain accuracy of the (unfused) model on the same stratified subset
    test = load_split(data, "test")
    idx = stratified_subset(test.labels, 20, 0)
    assert torch.bincount(test.labels[idx]).tolist() == [2] * 10
    plain = evaluate(tiny_model, test.images[idx], test.labels[idx], NORM, torch.device("cpu"))
    assert accuracy[1, 1] == pytest.approx(plain.accuracy) and consistency[1, 1] == 1.0

    rows = list(csv.DictReader((tmp_path / "out" / "translation.csv").open()))
    assert len(rows) == 9 and rows[0]["dx"] == "-4" and rows[0]["dy"] == "-4" and rows[4]["images"] == "20"
    assert float(rows[4]["accuracy"]) == pytest.approx(accuracy[1, 1], abs=1e-6)

    assert f"accuracy at (0, 0): {100 * accuracy[1, 1]:.2f}%" in printed
    assert f"mean accuracy over 9 shifts: {100 * accuracy.mean():.2f}%" in printed
    worst = np.unravel_index(np.argmin(accuracy), accuracy.shape)
    assert f"min accuracy: {100 * accuracy[worst]:.2f}% at (dx, dy) = ({[-4, 0, 4][worst[1]]}, " in printed
    assert "images per cell: 20" in printed and "translation_heatmaps.png" in printed
    assert len(calls) == 1 and calls[0][1] == tmp_path / "out" and calls[0][0].count.sum() == 9 * 20


def test_translate_without_figures_and_unfused(setup, tmp_path, capsys, monkeypatch):
    ckpt, data = setup
    monkeypatch.setitem(sys.modules, "padlens.gui.figures", None)     # importing it raises ImportError
    assert _translate(ckpt, data, tmp_path / "fused", "--precision", "bf16") == 0
    assert _translate(ckpt, data, tmp_path / "exact") == 0
    assert _translate(ckpt, data, tmp_path / "plain", "--no-fuse", "--mode", "roll") == 0
    assert _translate(ckpt, data, tmp_path / "plain_affine", "--no-fuse") == 0
    assert "note: no heatmap figures" in capsys.readouterr().out
    fused = GridResult.load_npz(tmp_path / "fused" / "translation.npz")
    exact = GridResult.load_npz(tmp_path / "exact" / "translation.npz")
    plain = GridResult.load_npz(tmp_path / "plain_affine" / "translation.npz")
    rolled = GridResult.load_npz(tmp_path / "plain" / "translation.npz")
    # exact fp32 runs the model as it is: folding would change its rounding
    assert fused.info["fused"] is True and exact.info["fused"] is False and plain.info["fused"] is False
    np.testing.assert_array_equal(exact.loss_sum, plain.loss_sum)
    assert rolled.info["mode"] == "roll" and not np.array_equal(rolled.loss_sum, plain.loss_sum)
    assert _translate(ckpt, data, tmp_path / "row", "--y-range", "0", "0") == 0   # horizontal shifts only
    row = GridResult.load_npz(tmp_path / "row" / "translation.npz")
    assert list(row.dys) == [0] and list(row.dxs) == [-4, 0, 4]
    np.testing.assert_array_equal(row.correct[0], fused.correct[1])            # the dy = 0 row of the square grid


def test_translate_rejects_bad_grid(setup, tmp_path, capsys):
    ckpt, data = setup
    rc = main(["translate", "--checkpoint", str(ckpt), "--data", str(data), "--range", "4", "-4",
               "--out", str(tmp_path / "o")])
    assert rc == 2 and "range minimum" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_bias_command_prints_every_layer(tmp_path, capsys):
    cfg = ModelConfig(widths=(8, 16, 16), stem_width=6, padding_mode="circular")
    model = build_model(cfg).eval()
    with torch.no_grad():                    # a whitening stem: +/- filter pairs, whose mean kernel cancels
        model[0][0].weight.copy_(torch.cat([model[0][0].weight[:3], -model[0][0].weight[:3]]))
    save_checkpoint(tmp_path / "c.pt", model, cfg, Normalization((0.5,) * 3, (0.25,) * 3), {}, {})
    assert main(["bias", "--checkpoint", str(tmp_path / "c.pt"), "--input-size", "36", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("model[1][0]"))
    assert row.split()[2] == "0.000", "circular padding: a blank input gives no border bias"
    assert row.split()[4] != "n/a"
    assert next(line for line in out.splitlines() if line.startswith("model[0][0]")).split()[4] == "n/a"
    assert "UNEVEN" in next(line for line in out.splitlines() if line.startswith("model[3][1]"))


def test_bias_and_translate_refuse_an_input_size_the_model_cannot_take(setup, tmp_path, capsys):
    """Reflect padding needs maps wider than the pad: at 12 the last conv would see 1x1 (was a traceback)."""
    ckpt, data = setup
    cfg = ModelConfig(widths=(8, 16, 16), stem_width=6, padding_mode="reflect")
    save_checkpoint(tmp_path / "r.pt", build_model(cfg).eval(), cfg, NORM, {}, {})
    assert main(["bias", "--checkpoint", str(tmp_path / "r.pt"), "--input-size", "12", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("padlens: error: the model does not run on a 12x12 input (the smallest larger size "
                          "it takes is 16x16)") and err.count("\n") == 1
    assert _translate(tmp_path / "r.pt", data, tmp_path / "t", "--input-size", "12") == 2
    assert "smallest larger size it takes is 16x16" in capsys.readouterr().err and not (tmp_path / "t").exists()
    assert _translate(ckpt, data, tmp_path / "z", "--input-size", "6") == 2     # zeros: pooled to nothing
    assert "6x6 input (the smallest larger size it takes is 8x8)" in capsys.readouterr().err


def test_bias_command_writes_table_maps_and_figures(tmp_path, setup, capsys):
    from torchvision.io import read_image
    ckpt, data = setup
    out = tmp_path / "bias"
    assert main(["bias", "--checkpoint", str(ckpt), "--data", str(data), "--mean-images", "20", "--device", "cpu",
                 "--out", str(out)]) == 0
    rows = list(csv.reader((out / "bias.csv").open()))
    assert rows[0][:3] == ["layer", "type", "bias normalized"] and rows[0][4] == "bias mean of 20"
    printed = capsys.readouterr().out
    assert next(r for r in rows if r[0] == "model[1][0]")[2] in next(
        line for line in printed.splitlines() if line.startswith("model[1][0]"))
    with np.load(out / "maps.npz") as d:
        m = d["normalized/model[1][0]"]
        assert m.shape == (32, 32) and "mean of 20/model[3][6]" in d.files
    for name in ("maps_normalized.png", "maps_pixel.png", "maps_mean_of_20.png", "mean_filters.png"):
        assert read_image(str(out / name)).shape[0] == 3, name


def test_the_app_takes_data_and_device(monkeypatch, tmp_path):
    seen = []
    fake = types.ModuleType("padlens.gui.app")
    fake.main = lambda a: seen.append(a) or 0
    monkeypatch.setitem(sys.modules, "padlens.gui.app", fake)
    assert main(["--device", "cpu", "--data", str(tmp_path)]) == 0
    assert seen[0].device == "cpu" and seen[0].data == str(tmp_path) and seen[0].command is None


def test_an_uncaught_error_in_the_app_becomes_a_message(qapp, monkeypatch, capsys):
    from PyQt6.QtWidgets import QMessageBox

    from padlens.gui.app import report_uncaught
    shown = []
    monkeypatch.setattr(QMessageBox, "critical", lambda *a: shown.append(a[2]))
    try:
        raise KeyError("layer")
    except KeyError as e:
        report_uncaught(type(e), e, e.__traceback__)
    assert "KeyError: 'layer'" in shown[0] and "Traceback" in capsys.readouterr().err


def test_train_refuses_a_cutout_bigger_than_the_image(tmp_path, capsys):
    from padlens.cli.main import main
    assert main(["train", "--run", str(tmp_path / "run"), "--cutout", "40", "--data", str(tmp_path)]) == 2
    assert "--cutout 40" in capsys.readouterr().err and not (tmp_path / "run").exists()
