import json
import shutil
import types

import numpy as np
import pytest
import torch

from padlens.core.activations import blank_input, capture
from padlens.core.checkpoint import load_checkpoint
from padlens.core.data import load_split
from padlens.core.evaluate import evaluate
from padlens.core.colormaps import colorize, map_tile, upscale
from padlens.core.jobs import Progress, run_job
from padlens.core.checkpoint import checkpoint_labels
from padlens.core.report import report, ring_distances, ring_profile
from padlens.core.spatial_bias import border_bias, mean_map, region_deviations, worst_region
from padlens.core.stats import diff_interval, wilson
from padlens.core.translation import GridSpec

from tests.tiny import NORM


def test_report_md_mentions_checkpoints_and_numbers(report_run):
    text = report_run.md.read_text()
    assert report_run.md == report_run.out / "report.md"
    for name in ("tiny_zeros", "tiny_reflect"):
        assert name in text
    z = report_run.doc["checkpoints"][0]
    assert f"{100 * z['eval']['accuracy']:.2f}%" in text
    assert "measured on the lossy JPEG copy of CIFAR-10" in text
    for head in ("Where are the artifacts", "How accuracy falls", "evaluation choices", "What each fix changes",
                 "Pooling phase", "crop augmentation", "Content shifted out of the frame"):
        assert head in text
    p = z["grids"]["affine"]["pitfalls"]
    assert p["hidden"] is None    # shifts of at most 4 px keep more than half of every image in frame
    lo, hi = wilson(p["visible"] * 20, 20)
    assert (f"| tiny_zeros | affine | 20 | {100 * p['visible']:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}] | n/a | "
            f"{100 * p['min_visible']:.1f}% |") in text
    assert "| tiny_zeros | affine |" in text and "| tiny_reflect | roll |" in text
    assert "no border artifact" in text   # the reflect model's blank input
    assert report_run.events and all(isinstance(e, Progress) for e in report_run.events)
    assert report_run.events[-1].done == report_run.events[-1].total
    heatmaps = [args for name, args in report_run.calls if name == "heatmaps"]
    assert sorted((o.name, c) for _, o, _, c in heatmaps) == sorted([(m, 4) for m in ("affine", "affine-mean", "roll",
                                                                                       "worst_case")] * 2)
    assert all("JPEG" in t for _, _, t, _ in heatmaps)


def test_report_numbers_agree_with_direct_computation(report_run):
    z = report_run.doc["checkpoints"][0]
    assert z["padding_mode"] == "zeros" and z["crop_pad"] == 4
    model, meta = load_checkpoint(report_run.ckpts[0])
    acts, _ = capture(model, blank_input("normalized", NORM))
    layer = next(x for x in z["layers"] if x["name"] == "model[1][3]")
    assert layer["blank_normalized"] == pytest.approx(border_bias(mean_map(acts[(1, 3)])), rel=1e-4, abs=1e-6)
    acts, _ = capture(model, blank_input("pixel", NORM))
    assert layer["blank_pixel"] == pytest.approx(border_bias(mean_map(acts[(1, 3)])), rel=1e-4, abs=1e-6)

    test = load_split(report_run.data, "test")
    assert "JPEG" in test.source and report_run.doc["settings"]["jpeg"] is True
    r = evaluate(model, test.images, test.labels, NORM, torch.device("cpu"))
    assert z["eval"]["images"] == 40 and z["eval"]["accuracy"] == pytest.approx(r.accuracy)
    assert z["eval"]["loss"] == pytest.approx(r.loss, rel=1e-5)

    g = z["grids"]["affine"]
    acc = np.array(g["accuracy"], dtype=float)
    assert acc.shape == (3, 3) and g["images"] == 20
    ring = np.array([acc[i, j] for i in range(3) for j in range(3) if (i, j) != (1, 1)])
    assert g["accuracy_by_distance"]["0"] == pytest.approx(acc[1, 1])
    assert g["accuracy_by_distance"]["4"] == pytest.approx(ring.mean())
    assert g["pitfalls"]["inside"] == pytest.approx(acc.mean()) and g["pitfalls"]["outside"] is None
    assert g["mean_consistency"] == pytest.approx(np.mean(g["consistency"]))
    with np.load(report_run.out / "tiny_zeros" / "translation_affine.npz") as d:
        np.testing.assert_allclose(d["accuracy"], acc)
    assert z["mean_border_bias"]["blank_normalized"] == pytest.approx(
        np.nanmean([x["blank_normalized"] if x["blank_normalized"] is not None else np.nan for x in z["layers"]]))


