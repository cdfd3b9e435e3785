"""The Analyses tab, worked as a user works it: the coverage maps of every padding mode with the uneven layers,
the shift-equivariance heatmaps computed, cancelled half-way and kept, hover read-outs, exports read back, and
the tab at 1280x720."""
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PyQt6.QtCore import QPointF, Qt

from padlens.core.coverage import comparison_size
from padlens.core.data import stratified_subset
from padlens.core.equivariance import equivariance_job
from padlens.core.jobs import run_job
from padlens.core.padding import PADDING_MODES
from padlens.gui.coverage_panel import CoveragePanel, pixel_text
from padlens.gui.equivariance_panel import EquivariancePanel, cell_text
from padlens.gui.blindspot_panel import BlindspotPanel
from padlens.gui.channels_panel import ChannelsPanel
from tests.gui.test_layout import SIZE, check, settle

TITLES = {CoveragePanel: "Coverage", EquivariancePanel: "Shift equivariance", BlindspotPanel: "Blind spots",
          ChannelsPanel: "Padding-aware channels"}


def open_panel(w, qtbot, cls):
    """Click the Analyses tab, then the panel's own tab; returns the panel."""
    w.show()
    qtbot.waitExposed(w)
    bar = w.tabs.tabBar()
    k = w.tabs.indexOf(w.analyses)
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(k).center())
    assert w.tabs.currentWidget() is w.analyses
    sub = w.analyses.tabBar()
    i = [w.analyses.tabText(j) for j in range(w.analyses.count())].index(TITLES[cls])
    qtbot.mouseClick(sub, Qt.MouseButton.LeftButton, pos=sub.tabRect(i).center())
    panel = w.analyses.currentWidget().panel
    assert isinstance(panel, cls)
    return panel


def hold_at_call(n: int, fn):
    """fn wrapped so that its n-th call (on the job's thread) waits until the test sets `clicked`: a Cancel
    clicked once `reached` is set lands at that point of the job, always. Returns (wrapper, reached, clicked)."""
    import threading
    reached, clicked, calls = threading.Event(), threading.Event(), []

    def held(*args):
        calls.append(1)
        if len(calls) == n:
            reached.set()
            clicked.wait(30)
        return fn(*args)
    return held, reached, clicked


def hover(qtbot, figure, plot, x: float, y: float) -> None:
    """The mouse over view point (x, y) of a plot of the figure, as pyqtgraph's scene reports a move (offscreen
    Qt sends no hover moves, and a widget pixel is a third of a map pixel)."""
    figure.scene().sigMouseMoved.emit(plot.vb.mapViewToScene(QPointF(x, y)))


def coverage_ready(qtbot, panel, size=32):
    qtbot.waitUntil(lambda: not panel.runner.running and panel._built and panel.shown_key is not None
                    and panel.shown_key[1][0] == size, timeout=60000)


def test_a_panel_is_made_when_first_shown_with_what_the_window_pushed_before(window, qtbot, fake_data):
    """The window's start makes none of the panels (their figures cost a third of a second); the one opened
    later runs on the model, input size and data the window has now."""
    w = window
    assert w.analyses.panels == []
    w.set_input_size(48)
    b = open_panel(w, qtbot, BlindspotPanel)
    assert [type(p) for p in w.analyses.panels] == [CoveragePanel, BlindspotPanel]   # Coverage shown on the way
    assert b.loaded is w.explorer.loaded and b.input_size == 48 and b.data is fake_data
    w.set_input_size(32)
    assert b.input_size == 32
    c = open_panel(w, qtbot, ChannelsPanel)
    assert c.loaded is w.explorer.loaded and c.input_size == 32 and c.data is fake_data
    assert [type(p) for p in w.analyses.panels] == [CoveragePanel, BlindspotPanel, ChannelsPanel]


