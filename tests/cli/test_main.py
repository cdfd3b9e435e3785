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
from padlens.core.device import describe_precision
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
    fake.save_heatmap_figures = lambda result, out, name: calls.append((result, out)) or [out / f"{name}.png"]
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
    why = describe_precision("fp32", torch.device("cpu"))
    assert r.info["precision_text"] == why and why in r.info["title"] and f"device cpu, {why}" in printed

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
    assert _translate(ckpt, data, tmp_path / "fused", "--precision", "fp32-fast") == 0
    assert _translate(ckpt, data, tmp_path / "exact") == 0
    assert _translate(ckpt, data, tmp_path / "plain", "--no-fuse", "--mode", "roll") == 0
    assert _translate(ckpt, data, tmp_path / "plain_affine", "--no-fuse") == 0
    assert "note: no figures" in capsys.readouterr().out
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


def test_eval_limit_is_a_class_balanced_subset(setup, tiny_model, capsys, monkeypatch):
    """ImageFolder splits are sorted by class: the first 20 images would be airplanes and cars only."""
    import json

    import padlens.core.evaluate
    ckpt, data = setup
    seen, real = [], padlens.core.evaluate.evaluate
    monkeypatch.setattr(padlens.core.evaluate, "evaluate", lambda m, x, y, *a: seen.append(y) or real(m, x, y, *a))
    base = ["eval", "--checkpoint", str(ckpt), "--data", str(data), "--device", "cpu", "--json", "--limit", "20"]
    assert main(base) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["images"] == 20 and out["subset"] == "class-balanced" and out["seed"] == 0
    assert torch.bincount(seen[0], minlength=10).tolist() == [2] * 10     # every class, equally often
    test = load_split(data, "test")
    idx = stratified_subset(test.labels, 20, 0)
    assert out["accuracy"] == pytest.approx(evaluate(tiny_model, test.images[idx], test.labels[idx], NORM,
                                                     torch.device("cpu")).accuracy, abs=1e-6)
    assert main(base + ["--seed", "1"]) == 0 and json.loads(capsys.readouterr().out)["seed"] == 1
    assert torch.bincount(seen[1], minlength=10).tolist() == [2] * 10
    assert main(base[:-2]) == 0 and json.loads(capsys.readouterr().out)["subset"] == "all" and len(seen[2]) == 30
    assert main(base[:-1] + ["-3"]) == 2 and "--limit -3" in capsys.readouterr().err


def test_translate_until_ci_stops_once_every_cell_is_that_precise(setup, tmp_path, capsys, monkeypatch):
    """Any cell of 10 images is within +-26.3 points (the widest Wilson interval, at 50%): +-30 stops after the
    first chunk of 10 of the 30 images; +-1 is out of reach and says so."""
    ckpt, data = setup
    monkeypatch.setitem(sys.modules, "padlens.gui.figures", None)     # no figures: the numbers are the point
    assert _translate(ckpt, data, tmp_path / "wide", "--images", "0", "--until-ci", "30") == 0
    printed = capsys.readouterr().out
    assert "precision reached: every cell within ±30.0 points (95% interval) after 10 of 30 images" in printed
    r = GridResult.load_npz(tmp_path / "wide" / "translation.npz")
    np.testing.assert_array_equal(r.count, 10)
    assert r.info["target_halfwidth"] == 0.3 and "cached as" in r.info["cache"]
    assert _translate(ckpt, data, tmp_path / "narrow", "--images", "0", "--until-ci", "1") == 0
    printed = capsys.readouterr().out
    assert "precision not reached" in printed and "after all 30 images" in printed
    assert GridResult.load_npz(tmp_path / "narrow" / "translation.npz").images == 30
    assert _translate(ckpt, data, tmp_path / "bad", "--until-ci", "0") == 2
    assert "--until-ci 0.0" in capsys.readouterr().err


