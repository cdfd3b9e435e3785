"""The Translation tab shows the worst case over shifts under the heatmaps, from the grid it computed: a one-line
summary and a figure (share flipped within r with Wilson intervals, histogram of each image's smallest flipping
shift) that follows partial results and cached grids, goes when the settings change and exports beside the
heatmaps."""
import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt
from PyQt6.QtGui import QColor, QImage
from PyQt6.QtWidgets import QMessageBox

from padlens.core.stats import wilson
from padlens.core.worst_case import RADII, flip_histogram, flip_share, format_worst_case, worst_case
from padlens.gui.export import PNG_DPI, SCREEN_DPI
from padlens.gui.translation_tab import WORST_CASE_LATER
from padlens.gui.worst_case_figure import EXPORT_SIZE, POINT, summary_line
from tests.gui.grids import run_small_grid
from tests.gui.test_exports import has, jpeg_window, pixels, svg_text, trigger  # noqa: F401 (a fixture)


def drawn_points(fig) -> list[tuple[float, float, bool]]:
    """(r, share in %, hollow) of each point the share panel draws."""
    pts = [i for i in fig.share_plot.items if isinstance(i, pg.TargetItem)]
    return sorted((i.pos().x(), i.pos().y(), i.brush.color().name() == "#ffffff") for i in pts)


def na_marks(fig) -> list[float]:
    return sorted(i.pos().x() for i in fig.share_plot.items if isinstance(i, pg.TextItem) and i.toPlainText() == "n.a.")


def tick_texts(plot) -> dict[float, str]:
    return dict(plot.getAxis("bottom")._tickLevels[0])


def assert_shows(fig, r) -> None:
    """The figure draws the worst case of grid r: bars = flip_histogram, points = flip_share with Wilson bars."""
    radii, counts, never = flip_histogram(r.flip_radius)
    np.testing.assert_array_equal(fig.bars.opts["x"], radii)
    np.testing.assert_array_equal(fig.bars.opts["height"], counts)
    assert list(fig.never_bar.opts["height"]) == [never] and tick_texts(fig.hist_plot)[fig.never_x] == "never"
    w = worst_case(r)
    share = flip_share(r.flip_radius, w["radii"])
    assert [(x, y) for x, y, _ in drawn_points(fig)] == [(float(k), 100 * s) for k, s in zip(w["radii"], share)]
    lo, hi = wilson([int((r.flip_radius <= k).sum()) for k in w["radii"]], np.full(len(w["radii"]), len(r.flip_radius)))
    np.testing.assert_allclose(fig.errors.opts["top"], 100 * (hi - share))
    np.testing.assert_allclose(fig.errors.opts["bottom"], 100 * (share - lo))
    assert na_marks(fig) == [float(k) for k in RADII if k not in w["radii"]]


def test_the_worst_case_over_shifts_shows_under_the_heatmaps(window, qtbot):
    t = window.translation
    t.lo.setValue(-2)
    t.hi.setValue(2)
    t.step.setValue(1)
    t.count.setValue(20)
    t.precision.setCurrentText("fp32")
    qtbot.mouseClick(t.start_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not t.runner.running, timeout=60000)
    r = t.result
    assert len(r.flip_radius) == r.images == 20
    w = worst_case(r)
    assert t.worst.text() == summary_line(w) and t.worst.text().startswith("Worst case over shifts, 20 images: ")
    assert "\n" not in t.worst.text() and t.worst.toolTip() == "\n".join(format_worst_case(w))
    assert w["flipped"][0] >= (r.count - r.consistent)[1:4, 1:4].max() and "lower bounds" not in t.worst.text()
    assert_shows(t.worst_figure, r)
    assert [hollow for *_, hollow in drawn_points(t.worst_figure)] == [False, False]   # every shift within 2 px
    assert tick_texts(t.worst_figure.share_plot)[1] == "1 (8)" and tick_texts(t.worst_figure.share_plot)[3] == "3"
    # a grid cached before the per-image record existed is computed again, not shown without it
    path = t.request().path
    old = dict(np.load(path))
    del old["flip_radius"]
    np.savez(path, **old)
    t.mode.setCurrentText("roll")
    t.mode.setCurrentText("affine")
    assert t.result is None and t.worst.text() == "" and not path.exists()


def test_a_step_2_grid_shows_odd_radii_as_not_available_and_its_shares_as_lower_bounds(window, qtbot):
    t = window.translation
    t.lo.setValue(-4)
    t.hi.setValue(4)
    t.step.setValue(2)
    t.count.setValue(20)
    t.precision.setCurrentText("fp32")
    qtbot.mouseClick(t.start_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not t.runner.running and t.result is not None, timeout=60000)
    fig = t.worst_figure
    assert_shows(fig, t.result)
    assert [x for x, *_ in drawn_points(fig)] == [2.0, 4.0], "no point at an odd radius, none drawn at 0"
    assert na_marks(fig) == [1.0, 3.0, 5.0, 6.0, 7.0, 8.0]
    assert all(hollow for *_, hollow in drawn_points(fig)), "the grid skips the odd shifts: lower bounds"
    assert tick_texts(fig.share_plot)[2] == "2 (8)" and tick_texts(fig.share_plot)[4] == "4 (24)"
    assert "lower bounds" in t.worst.text() and "n.a.: the grid has no shift" in fig.caption