def test_reflect_has_no_blank_border_bias_but_zeros_does(report_run):
    z, r = report_run.doc["checkpoints"]
    assert r["padding_mode"] == "reflect"
    for kind in ("blank_normalized", "blank_pixel"):
        big = [x for x in r["layers"] if min(x["size"]) >= 3]
        assert big and all(x[kind] is not None and x[kind] < 1e-4 for x in big)
        assert max(x[kind] for x in z["layers"] if x[kind] is not None) > 0.05
        small = [x for x in r["layers"] if min(x["size"]) < 3]
        assert all(x[kind] is None for x in small)      # nan (no center) becomes null in JSON
    top = max((x for x in z["layers"] if x["blank_normalized"] is not None), key=lambda x: x["blank_normalized"])
    assert top["blank_normalized_worst_region"] in top["blank_normalized_regions"]


def test_every_figure_is_drawn_by_the_writers_handed_in(report_run):
    """core draws no figure itself: each is asked of the caller's writers (the command line passes the app's:
    tests/cli/test_report.py draws them), with what the figure needs."""
    calls = {}
    for name, args in report_run.calls:
        calls.setdefault(name, []).append(args)
    assert {k: len(v) for k, v in calls.items()} == {"bias": 2, "heatmaps": 8, "coverage": 2, "equivariance": 2,
                                                     "blindspots": 2, "channels": 2}
    maps, filters, folder, label, padding, what = calls["bias"][0][:6]
    assert (folder.name, label, padding) == ("tiny_zeros", "tiny_zeros", "zeros")
    assert set(maps) == set(what) == {"blank_normalized", "blank_pixel", "dataset_mean"}
    assert "model[0][0]" in maps["blank_normalized"] and all(k.shape == (3, 3) for k in filters.values())
    assert what["dataset_mean"] == "mean response over 20 test images"
    entry = report_run.doc["checkpoints"][0]
    assert entry["coverage"]["figure"].endswith(".png"), "a section links the PNG its writer returned"
    assert not list(report_run.out.rglob(".*partial*"))


def test_grids_are_cached_and_reused(report_run, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(report_run.tmp / "cache"))
    assert len(list((report_run.tmp / "cache" / "padlens" / "translation").glob("*.npz"))) == 8   # 3 modes and the worst case, twice
    import padlens.core.grid_cache
    monkeypatch.setattr(padlens.core.grid_cache, "translation_grid", lambda *a, **k: pytest.fail("not from the cache"))
    md = run_job(report(report_run.ckpts[:1], report_run.tmp / "again", report_run.data, "cpu", images=20,
                        grid=GridSpec(-4, 4, -4, 4, 4), modes=("roll",), mean_images=20, precision="fp32",
                        worst_case_images=12, worst_case_grid=GridSpec(-2, 2, -2, 2, 1)))
    doc = json.loads(md.with_name("report.json").read_text())
    assert doc["checkpoints"][0]["grids"]["roll"]["from_cache"] is True
    assert doc["checkpoints"][0]["worst_case"]["from_cache"] is True
    assert doc["checkpoints"][0]["grids"]["roll"]["accuracy"] == report_run.doc["checkpoints"][0]["grids"]["roll"]["accuracy"]