@pytest.mark.parametrize("grid, message", [
    (["--range", "4", "-4"], "--range 4 -4: the lowest shift comes first, e.g. --range -4 4"),
    (["--y-range", "3", "-3"], "--y-range 3 -3: the lowest shift comes first, e.g. --y-range -3 3"),
    (["--step", "0"], "--step 0: the grid step is at least 1 pixel"),
])
def test_translate_rejects_bad_grid(setup, tmp_path, capsys, grid, message):
    """Each option named in its own message (--y-range 3 -3 was reported as a bad range)."""
    ckpt, data = setup
    rc = main(["translate", "--checkpoint", str(ckpt), "--data", str(data), *grid, "--out", str(tmp_path / "o")])
    assert rc == 2 and capsys.readouterr().err == f"padlens: error: {message}\n"
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
    from tests.figure_checks import assert_paper_figure
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
    for name in ("maps_normalized", "maps_pixel", "maps_mean_of_20", "mean_filters"):
        assert_paper_figure(out / f"{name}.png", out / f"{name}.svg", "model[1][0]", min_width=600)
    mean_svg = (out / "maps_mean_of_20.svg").read_text()
    assert "dataset mean over 20 test images" in mean_svg and "data: " in mean_svg
    assert "data: " not in (out / "maps_normalized.svg").read_text(), "a blank input used no data set"


def test_the_app_takes_data_and_device(monkeypatch, tmp_path):
    seen = []
    fake = types.ModuleType("padlens.gui.app")
    window = types.SimpleNamespace(wait_for=lambda work: seen.append("imported") or work())
    fake.start_window, fake.import_core = lambda: seen.append("window") or window, lambda: None
    fake.main = lambda a, model, startup: seen.append((a, model, startup)) or 0
    monkeypatch.setitem(sys.modules, "padlens.gui.app", fake)
    assert main(["--device", "cpu", "--data", str(tmp_path)]) == 0
    assert seen[:2] == ["window", "imported"]   # the window first, torch after it
    a, model, startup = seen[2]
    assert a.device == "cpu" and a.data == str(tmp_path) and a.command is None and model is None   # no own model
    assert startup is window


@pytest.mark.parametrize("argv, app", [
    ([], True), (["--data", "d", "--device", "cpu", "--checkpoint", "c.pt"], True), (["--data=d"], True),
    (["translate"], False), (["--data", "d", "eval"], False), (["--help"], False),
    (["--model-file", "m.py", "--model-fn", "f"], False),   # an own model is checked before any window
])
def test_the_window_shows_before_torch_loads_only_when_the_app_opens(argv, app):
    from padlens.cli.main import opens_app
    assert opens_app(argv) is app


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


# ---- nothing lost, nothing silent (issue 18) ---------------------------------------------------------------
def _no_grid(monkeypatch):
    """Fail the test if the translation grid or the model load starts: a bad --out is found before any work."""
    import padlens.core.grid_cache
    monkeypatch.setattr(padlens.core.grid_cache, "translation_grid", lambda *a, **k: pytest.fail("computed"))
    monkeypatch.setattr("padlens.cli.main.model_from_args", lambda *a, **k: pytest.fail("model loaded"))


def _read_only(monkeypatch):
    """A folder without write permission (these tests may run as root, who can write anywhere)."""
    from pathlib import Path
    real = Path.write_bytes

    def write_bytes(self, data):
        if self.name.startswith(".padlens-write-test"):
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, data)
    monkeypatch.setattr(Path, "write_bytes", write_bytes)