def test_the_figure_follows_partial_results_and_goes_when_a_setting_changes(window, qtbot):
    t, fig = window.translation, window.translation.worst_figure
    seen = []
    show = fig.set_result

    def spy(result, padding=""):
        show(result, padding)
        radii = worst_case(result)["radii"]
        seen.append((len(result.flip_radius), fig.title.text, dict(fig.share_points),
                     dict(zip(radii, flip_share(result.flip_radius, radii)))))
    fig.set_result = spy
    run_small_grid(qtbot, t, images=60)
    assert len(seen) >= 2 and seen[0][0] < 60, "a first partial result went on screen before the last"
    for n, title, drawn, share in seen:
        assert drawn == share and (f"so far {n} of 60 images" if n < 60 else f"affine shifts, {n} images") in title
    assert seen[-1][0] == 60 and "vgg" not in seen[-1][1] and "tiny" in seen[-1][1] and "affine shifts" in seen[-1][1]
    r = t.result
    t.seed.setValue(1)   # another grid: nothing of this one stays on screen
    assert t.result is None and fig.share_points == {} and drawn_points(fig) == [] and na_marks(fig) == []
    assert len(fig.bars.opts["height"]) == 0 and len(fig.never_bar.opts["height"]) == 0
    assert fig.title.text == WORST_CASE_LATER and fig.caption == "" and t.worst.text() == ""
    t.seed.setValue(0)   # its cached grid comes back, and so does its worst case
    assert "From cache" in t.status.text()
    np.testing.assert_array_equal(t.result.flip_radius, r.flip_radius)
    assert_shows(fig, t.result)


def test_the_heatmap_export_writes_the_worst_case_beside_it(jpeg_window, qtbot, tmp_path, save_as, monkeypatch):
    w, t = jpeg_window, jpeg_window.translation
    w.tabs.setCurrentIndex(1)
    run_small_grid(qtbot, t)
    save_as(tmp_path / "heat.png", tmp_path / "heat.svg")
    trigger(w, "Export translation heatmaps (PNG/SVG/PDF)...")
    png = tmp_path / "heat_worst_case.png"
    assert (tmp_path / "heat.png").exists() and png.exists()
    assert "heat_worst_case.png (worst case over shifts)" in w.statusBar().currentMessage()
    img = QImage(str(png))
    assert round(img.dotsPerMeterX() * 0.0254) == PNG_DPI
    assert img.width() <= EXPORT_SIZE[0] * PNG_DPI / SCREEN_DPI + 2 and img.height() > 0.3 * img.width(), \
        "drawn at the page's shape, not as the window's strip"
    rgb = pixels(png)
    blue = QColor(POINT).getRgb()[:3]
    assert (rgb < 250).any(-1).mean() > 0.02 and has(rgb, blue), "the exported worst case is blank or lacks its bars"
    trigger(w, "Export translation heatmaps (PNG/SVG/PDF)...")
    text = svg_text(tmp_path / "heat_worst_case.svg")
    for part in ("Worst case over shifts", "lossy JPEG copy", "20 images", "padding zeros", "95% Wilson", "never"):
        assert part in text, f"{part!r} missing from the exported worst case: {text[:400]}"
    # a worst-case file in the way is not replaced without asking, and then nothing is written
    (tmp_path / "again_worst_case.png").write_text("keep")
    save_as(tmp_path / "again.png")
    monkeypatch.setattr("padlens.gui.export.QMessageBox.question", lambda *a, **k: QMessageBox.StandardButton.No)
    trigger(w, "Export translation heatmaps (PNG/SVG/PDF)...")
    assert not (tmp_path / "again.png").exists() and (tmp_path / "again_worst_case.png").read_text() == "keep"


def test_the_every_radius_button_sets_a_grid_that_measures_every_radius(window, qtbot):
    """A step-4 grid leaves radii 1-3 and 5-7 n.a.; the button's grid (step 1 within the largest radius) measures
    them all once Start computes it."""
    tab = window.translation
    tab.grid.y_same.setChecked(False)
    qtbot.mouseClick(tab.radii_btn, Qt.MouseButton.LeftButton)
    assert tab.grid.spec() == type(tab.grid.spec())(-max(RADII), max(RADII), -max(RADII), max(RADII), 1)
    assert tab.grid.y_same.isChecked() and tab.result is None and not tab.runner.running   # set, not started
    tab.count.setValue(10)
    tab.precision.setCurrentText("fp32")
    qtbot.mouseClick(tab.start_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not tab.runner.running and tab.result is not None, timeout=60000)
    fig = tab.worst_figure
    assert fig.na_radii == [] and na_marks(fig) == [] and sorted(fig.share_points) == list(RADII)
    assert_shows(fig, tab.result)
