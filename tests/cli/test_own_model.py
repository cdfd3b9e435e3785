"""Every command, and the app, on your own model (--model-file/--model-fn/--weights/--input-scale)."""
import csv
import json
import sys
import types

import numpy as np
import pytest
import torch
from torchvision.io import write_png

from padlens.cli.main import main
from padlens.core.checkpoint import save_checkpoint
from padlens.core.custom_model import NORMALIZATIONS
from padlens.core.data import CLASSES, load_split, stratified_subset
from padlens.core.evaluate import evaluate
from padlens.core.layers import describe_layers, format_layers
from padlens.core.session import load_custom
from tests.tiny import NORM, tiny

OWN = """
import torch
from torch import nn

def build():
    torch.manual_seed(3)
    return nn.Sequential(
        nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect"), nn.BatchNorm2d(4), nn.ReLU(),
                      nn.MaxPool2d(2)),
        nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10)))

def other():
    return nn.Sequential(nn.Conv2d(3, 6, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 10))

def raises():
    raise RuntimeError("out of coffee")

def for_28():
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 28 * 28, 10))
"""


@pytest.fixture
def own(tmp_path, cache_home):
    """own.py, trained-looking weights for build() (not its seed's: they must come from the file), a tiny
    checkpoint and an ImageFolder test split of 3 random PNGs per class."""
    py = tmp_path / "own.py"
    py.write_text(OWN)
    weights = tmp_path / "own.pt"
    model = load_custom(py, "build").model
    torch.manual_seed(7)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_()
    torch.save(model.state_dict(), weights)
    ckpt = tmp_path / "tiny.pt"
    save_checkpoint(ckpt, tiny()[0], tiny()[1], NORM, {"crop_pad": 4}, {"test_accuracy": 0.1})
    gen = torch.Generator().manual_seed(0)
    for cls in CLASSES:
        d = tmp_path / "data" / "test" / cls
        d.mkdir(parents=True)
        for k in range(3):
            write_png(torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8, generator=gen), str(d / f"{k}.png"))
    return types.SimpleNamespace(py=py, weights=weights, ckpt=ckpt, data=tmp_path / "data", tmp=tmp_path,
                                 args=["--model-file", str(py), "--model-fn", "build", "--weights", str(weights)])


def test_layers_lists_the_own_model(own, capsys):
    assert main(["layers", *own.args]) == 0
    expected = format_layers(describe_layers(load_custom(own.py, "build", own.weights).model))
    assert capsys.readouterr().out == expected + "\n" and "Conv2d" in expected