def test_coverage_shows_every_padding_mode_at_both_sizes_with_a_read_out(window, qtbot):
    w = window
    c = open_panel(w, qtbot, CoveragePanel)
    coverage_ready(qtbot, c)
    assert list(c.maps) == list(PADDING_MODES)
    assert [m.size for m in c.maps["zeros"]] == [32, comparison_size(32)]
    plots = [p for row in c.plots for p in row]
    assert len(plots) == 2 * len(PADDING_MODES)
    assert len({(round(p.vb.width()), round(p.vb.height())) for p in plots}) == 1, "panels of unequal size"
    assert all(bar.getAxis("left").label.isVisible() and "paths" in bar.getAxis("left").labelText for bar in c.bars)
    assert "Uneven at 33x33:" in c.uneven.text() and "MaxPool2d" in c.uneven.text()
    assert "Uneven at 32x32:</b> none" in c.uneven.text()
    assert c.maps["circular"][0].summary["constant"] and not c.maps["zeros"][0].summary["constant"]
    hover(qtbot, c.figure, c.plots[1][0], 0, 3)           # zeros padding, 33x33, pixel x=0, y=3
    m = c.maps["zeros"][1]
    assert c.readout.text() == pixel_text("zeros", m, 0, 3)
    assert f"{m.counts[3, 0]:,.0f} paths" in c.readout.text()
    qtbot.mouseClick(c.boxes["partial"], Qt.MouseButton.LeftButton)   # untick: one column fewer, as wide as before
    shown = [p for row in c.plots for p in row if p.isVisible()]
    assert len(shown) == 2 * (len(PADDING_MODES) - 1) and "partial" not in c.figure.caption
    assert len({(round(p.vb.width()), round(p.vb.height())) for p in shown}) == 1


def test_coverage_shows_progress_cancels_and_computes_again(window, qtbot, monkeypatch):
    import padlens.core.coverage as coverage
    held, reached, clicked = hold_at_call(3, coverage.coverage_map)   # the second padding mode: mid-way, always
    monkeypatch.setattr(coverage, "coverage_map", held)
    c = open_panel(window, qtbot, CoveragePanel)
    qtbot.waitUntil(reached.is_set, timeout=30000)
    qtbot.waitUntil(lambda: c.bar.value() == 1 and c.bar.maximum() == len(PADDING_MODES), timeout=30000)
    assert c.cancel_btn.isEnabled() and not c.compute_btn.isEnabled()
    qtbot.mouseClick(c.cancel_btn, Qt.MouseButton.LeftButton)
    clicked.set()
    qtbot.waitUntil(lambda: not c.runner.running and c.status.text() == "Cancelled.", timeout=30000)
    assert c.bar.format().startswith("cancelled at") and not c.cancel_btn.isEnabled() and c.compute_btn.isEnabled()
    qtbot.mouseClick(c.compute_btn, Qt.MouseButton.LeftButton)
    coverage_ready(qtbot, c)
    assert list(c.maps) == list(PADDING_MODES) and c.bar.format() == "done"
    assert not c.compute_btn.isEnabled() and not c.cancel_btn.isEnabled()


def test_coverage_follows_the_input_size(window, qtbot):
    w = window
    c = open_panel(w, qtbot, CoveragePanel)
    w.set_input_size(48)
    coverage_ready(qtbot, c, 48)
    assert [m.size for m in c.maps["zeros"]] == [48, 32] and c.maps["zeros"][0].counts.shape == (48, 48)


def test_coverage_exports_and_data(window, qtbot, tmp_path, save_as):
    c = open_panel(window, qtbot, CoveragePanel)
    coverage_ready(qtbot, c)
    files = [tmp_path / f"cov.{ext}" for ext in ("png", "svg", "pdf")]
    save_as(*files)
    for _ in files:
        qtbot.mouseClick(c.export_btn, Qt.MouseButton.LeftButton)
    png, svg, pdf = (f.read_bytes() for f in files)
    assert png[:4] == b"\x89PNG" and pdf[:5] == b"%PDF-" and len(pdf) > 1000
    assert "lossy" not in c.figure.caption and "padding modes" in c.figure.caption
    assert "33x33" in " ".join(ET.fromstring(svg).itertext())
    save_as.folder(tmp_path / "data")
    (tmp_path / "data").mkdir()
    qtbot.mouseClick(c.save_btn, Qt.MouseButton.LeftButton)
    with np.load(tmp_path / "data" / "coverage_reflect.npz") as d:
        assert np.array_equal(d["counts_33"], c.maps["reflect"][1].counts)
    assert (tmp_path / "data" / "coverage_partial.csv").read_text().startswith("input_size,y,x,paths")
    from padlens.gui.coverage_panel import write_coverage_figures
    from tests.figure_checks import assert_paper_figure
    written = write_coverage_figures(c.maps, tmp_path, "tiny", "zeros")   # behind `padlens coverage --out`
    assert [p.name for p in written] == ["coverage.png", "coverage.svg"]
    assert_paper_figure(*written, "tiny", "33x33", "circular", "paths per pixel")