def test_every_accuracy_in_the_report_carries_its_images_and_interval(report_run):
    text = report_run.md.read_text()
    z, r = report_run.doc["checkpoints"]
    for c in (z, r):
        assert c["eval"]["interval"] == pytest.approx(wilson(c["eval"]["accuracy"] * 40, 40))
    lo, hi = wilson(z["eval"]["accuracy"] * 40, 40)
    assert f"| 40 / 20 | {100 * z['eval']['accuracy']:.2f}% [{100 * lo:.2f}, {100 * hi:.2f}] |" in text
    g = z["grids"]["roll"]
    assert g["intervals"]["mean_accuracy"] == pytest.approx(wilson(g["mean_accuracy"] * 20, 20))
    assert g["intervals"]["accuracy_by_distance"]["4"] == pytest.approx(wilson(g["accuracy_by_distance"]["4"] * 20, 20))
    vs = r["vs_baseline"]["accuracy"]     # the reflect model against the zero-padded baseline, on the same 40 images
    lo, hi = diff_interval(r["eval"]["accuracy"] * 40, 40, z["eval"]["accuracy"] * 40, 40)
    assert vs["interval"] == pytest.approx([lo, hi]) and vs["images"] == [40, 40]
    d = r["eval"]["accuracy"] - z["eval"]["accuracy"]
    assert f"accuracy {100 * d:+.1f} pp [{100 * lo:+.1f}, {100 * hi:+.1f}] (40 images)" in text
    assert report_run.doc["settings"]["interval_method"].split(":")[0] in text
    # in the tables of sections 2 to 4 every percentage is an accuracy with its interval, but the share of the
    # image in frame (the last column of its table)
    tables = [line for line in _section(text, "## 2.", "## 5.").splitlines() if line.lstrip().startswith("|")]
    in_frame = _section(text, "**Content shifted", "**Pooling phase")
    checked = 0
    for line in tables:
        cells = line.strip().strip("|").split("|")
        if line in in_frame and "%" in cells[-1]:
            cells = cells[:-1]
        for cell in cells:
            for k in range(len(cell)):
                if cell[k] == "%":
                    assert cell[k + 1:k + 3] == " [", line
                    checked += 1
    assert checked > 50


def test_fp32_grids_do_not_claim_folded_batch_norm(report_run):
    assert report_run.doc["settings"]["grid_precision"] == "fp32"
    grids = [g for c in report_run.doc["checkpoints"] for g in c["grids"].values()]
    assert grids and all(g["batch_norm_folded"] is False for g in grids)    # each grid's own info["fused"]
    text = report_run.md.read_text()
    assert "folded" not in text and text.count("batch norm kept as trained (exact fp32 never folds it)") == 2


def test_training_black_borders_are_stated_with_the_crop_padding(report_run):
    text = report_run.md.read_text()
    assert "never saw" not in text
    assert "Training saw black borders only up to 4 px" in text     # both tiny checkpoints trained with crop_pad 4


def test_phase_spread_has_an_interval_and_a_one_phase_grid_says_n_a(report_run, tmp_path, monkeypatch):
    g = report_run.doc["checkpoints"][0]["grids"]["roll"]     # step 4, period 8: phases 0 and 4 on each axis
    tab = np.array(g["phase_table"], dtype=float)
    sp = g["phase_spread"]
    assert g["phases_visited"] == 4 and sp["value"] == pytest.approx(np.nanmax(tab) - np.nanmin(tab))
    assert sp["interval"] == pytest.approx(diff_interval(20 * np.nanmax(tab), 20, 20 * np.nanmin(tab), 20))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    md = run_job(report(report_run.ckpts[:1], tmp_path / "out", report_run.data, "cpu", images=10,
                        grid=GridSpec.square(-8, 8, 8), modes=("roll",), mean_images=10, eval_images=10,
                        precision="fp32"))
    one = json.loads(md.with_name("report.json").read_text())["checkpoints"][0]["grids"]["roll"]
    assert one["pitfalls"]["period"] == 8 and one["phases_visited"] == 1 and one["phase_spread"] is None
    line = next(x for x in md.read_text().splitlines() if x.startswith("- tiny_zeros, `roll` shifts, period 8"))
    assert "spread between phases n/a: the grid visits 1 pooling phase only (its step, 8 px, is a multiple of " \
           "the period)" in line and " pp" not in line