@pytest.mark.parametrize("command", ["translate", "bias"])
@pytest.mark.parametrize("where, message", [
    ("FILE/out", r"--out .*FILE/out: .*FILE is a file, so no folder can be made inside it; give another folder"),
    ("FILE", r"--out .*FILE is a file, not a folder; give a folder for the results"),
    ("ro", r"--out .*ro cannot be written \(Permission denied\); choose a folder you may write to"),
])
def test_a_bad_out_is_refused_before_any_work(setup, tmp_path, capsys, monkeypatch, command, where, message):
    ckpt, data = setup
    (tmp_path / "FILE").write_text("a file")
    if where == "ro":
        _read_only(monkeypatch)
    _no_grid(monkeypatch)
    args = {"translate": ["--images", "20", "--range", "-2", "2", "--step", "2"], "bias": ["--mean-images", "10"]}
    rc = main([command, "--checkpoint", str(ckpt), "--data", str(data), *args[command], "--out", str(tmp_path / where)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert __import__("re").search(message, err), err
    assert (tmp_path / "FILE").read_text() == "a file"


def test_a_write_that_fails_at_the_end_keeps_the_grid(setup, tmp_path, capsys, monkeypatch, cache_home):
    """A full disk after the checks: the numbers go to a fallback file the message names, and the complete
    grid is in the cache, so the same command does not compute it again."""
    ckpt, data = setup
    monkeypatch.setitem(sys.modules, "padlens.gui.figures", None)
    out = tmp_path / "out"
    real = GridResult.save_npz

    def disk_full(self, path):
        if out in type(path)(path).parents:
            raise OSError(28, "No space left on device", str(path))
        return real(self, path)
    monkeypatch.setattr(GridResult, "save_npz", disk_full)
    assert _translate(ckpt, data, out) == 1
    err = capsys.readouterr().err
    assert f"padlens: error: writing into {out} failed" in err and "No space left on device" in err
    kept = next((cache_home / "padlens" / "unsaved").glob("translation-*.npz"))
    assert f"the grid is kept in {kept}" in err and "also in the cache" in err
    assert GridResult.load_npz(kept).count.tolist() == [[20] * 3] * 3
    monkeypatch.setattr(GridResult, "save_npz", real)
    import padlens.core.grid_cache
    monkeypatch.setattr(padlens.core.grid_cache, "translation_grid", lambda *a, **k: pytest.fail("computed again"))
    assert _translate(ckpt, data, out) == 0 and "from the cache" in capsys.readouterr().out
    np.testing.assert_array_equal(GridResult.load_npz(out / "translation.npz").correct, GridResult.load_npz(kept).correct)


def test_a_nearly_full_disk_leaves_no_truncated_heatmap(setup, tmp_path, capsys):
    """translation_heatmaps.png was kept truncated (QImage.save fails quietly); now no figure takes its name
    unless whole, and the message names the PNG. The numbers, small, are written."""
    import resource
    ckpt, data = setup
    assert _translate(ckpt, data, tmp_path / "first") == 0   # decodes the data and caches the grid
    whole = (tmp_path / "first" / "translation_heatmaps.png").stat().st_size
    capsys.readouterr()
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (whole // 3, hard))   # writes past it fail with EFBIG
    try:
        rc = _translate(ckpt, data, tmp_path / "full")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    err = capsys.readouterr().err
    assert rc == 1 and "translation_heatmaps.png" in err and "the numbers are saved" in err
    names = sorted(p.name for p in (tmp_path / "full").iterdir())
    assert names == ["translation.csv", "translation.npz", "translation_worst_case.csv"], names
    GridResult.load_npz(tmp_path / "full" / "translation.npz")


def test_ctrl_c_in_the_first_chunk_saves_the_cells_done_with_their_true_counts(setup, tmp_path, capsys, monkeypatch):
    """Cells of a stopped grid hold different numbers of images: every output says partial and the real counts."""
    import os
    import signal

    import padlens.cli.terminal
    ckpt, data = setup
    calls, events = [], []
    fake = types.ModuleType("padlens.gui.figures")
    fake.save_heatmap_figures = lambda result, out, name: calls.append((result, name)) or [out / f"{name}.png"]
    monkeypatch.setitem(sys.modules, "padlens.gui.figures", fake)

    def progress_line(frac, text):   # as if the user pressed Ctrl-C after the second batch of the first chunk
        events.append(text)
        if len(events) == 2:
            os.kill(os.getpid(), signal.SIGINT)
    monkeypatch.setattr(padlens.cli.terminal, "progress_line", progress_line)
    out = tmp_path / "out"
    rc = main(["translate", "--checkpoint", str(ckpt), "--data", str(data), "--range", "-8", "8", "--step", "2",
               "--images", "20", "--out", str(out), "--device", "cpu", "--precision", "fp32"])
    captured = capsys.readouterr()
    assert rc == 130 and len(events) == 2 and "images 1-10 of 20" in events[-1]
    r = GridResult.load_npz(out / "translation_partial.npz")
    counts = r.count.ravel()
    assert counts.max() == 10 and counts.min() == 0 and 0 < (counts == 10).sum() < 81   # cells differ
    assert r.info["interrupted"] is True and r.info["partial"] == "interrupted: 0-10 of 20 images per cell"
    assert "partial (interrupted), 0-10 of 20 test images" in r.info["title"]
    rows = list(csv.DictReader((out / "translation_partial.csv").open()))
    assert [int(row["images"]) for row in rows] == [int(c) for c in counts]
    assert calls[0][1] == "translation_partial_heatmaps" and calls[0][0].info["title"] == r.info["title"]
    assert "saving the cells computed so far (0-10 of 20 images per cell), marked partial" in captured.err
    assert "training" not in captured.err and "images per cell: 0-10 (interrupted: 0-10 of 20" in captured.out
    assert not (out / "translation.npz").exists(), "a partial grid never takes the complete one's name"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_before_the_grid_starts_is_a_clean_message(setup, tmp_path, capsys, monkeypatch):
    ckpt, data = setup

    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr("padlens.cli.main.model_from_args", interrupted)
    assert _translate(ckpt, data, tmp_path / "out") == 130
    err = capsys.readouterr().err
    assert err.strip() == ("padlens translate: interrupted; nothing half-written is left (every file is written whole "
                           "or not at all)") and not (tmp_path / "out").exists()


def test_importing_the_command_line_loads_no_torch():
    """A Ctrl-C while torch imports happens inside main(), which turns it into a message (was a traceback)."""
    import subprocess
    code = "import sys, padlens.cli.main; print('torch' in sys.modules, 'padlens.core.data' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False False\n"


def test_negative_counts_and_bad_devices_are_clear_errors(setup, capsys):
    ckpt, data = setup
    for args, message in [
        (["bias", "--mean-images", "-1"], "--mean-images -1: give a number of test images, or 0 for none"),
        (["eval", "--limit", "-5"], "--limit -5: give a number of images, or 0 for all of them"),
        (["eval", "--device", "meta"], "device 'meta' holds shapes but no numbers. Use auto, cpu, cuda[:N] or mps."),
        (["eval", "--device", "mps"], "device 'mps' asked for, but this torch sees no Apple GPU"),
    ]:
        assert main([*args, "--checkpoint", str(ckpt), "--data", str(data)]) == 2, args
        err = capsys.readouterr().err
        assert err.startswith(f"padlens: error: {message}") and "Traceback" not in err, err


@pytest.mark.parametrize("spoil, message", [
    (lambda t: t.fill_(float("nan")), "holds NaN or infinite weights"),
    (lambda t: t.to(torch.int64), "holds whole numbers where the model has float weights"),
])
def test_eval_refuses_weights_that_give_no_real_answer(setup, tmp_path, capsys, spoil, message):
    """NaN weights printed 'accuracy: 1.0, loss: nan' with exit 0; int64 ones gave accuracy 0.0."""
    ckpt, data = setup
    c = torch.load(ckpt, weights_only=True)
    first = next(iter(c["state_dict"]))
    c["state_dict"][first] = spoil(c["state_dict"][first].clone())
    torch.save(c, tmp_path / "bad.pt")
    assert main(["eval", "--checkpoint", str(tmp_path / "bad.pt"), "--data", str(data)]) == 2
    err = capsys.readouterr().err
    assert message in err and "accuracy" not in capsys.readouterr().out


def test_an_empty_checkpoint_is_a_message_in_every_command(setup, tmp_path, capsys):
    _, data = setup
    (tmp_path / "empty.pt").write_bytes(b"")
    for command in (["eval", "--data", str(data)], ["layers"], ["bias"], ["translate", "--out", str(tmp_path / "o")]):
        assert main([*command, "--checkpoint", str(tmp_path / "empty.pt")]) == 2
        err = capsys.readouterr().err
        assert "empty.pt is empty (0 bytes), not a checkpoint file" in err and "IndexError" not in err, command


def test_train_checks_its_folders_before_training(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("padlens.core.data.load_split", lambda *a, **k: pytest.fail("training started"))
    (tmp_path / "FILE").write_text("x")
    for args, message in ((["--run", str(tmp_path / "FILE" / "run")], "FILE is a file, so no folder can be made"),
                          (["--run", str(tmp_path / "run"), "--out", str(tmp_path)], "is a folder; give the checkpoint file")):
        assert main(["train", *args]) == 2
        err = capsys.readouterr().err
        assert err.startswith("padlens: error: --") and message in err, err