def small_grid(e, images=10, step=4):
    g = e.grid
    g.lo.setValue(-4)
    g.hi.setValue(4)
    g.step.setValue(step)
    g.count.setValue(images)
    g.mode.setCurrentText("roll")


def test_equivariance_runs_shows_reads_out_and_keeps_its_result(window, qtbot, tmp_path, save_as):
    w = window
    e = open_panel(w, qtbot, EquivariancePanel)
    small_grid(e)
    assert e.status.text().startswith("Not computed for these settings: Start computes it")
    qtbot.mouseClick(e.start_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not e.runner.running, timeout=60000)
    name = w.explorer.loaded.name
    r = e.shown[name]
    assert r.images == 10 and e.status.text().startswith("10 images per cell, computed in")
    assert np.isnan(r.similarity[~r.aligned]).all() and r.aligned.sum() < r.aligned.size   # n/a cells there
    assert "Grey" in e.legend.text() and "n/a" in e.legend.text()
    i, k = 3, 1                                             # a stride-2 layer at dx=0, dy=-4: aligned
    hover(qtbot, e.figure, e.plots[0], k, i)
    assert e.readout.text() == cell_text(name, r, i, k)
    assert f"cosine {r.similarity[i, k]:.4f} over 10 images" in e.readout.text()
    na = np.argwhere(~r.aligned)[0]
    hover(qtbot, e.figure, e.plots[0], na[1], na[0])
    assert "n/a (not a multiple of its stride" in e.readout.text()
    assert "JPEG" not in e.figure.caption and "10 images" in e.figure.caption and "roll shifts" in e.figure.caption
    e.grid.step.setValue(2)                                 # other settings: not computed ...
    assert not e.shown and e.status.text().startswith("Not computed") and "about" in e.status.text()
    e.grid.step.setValue(4)                                 # ... and back: kept, not computed again
    assert not e.runner.running and e.shown[name] is r and e.status.text().startswith("10 images per cell")
    files = [tmp_path / f"eq.{ext}" for ext in ("png", "svg", "pdf")]
    save_as(*files)
    for _ in files:
        qtbot.mouseClick(e.export_btn, Qt.MouseButton.LeftButton)
    assert all(f.stat().st_size > 1000 for f in files) and files[0].read_bytes()[:4] == b"\x89PNG"
    save_as.folder(tmp_path)
    qtbot.mouseClick(e.save_btn, Qt.MouseButton.LeftButton)
    with np.load(tmp_path / f"equivariance_{name}.npz") as d:
        assert np.array_equal(d["similarity"], r.similarity, equal_nan=True)
    from padlens.gui.equivariance_panel import write_equivariance_figures
    from tests.figure_checks import assert_paper_figure
    written = write_equivariance_figures({name: r}, tmp_path / "cli")   # behind `padlens equivariance --out`
    assert [p.name for p in written] == ["equivariance.png", "equivariance.svg"]
    assert_paper_figure(*written, "roll shifts", "cosine similarity", "10 images", min_width=800)