def test_stop_reports_the_finished_checkpoints(report_run, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(report_run.tmp / "cache"))
    kw = dict(data_root=report_run.data, device="cpu", images=20, grid=GridSpec(-4, 4, -4, 4, 4), modes=("roll",),
              mean_images=20, precision="fp32")
    assert run_job(report(report_run.ckpts, report_run.tmp / "stop0", should_stop=lambda: True, **kw)) is None
    assert not (report_run.tmp / "stop0" / "report.md").exists()
    seen = []
    md = run_job(report(report_run.ckpts, report_run.tmp / "stop1", should_stop=lambda: any(m.endswith(": done") for m in seen),
                        progress=lambda ev: seen.append(ev.message), **kw))
    doc = json.loads(md.with_name("report.json").read_text())
    assert doc["settings"]["interrupted"] is True and [c["label"] for c in doc["checkpoints"]] == ["tiny_zeros"]
    assert "Interrupted" in md.read_text()


@pytest.fixture(scope="module")
def resized(report_run):
    """The two tiny models as runs/<name>/model.pt, a step-3 grid, affine-mean only, inputs resized to 36."""
    ckpts = []
    for src, name in zip(report_run.ckpts, ("zeros", "reflect")):
        (report_run.tmp / "runs" / name).mkdir(parents=True)
        ckpts.append(shutil.copy(src, report_run.tmp / "runs" / name / "model.pt"))
    events = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(report_run.tmp / "cache-resized"))
        md = run_job(report(ckpts, report_run.tmp / "resized", report_run.data, "cpu", images=10,
                            grid=GridSpec.square(-16, 16, 3), modes=("affine-mean",), mean_images=10,
                            eval_images=20, precision="fp32", input_size=36, worst_case_images=0,
                            progress=events.append))
    return types.SimpleNamespace(md=md.read_text(), doc=json.loads(md.with_name("report.json").read_text()),
                                 out=md.parent, ckpts=ckpts, events=events, cache=report_run.tmp / "cache-resized")


def _section(text: str, start: str, end: str) -> str:
    return text[text.index(start):text.index(end)]


def test_a_step_3_grid_fills_every_distance_column(resized):
    s = resized.doc["settings"]
    assert (s["ring_distances"], s["far"]) == ([0, 3, 6, 15], 15)
    sec2 = _section(resized.md, "## 2.", "## 3.")
    assert "| d = 0 | d = 3 | d = 6 | d = 15 |" in sec2 and sec2.count("| zeros | affine-mean |") == 1
    assert "n/a" not in sec2
    fill = [line for line in _section(resized.md, "**Fill of", "**Content").splitlines() if line.startswith("| ")]
    assert fill[0] == "| checkpoint | images | affine-mean: mean / at d = 15 |" and len(fill) == 3
    assert not any("n/a" in line for line in fill)
    sec4 = [line for line in _section(resized.md, "## 4.", "**Input size").splitlines() if line.startswith("| ")]
    assert len(sec4) == 3 and not any("n/a" in line for line in sec4[1:])


def test_section_4_names_the_shift_mode_it_used(resized):
    sec4 = _section(resized.md, "## 4.", "## 5.")
    assert "mean consistency (affine-mean) | accuracy at d = 15 (affine-mean)" in sec4
    assert "(affine)" not in sec4
    assert "; mean consistency (affine-mean) " in sec4 and "; accuracy at d = 15 (affine-mean) " in sec4   # vs zeros