def test_eval_uses_the_weights_and_the_input_scale(own, capsys):
    assert main(["eval", *own.args, "--input-scale", "unit", "--data", str(own.data), "--device", "cpu",
                 "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    test = load_split(own.data, "test")
    model = load_custom(own.py, "build", own.weights, torch.device("cpu"), "unit").model
    cpu = torch.device("cpu")
    unit = evaluate(model, test.images, test.labels, NORMALIZATIONS["unit"][1], cpu)
    cifar = evaluate(model, test.images, test.labels, NORMALIZATIONS["cifar10"][1], cpu)
    assert r["model"] == "own.build" and r["checkpoint"] == str(own.weights) and r["images"] == 30
    assert r["loss"] == pytest.approx(unit.loss, abs=1e-5) and r["accuracy"] == pytest.approx(unit.accuracy)
    assert abs(unit.loss - cifar.loss) > 1e-3   # the scaling matters, so the match above says it was applied


def test_translate_grid_of_the_own_model(own, tmp_path, capsys, monkeypatch):
    fake = types.ModuleType("padlens.gui.figures")   # the Qt figures are tested with the GUI
    fake.save_heatmap_figures = lambda result, out, name: []
    monkeypatch.setitem(sys.modules, "padlens.gui.figures", fake)
    assert main(["translate", *own.args, "--data", str(own.data), "--range", "-4", "4", "--step", "4",
                 "--images", "20", "--out", str(tmp_path / "out"), "--device", "cpu", "--precision", "fp32"]) == 0
    assert capsys.readouterr().out.startswith("own.build on ")
    with np.load(tmp_path / "out" / "translation.npz") as d:
        np.testing.assert_array_equal(d["count"], np.full((3, 3), 20))
        unshifted = d["accuracy"][1, 1]
    test = load_split(own.data, "test")
    idx = stratified_subset(test.labels, 20, 0)
    model = load_custom(own.py, "build", own.weights, torch.device("cpu")).model
    plain = evaluate(model, test.images[idx], test.labels[idx], NORMALIZATIONS["cifar10"][1], torch.device("cpu"))
    assert unshifted == pytest.approx(plain.accuracy)


def test_bias_table_and_files_of_the_own_model(own, tmp_path, capsys):
    assert main(["bias", *own.args, "--device", "cpu", "--out", str(tmp_path / "bias")]) == 0
    printed = capsys.readouterr().out
    rows = list(csv.reader((tmp_path / "bias" / "bias.csv").open()))
    leaves = [i for i in describe_layers(load_custom(own.py, "build", own.weights).model) if not i.is_container]
    assert [r[0] for r in rows[1:]] == [i.name for i in leaves]
    conv = next(r for r in rows if r[1] == "Conv2d")
    assert conv[-1] and float(conv[2]) >= 0   # padding arithmetic and a border bias for the convolution
    assert all(i.name in printed for i in leaves) and (tmp_path / "bias" / "maps.npz").is_file()


def test_report_on_own_model_and_a_checkpoint(own, tmp_path):
    out = tmp_path / "report"
    assert main(["report", *own.args, "--checkpoints", str(own.ckpt), "--data", str(own.data), "--out", str(out),
                 "--device", "cpu", "--images", "20", "--range", "-4", "4", "--step", "4", "--mean-images", "20",
                 "--modes", "affine", "--precision", "fp32", "--no-figures"]) == 0
    doc = json.loads((out / "report.json").read_text())
    mine, ckpt = doc["checkpoints"]
    assert (mine["label"], mine["custom"], mine["padding_mode"], mine["crop_pad"]) == ("own", True, "reflect", None)
    assert mine["model_config"] == {} and mine["checkpoint"] == str(own.weights)
    assert (ckpt["label"], ckpt["custom"], ckpt["padding_mode"], ckpt["crop_pad"]) == ("tiny", False, "zeros", 4)
    test = load_split(own.data, "test")
    model = load_custom(own.py, "build", own.weights, torch.device("cpu")).model
    plain = evaluate(model, test.images, test.labels, NORMALIZATIONS["cifar10"][1], torch.device("cpu"))
    assert mine["eval"]["accuracy"] == pytest.approx(plain.accuracy) and mine["eval"]["images"] == 30
    assert (out / "own" / "translation_affine.npz").is_file() and "own" in (out / "report.md").read_text()


def test_app_opens_the_own_model(own, qtbot, tmp_path, monkeypatch):
    from PyQt6.QtCore import QSettings
    from PyQt6.QtWidgets import QApplication

    from padlens.gui.main_window import MainWindow
    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(tmp_path / "config"))
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    own.ckpt.rename(shipped / "vgg_zeros.pt")   # what the window opens first: a tiny stand-in for the flagship
    monkeypatch.setenv("PADLENS_CHECKPOINTS", str(shipped))
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)   # the app installs its own
    shown = []

    def run_window(app):
        win = next(w for w in app.topLevelWidgets() if isinstance(w, MainWindow))
        qtbot.addWidget(win)
        qtbot.waitUntil(lambda: win.data_label.text() == "no data set", timeout=10000)
        shown.append((win.explorer.loaded.name, win.explorer.loaded.meta["normalization_name"], win.isVisible()))
        return 0

    monkeypatch.setattr(QApplication, "exec", run_window)
    assert main([*own.args, "--input-scale", "imagenet", "--data", str(tmp_path / "no-data"), "--device", "cpu"]) == 0
    assert shown == [("own.build", "imagenet", True)]


BAD = {   # the model options -> what the message must name
    "syntax": (["--model-fn", "build"], "syntax error at line 2"),
    "missing function": (["--model-fn", "nope"], "has no function 'nope'"),
    "raises": (["--model-fn", "raises"], "out of coffee"),
    "wrong input size": (["--model-fn", "for_28"], "does not accept a CIFAR-10 batch of shape [1, 3, 32, 32]"),
    "weights do not fit": (["--model-fn", "other", "--weights", "own.pt"], "does not fit the model"),
    "no function named": ([], "needs --model-fn NAME"),
}


def _error(args, capsys) -> str:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("padlens: error: ") and "Traceback" not in err
    return err


@pytest.mark.parametrize("case", list(BAD))
def test_bad_own_model_is_a_clear_error(own, case, capsys):
    options, message = BAD[case]
    py = own.py
    if case == "syntax":
        py = own.tmp / "broken.py"
        py.write_text("import torch\ndef build(:\n")
    options = [str(own.tmp / o) if o.endswith(".pt") else o for o in options]
    assert message in _error(["layers", "--model-file", str(py), *options], capsys)


@pytest.mark.parametrize("command", ["layers", "eval", "translate", "bias", "report", "coverage", "equivariance",
                                     "blindspots", "channels", "app"])
def test_every_command_reports_a_failing_model_without_a_window(own, command, capsys, monkeypatch):
    monkeypatch.setattr("padlens.gui.app.main", lambda *a: pytest.fail("the window opened on a broken model"))
    extra = {"translate": ["--out", str(own.tmp / "t")], "report": ["--out", str(own.tmp / "r")]}.get(command, [])
    args = [*([] if command == "app" else [command]), "--model-file", str(own.py), "--model-fn", "raises", *extra]
    assert "Calling raises() from" in _error(args, capsys)


def test_options_that_do_not_go_together(own, capsys):
    assert "add --model-file" in _error(["eval", "--weights", str(own.weights)], capsys)
    assert "report needs a model" in _error(["report", "--out", str(own.tmp / "r")], capsys)
    with pytest.raises(SystemExit) as e:
        main(["bias", "--checkpoint", str(own.ckpt), *own.args])
    assert e.value.code == 2 and "not allowed with argument --checkpoint" in capsys.readouterr().err