def test_cancel_half_way_keeps_a_correct_partial_result(window, qtbot, fake_data, monkeypatch):
    import padlens.core.equivariance as equivariance
    w = window
    e = open_panel(w, qtbot, EquivariancePanel)
    small_grid(e, images=40, step=2)
    e.grid.lo.setValue(-8)
    e.grid.hi.setValue(8)                                   # 81 shifts: 4 batches per chunk of 5 images
    # the second chunk's first batch waits for the click: the cancel comes half-way, always
    held, reached, clicked = hold_at_call(5, equivariance.shifted_copies)
    monkeypatch.setattr(equivariance, "shifted_copies", held)
    qtbot.mouseClick(e.start_btn, Qt.MouseButton.LeftButton)
    name = w.explorer.loaded.name
    qtbot.waitUntil(lambda: reached.is_set() and name in e.shown and e.shown[name].images >= 5, timeout=60000)
    qtbot.mouseClick(e.cancel_btn, Qt.MouseButton.LeftButton)
    clicked.set()
    qtbot.waitUntil(lambda: not e.runner.running, timeout=60000)
    r = e.shown[name]
    assert r.images == 5 and r.counts.max() == 10           # the batch under way when cancelled was finished
    assert e.status.text().startswith(f"Cancelled after {r.images} of 40 images")
    # every cell holds the mean over the images it counts: the same as a run over just those images
    subset = fake_data.images[stratified_subset(fake_data.labels, 40, 0)]
    lm = w.explorer.loaded
    for n in np.unique(r.counts[r.aligned & (r.counts > 0)]):
        direct = run_job(equivariance_job(lm.model, subset[:int(n)], lm.norm, e.grid.spec(), "roll"))
        cells = r.aligned & (r.counts == n)
        assert np.abs(r.similarity[cells] - direct.similarity[cells]).max() < 1e-6


def test_closing_the_window_mid_run_leaves_no_job(window, qtbot):
    e = open_panel(window, qtbot, EquivariancePanel)
    small_grid(e, images=40, step=2)
    qtbot.mouseClick(e.start_btn, Qt.MouseButton.LeftButton)
    assert e.runner.running
    window.close()
    assert not e.runner.running


@pytest.mark.parametrize("cls", [CoveragePanel, EquivariancePanel])
def test_the_panels_fit_1280x720(window, qtbot, cls):
    w = window
    w.resize(*SIZE)
    p = open_panel(w, qtbot, cls)
    if cls is CoveragePanel:
        coverage_ready(qtbot, p)
    else:
        small_grid(p)
        qtbot.mouseClick(p.start_btn, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: not p.runner.running, timeout=60000)
    settle(qtbot, w)
    check(w, p)


@pytest.fixture
def variants(tmp_path, monkeypatch):
    """Four tiny padding variants where the app looks for the shipped ones (before the window opens)."""
    from padlens.core.checkpoint import save_checkpoint
    from tests.tiny import NORM, tiny
    folder = tmp_path / "shipped"
    folder.mkdir()
    for mode in ("zeros", "reflect", "replicate", "circular"):
        model, cfg = tiny(mode)
        save_checkpoint(folder / f"vgg_{mode}.pt", model, cfg, NORM, {"crop_pad": 4}, {"test_accuracy": 0.1})
    monkeypatch.setenv("PADLENS_CHECKPOINTS", str(folder))
    return folder


def test_the_padding_variants_side_by_side_fit_1280x720(variants, window, qtbot):
    from padlens.gui.equivariance_panel import VARIANTS
    w = window
    w.resize(*SIZE)
    e = open_panel(w, qtbot, EquivariancePanel)
    small_grid(e)
    e.models_box.setCurrentText(VARIANTS)
    qtbot.mouseClick(e.start_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not e.runner.running, timeout=60000)
    assert list(e.shown) == ["vgg_zeros", "vgg_reflect", "vgg_replicate", "vgg_circular"]
    circular = e.shown["vgg_circular"]
    assert np.abs(circular.similarity[:-1][circular.aligned[:-1]] - 1).max() < 1e-4   # rolls: equivariant
    assert [r.info["padding"] for r in e.shown.values()] == ["zeros", "reflect", "replicate", "circular"]
    assert len({(round(p.vb.width()), round(p.vb.height())) for p in e.plots}) == 1, "panels of unequal size"
    settle(qtbot, w)
    check(w, e)