def test_input_size_reaches_grids_maps_and_padding_arithmetic(resized):
    assert resized.doc["settings"]["input_size"] == 36
    assert "- Input size: 36x36: the input-resizing remedy." in resized.md
    z = resized.doc["checkpoints"][0]
    assert next(x for x in z["layers"] if x["name"] == "model[0][0]")["size"] == [36, 36]
    assert z["padding_arithmetic"][0]["input"] == [36, 36] and z["uneven_at_32"] == []
    with np.load(resized.out / "zeros" / "translation_affine-mean.npz") as d:
        info = json.loads(str(d["info"]))
    assert info["input_size"] == 36 and "input resized to 36x36" in info["title"]
    assert ("- zeros: `model[3][1]` MaxPool2d 9x9 -> 4x4: no padding; the last row and column are dropped "
            "(uneven); at 32x32: none.") in resized.md
    assert "Padding arithmetic for a 36x36 input" in resized.md


def test_resizing_row_is_the_difference_from_a_run_at_32(report_run, resized, monkeypatch):
    """The zeros model's 32x32 side comes from the shared grid cache: a plain run at 32 reuses it, and the
    table's changes are the resized run's numbers minus that run's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(resized.cache))
    assert len(list((resized.cache / "padlens" / "translation").glob("*.npz"))) == 3   # 2 at 36, zeros at 32
    import padlens.core.grid_cache
    monkeypatch.setattr(padlens.core.grid_cache, "translation_grid", lambda *a, **k: pytest.fail("not from the cache"))
    md = run_job(report(resized.ckpts[:1], report_run.tmp / "plain32", report_run.data, "cpu", images=10,
                        grid=GridSpec.square(-16, 16, 3), modes=("affine-mean",), mean_images=10, eval_images=20,
                        precision="fp32", worst_case_images=0))
    plain = json.loads(md.with_name("report.json").read_text())["checkpoints"][0]
    assert plain["grids"]["affine-mean"]["from_cache"] is True and "at_32" not in plain
    assert "resizing 32 ->" not in md.read_text() and "resizing 32 ->" not in report_run.md.read_text()

    z, reflect = resized.doc["checkpoints"]
    assert "at_32" in z and "at_32" not in reflect
    assert z["at_32"]["grids"]["affine-mean"]["accuracy"] == plain["grids"]["affine-mean"]["accuracy"]
    g32, g36 = plain["grids"]["affine-mean"], z["grids"]["affine-mean"]
    sec4 = _section(resized.md, "**Resizing 32 -> 36.**", "## 5.")
    assert "measured on the lossy JPEG copy of CIFAR-10" in sec4
    assert "| resizing 32 -> 36 | at 32x32 | at 36x36 | change |" in sec4

    def pct(x):      # an accuracy on the 10 images with its Wilson interval
        lo, hi = wilson(10 * x, 10)
        return f"{100 * x:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]"
    for name, a, b in [("accuracy at d = 0", g32["accuracy_by_distance"]["0"], g36["accuracy_by_distance"]["0"]),
                       ("accuracy at d = 15", g32["accuracy_by_distance"]["15"], g36["accuracy_by_distance"]["15"]),
                       ("mean accuracy over the grid", g32["mean_accuracy"], g36["mean_accuracy"]),
                       ("mean consistency", g32["mean_consistency"], g36["mean_consistency"])]:
        lo, hi = diff_interval(10 * b, 10, 10 * a, 10)
        assert (f"| {name} (affine-mean) | {pct(a)} | {pct(b)} | {100 * (b - a):+.1f} pp "
                f"[{100 * lo:+.1f}, {100 * hi:+.1f}] |") in sec4
    for what, name in (("blank_normalized", "blank zeros"), ("blank_pixel", "black image")):
        a, b = plain["mean_border_bias"][what], z["mean_border_bias"][what]
        assert z["at_32"]["mean_border_bias"][what] == pytest.approx(a)
        assert f"| border bias, {name} | {a:.3f} | {b:.3f} | {b - a:+.3f} |" in sec4
    assert any(": affine-mean grid at 32x32: " in e.message for e in resized.events)
    assert resized.events[-1].done == resized.events[-1].total


def test_a_size_the_model_cannot_take_fails_before_any_work(report_run, tmp_path):
    with pytest.raises(ValueError, match="tiny_zeros.pt: the model does not run on a 4x4 input"):
        run_job(report(report_run.ckpts[:1], tmp_path / "out", tmp_path / "no-data", "cpu", input_size=4))
    assert not (tmp_path / "out").exists()


def test_checkpoint_labels(resized, tmp_path):
    assert [c["label"] for c in resized.doc["checkpoints"]] == ["zeros", "reflect"]
    assert (resized.out / "zeros" / "coverage.csv").is_file()   # each checkpoint's files under its label
    assert checkpoint_labels(["runs/a/model.pt", "runs/b/Model.pt", "c/tiny.pt"]) == ["a", "b", "tiny"]
    assert checkpoint_labels(["x/a/model.pt", "y/a/model.pt", "p/tiny.pt", "q/tiny.pt"]) == [
        "x/a", "y/a", "p/tiny", "q/tiny"]
    assert checkpoint_labels(["r/tiny.pt", "r/tiny.pt", "r/tiny.pt"]) == ["r/tiny", "r/tiny-2", "r/tiny-3"]


# --- the pure helpers ----------------------------------------------------------------------------------

def test_ring_distances_come_from_the_grid():
    assert ring_distances(GridSpec.square(-16, 16, 4).dxs, GridSpec.square(-16, 16, 4).dys) == ([0, 4, 8, 16], 16)
    big = GridSpec.square(-32, 32, 4)
    assert ring_distances(big.dxs, big.dys) == ([0, 8, 16, 32], 16)      # far: the distance nearest 16
    odd = GridSpec.square(-16, 16, 6)
    assert ring_distances(odd.dxs, odd.dys) == ([0, 6, 12], 12)
    assert ring_distances(np.array([0]), np.array([0])) == ([0], 0)


def test_region_deviations_and_ring_profile():
    m = torch.zeros(8, 8)
    m[0, 0] = 8.0                                          # only the top-left corner differs
    devs = region_deviations(m)
    assert worst_region(devs) == "top-left corner" and devs["top-left corner"] == pytest.approx(8.0)
    assert devs["bottom edge"] == 0 and region_deviations(torch.zeros(2, 5)) == {}
    assert worst_region(region_deviations(torch.ones(4, 4))) is None
    dxs = dys = np.array([-4, 0, 4])
    vals = np.arange(9.0).reshape(3, 3)
    prof = ring_profile(vals, dxs, dys)
    assert prof == {0: 4.0, 4: pytest.approx((36 - 4) / 8)}


def test_colormaps():
    a = np.array([[0.0, 0.5], [1.0, np.nan]])
    img = colorize(a, "viridis", (0, 1))
    assert img.dtype == torch.uint8 and img.shape == (3, 2, 2)
    assert img[:, 0, 0].tolist() == [68, 1, 84] and img[:, 1, 0].tolist() == [253, 231, 37]
    assert img[:, 1, 1].tolist() == [128, 128, 128]                          # NaN is grey
    d = colorize(np.array([[-2.0, 0.0, 1.0]]), "diverging")                   # symmetric: 0 is white
    assert d[:, 0, 1].tolist() == [247, 247, 247] and d[:, 0, 0].tolist() == [33, 102, 172]
    assert colorize(np.ones((2, 2)), "inferno").unique(dim=1).shape[1] == 1   # constant: one color
    with pytest.raises(ValueError):
        colorize(a, "jet")
    big = upscale(img, 3)
    assert big.shape == (3, 6, 6) and torch.equal(big[:, :3, :3], img[:, :1, :1].expand(3, 3, 3))
    flat = map_tile(torch.full((4, 4), 2.0) + torch.rand(4, 4) * 1e-9)   # float noise stays one colour
    assert flat.shape == (3, 96, 96) and flat.unique(dim=1).shape[1] == 1
