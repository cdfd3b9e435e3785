"""The translation tab runs a small grid headless, fills the heatmaps as it goes, caches and exports."""
import numpy as np
import pytest

from padlens.core.translation import GridResult, GridSpec


@pytest.fixture
def tab(window):
    w = window
    t = w.translation
    t.lo.setValue(-4)
    t.hi.setValue(4)
    t.step.setValue(4)
    t.count.setValue(30)
    t.precision.setCurrentText("fp32")
    return t


def test_small_grid_runs_in_the_background_and_shows(tab, qtbot, monkeypatch):
    shown = []
    show = tab.show_result
    monkeypatch.setattr(tab, "show_result", lambda r, final=False: (shown.append((r.images, final)), show(r, final)))
    tab.start()
    assert tab.runner.running and not tab.start_btn.isEnabled()
    qtbot.waitUntil(lambda: not tab.runner.running, timeout=30000)
    assert shown == [(10, False), (30, False), (30, True)], "a first heatmap from 10 images, then refined"
    r = tab.result
    assert r is not None and r.accuracy.shape == (3, 3) and r.images == 30
    shown = tab.figure.images["accuracy"].image
    np.testing.assert_allclose(shown, r.accuracy)
    assert "Done" in tab.status.text() and "Unshifted accuracy" in tab.pitfalls.text()
    assert "Pooling phase" in tab.pitfalls.text() and "Training augmentation" in tab.pitfalls.text()
    tab.hover(4, -4)
    assert "dx=+4, dy=-4" in tab.readout.text() and "in frame" in tab.readout.text()
    tab.show_examples(4, 0)
    assert "dx=+4" in tab.examples_box.title()


def test_cached_grid_reopens_at_once(tab, qtbot):
    tab.start()
    qtbot.waitUntil(lambda: not tab.runner.running, timeout=30000)
    first = tab.result
    tab.result = None
    assert tab.try_cache() and "From cache" in tab.status.text()
    np.testing.assert_array_equal(tab.result.correct, first.correct)
    tab.mode.setCurrentText("roll")          # other settings: not cached, and the old grid leaves the screen
    assert not tab.try_cache()
    assert tab.result is None and tab.figure.images["accuracy"].image is None
    assert "Not computed" in tab.figure.title.text and tab.pitfalls.text() == ""
    tab.mode.setCurrentText("affine")
    assert tab.result is not None, "back to the computed settings: the cached grid shows again"


def test_pooling_phase_at_a_resized_input(tab, qtbot, window):
    tab.step.setValue(2)
    window.set_input_size(64)           # pools repeat every 4 px of the 32 px image
    tab.start()
    qtbot.waitUntil(lambda: not tab.runner.running, timeout=30000)
    assert "repeat every 4 px" in tab.pitfalls.text()
    window.set_input_size(48)           # 8 * 32 / 48: not a whole pixel
    assert tab.result is None, "the 64 px grid leaves the screen"
    tab.start()
    qtbot.waitUntil(lambda: not tab.runner.running, timeout=30000)
    assert tab.result.info["input_size"] == 48 and "no shift keeps the phase" in tab.pitfalls.text()
    window.set_input_size(64)
    assert tab.result.info["input_size"] == 64, "back at 64: its cached grid"


def test_cancel_keeps_partial_results(tab, qtbot, monkeypatch):
    """A cancel after the first heatmap, one forward batch into the next chunk: the grid on show is the
    partial one, every cell with the first chunk's images and only some cells with more."""
    import threading

    import padlens.core.grid_cache as grid_cache
    from padlens.core.jobs import Partial, Progress
    held_at, release, real = threading.Event(), threading.Event(), grid_cache.translation_grid

    def held(*args, **kwargs):             # the worker waits one batch past the first partial
        gen, partials = real(*args, **kwargs), 0
        while True:
            try:
                item = next(gen)
            except StopIteration as stop:
                return stop.value
            if partials and isinstance(item, Progress):
                held_at.set()
                release.wait(10)
            partials += isinstance(item, Partial)
            yield item
    monkeypatch.setattr(grid_cache, "translation_grid", held)
    tab.count.setValue(60)
    tab.start()
    qtbot.waitUntil(lambda: tab.result is not None, timeout=30000)
    assert tab.result.images == 10 and tab.result.count.min() == 10, "the first heatmap: 10 images per cell"
    qtbot.waitUntil(held_at.is_set, timeout=30000)   # a cancel before that batch would leave 10 everywhere
    tab.runner.cancel()
    release.set()
    qtbot.waitUntil(lambda: not tab.runner.running, timeout=30000)
    r = tab.result
    assert "Cancelled" in tab.status.text() and tab.start_btn.isEnabled()
    assert r.count.min() == 10 and 10 < r.count.max() < 60, "cells differ in image counts"
    np.testing.assert_allclose(tab.figure.images["accuracy"].image, r.accuracy)
    assert f"10 to {int(r.count.max())} images per cell of the 60" in tab.status.text() and not tab.req.path.exists()
    tab.hover(4, 4)                        # the last cell: the batch did not reach it
    assert "10 images" in tab.readout.text()


def test_start_stays_disabled_while_a_grid_runs_and_the_data_set_arrives(tab, qtbot, fake_data, window):
    tab.count.setValue(60)
    tab.start()
    window.set_datasets({"test": fake_data})
    assert tab.runner.running and not tab.start_btn.isEnabled()
    qtbot.waitUntil(lambda: not tab.runner.running, timeout=30000)
    assert tab.start_btn.isEnabled()


def test_examples_of_six_classes_vary_over_all_ten_with_the_seed(tab):
    seen = set()
    for seed in range(10):
        tab.seed.setValue(seed)
        tab.show_examples(0, 0)
        classes = [cap.text().split("true ")[1].split("<")[0] for _, cap in tab.example_labels]
        assert len(set(classes)) == len(classes) == 6
        seen |= set(classes)
    assert len(seen) == 10


def test_cells_a_cancel_left_out_are_blank_and_said_so(tab):
    r = GridResult.empty(GridSpec(-4, 4, -4, 4, 4), {"mode": "affine"})
    r.count[:], r.correct[:] = 10, 5
    r.count[0, 0] = r.correct[0, 0] = 0
    tab.show_result(r)
    shown = tab.figure.images["accuracy"].image
    assert np.isnan(shown[0, 0]) and shown[1, 1] == 0.5     # NaN draws transparent, not as the worst color
    tab.hover(-4, -4)
    assert "not computed" in tab.readout.text()


def test_examples_follow_the_grid_on_screen_and_the_seed_is_remembered(tab, qtbot, tmp_path, window):
    from PyQt6.QtCore import QSettings
    window.set_input_size(40)
    tab.mode.setCurrentText("roll")
    tab.start()
    qtbot.waitUntil(lambda: not tab.runner.running, timeout=30000)
    assert "input resized to 40x40" in tab.result.info["title"] and tab.result.info["input_size"] == 40
    tab.mode.setCurrentText("affine")                     # changed after the run: examples keep the grid's mode
    tab.show_examples(4, 0)
    assert "dx=+4" in tab.examples_box.title()
    s = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    tab.seed.setValue(7)
    tab.save_settings(s)
    tab.seed.setValue(0)
    tab._restore(s)
    assert tab.seed.value() == 7


def test_export_numbers_and_figures(tab, qtbot, tmp_path, monkeypatch):
    tab.start()
    qtbot.waitUntil(lambda: not tab.runner.running, timeout=30000)
    answers = iter([(tmp_path / "grid.npz", ""), (tmp_path / "grid.csv", ""), (tmp_path / "heat.svg", ""),
                    (tmp_path / "heat.png", ""), (tmp_path / "typed", "SVG (*.svg)"),   # no suffix: the filter's
                    (tmp_path / "no_such_dir" / "x.png", "")])
    monkeypatch.setattr("padlens.gui.export.QFileDialog.getSaveFileName", lambda *a, **k: tuple(map(str, next(answers))))
    warnings = []
    monkeypatch.setattr("padlens.gui.export.QMessageBox.warning", lambda *a: warnings.append(a[-1]))
    tab.export_numbers()
    tab.export_numbers()
    tab.export_figure()
    tab.export_figure()
    tab.export_figure()
    assert (tmp_path / "typed.svg").read_text().lstrip().startswith("<?xml")
    (tmp_path / "no_such_dir").write_text("a file where a folder should be")
    tab.export_figure()                      # fails: a message, no crash
    assert len(warnings) == 1 and "x.png" in warnings[0]
    back = GridResult.load_npz(tmp_path / "grid.npz")
    np.testing.assert_array_equal(back.correct, tab.result.correct)
    assert (tmp_path / "grid.csv").read_text().count("\n") == 1 + 9
    assert (tmp_path / "heat.svg").read_text().lstrip().startswith("<?xml")
    assert (tmp_path / "heat.png").stat().st_size > 1000


def test_closing_the_window_while_a_grid_runs(qtbot, tab):
    tab.count.setValue(60)
    tab.step.setValue(1)
    tab.start()
    tab.window().close()
    assert not tab.runner.running


def test_heatmap_figures_for_the_command_line_are_written_without_a_window(qapp, tmp_path):
    """The real figure code behind `padlens translate` and `padlens report` (their tests stub it)."""
    from PyQt6.QtGui import QImage

    from padlens.gui.figures import save_heatmap_figures
    r = GridResult.empty(GridSpec(-4, 4, -4, 4, 4), {"crop_pad": 4})
    r.count[:] = 10
    r.correct[:] = np.arange(9).reshape(3, 3)
    written = save_heatmap_figures(r, tmp_path, "test grid")
    assert [p.name for p in written] == ["translation_heatmaps.png", "translation_heatmaps.svg",
                                         "translation_heatmaps_worst_case.png", "translation_heatmaps_worst_case.svg"]
    assert QImage(str(written[0])).width() >= 1000 and QImage(str(written[2])).width() >= 1000
    assert written[1].read_text().lstrip().startswith("<?xml")


def test_the_origin_marker_is_outlined_and_shows_only_where_the_grid_has_that_cell(qapp):
    from padlens.gui.figures import HeatmapFigure
    fig = HeatmapFigure()
    marker = fig.markers["accuracy"]
    assert [m.brush().color().name() for m in (marker, *marker.childItems())] == ["#000000", "#ffffff"], \
        "white on black: visible on bright yellow as on dark blue"
    assert marker.childItems()[0].boundingRect().width() < marker.boundingRect().width(), "an outline shows"
    assert not marker.isVisible(), "no grid yet"
    r = GridResult.empty(GridSpec(-4, 4, -4, 4, 4))
    r.count[:] = 1
    fig.set_result(r)
    assert all(m.isVisible() for m in fig.markers.values())
    off = GridResult.empty(GridSpec(4, 12, -4, 4, 4))       # shifts right only: (0, 0) is no cell
    off.count[:] = 1
    fig.set_result(off)
    assert not any(m.isVisible() for m in fig.markers.values())
    fig.set_result(r)
    fig.show_nothing("nothing")
    assert not any(m.isVisible() for m in fig.markers.values())


def test_rectangular_grid_horizontal_shifts_only(tab, qtbot, tmp_path):
    from PyQt6.QtCore import QSettings
    g = tab.grid
    assert not g.y_lo.isEnabled() and tab.spec() == GridSpec(-4, 4, -4, 4, 4)   # dy follows dx by default
    g.y_same.setChecked(False)
    g.y_lo.setValue(0)
    g.y_hi.setValue(0)
    assert tab.spec() == GridSpec(-4, 4, 0, 0, 4)
    tab.start()
    qtbot.waitUntil(lambda: not tab.runner.running, timeout=30000)
    assert tab.result.accuracy.shape == (1, 3) and list(tab.result.dys) == [0]
    from PyQt6.QtCore import QPointF
    fig = tab.figure
    tab.window().tabs.setCurrentWidget(tab)
    tab.window().resize(1400, 900)
    tab.window().show()
    qtbot.waitUntil(lambda: fig.isVisible() and fig.plots["accuracy"].vb.viewRange()[0][0] < -4)
    at = lambda x, y: fig.cell_at(fig.plots["accuracy"].vb.mapViewToScene(QPointF(x, y)))  # noqa: E731
    assert at(4, 1.5) == (4, 0) and at(-3, -1) == (-4, 0)   # one row: its cells are square, 4 px high
    assert at(4, 2.5) is None and at(6.5, 0) is None
    s = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    tab.save_settings(s)
    g.y_same.setChecked(True)
    assert tab.spec() == GridSpec(-4, 4, -4, 4, 4)
    tab._restore(s)
    assert tab.spec() == GridSpec(-4, 4, 0, 0, 4) and g.y_lo.isEnabled()


def test_a_grid_of_another_model_or_size_never_shows(tab, qtbot, window):
    w = window
    tab.count.setValue(60)
    tab.start()
    w.set_input_size(40)                     # mid-run: the run goes on for 32x32 ...
    qtbot.waitUntil(lambda: not tab.runner.running, timeout=30000)
    assert tab.result is None and "earlier settings finished" in tab.status.text()
    w.set_input_size(32)                     # ... and was cached for it
    assert tab.result is not None and tab.result.images == 60


def test_opening_another_model_mid_run_cancels_without_waiting(tab, qtbot, tiny_checkpoint, window):
    w = window
    tab.start()
    qtbot.waitUntil(lambda: not tab.runner.running, timeout=30000)   # 30 images, step 4: cached
    tab.count.setValue(60)
    tab.step.setValue(1)
    tab.start()
    w.open_checkpoint(str(tiny_checkpoint))
    assert tab.runner.running and tab.runner.worker.cancel_requested, "cancelled, not waited for"
    assert tab.loaded is not tab.req.loaded
    tab.count.setValue(30)
    tab.step.setValue(4)
    assert tab.result is None, "nothing shows while the old model's grid winds down"
    qtbot.waitUntil(lambda: not tab.runner.running, timeout=30000)
    assert tab.result is not None and tab.result.images == 30, "then the new model's cached grid"
    assert "From cache" in tab.status.text() and tab.start_btn.isEnabled()


def _hover(tab, qtbot, dx, dy):
    """Moves the mouse over cell (dx, dy) of the accuracy heatmap, as a user does."""
    from PyQt6.QtCore import QPointF
    fig = tab.figure
    tab.window().tabs.setCurrentWidget(tab)
    tab.window().resize(1400, 900)
    tab.window().show()
    qtbot.waitUntil(lambda: fig.isVisible() and fig.plots["accuracy"].vb.viewRange()[0][0] < dx)
    qtbot.wait(200)   # the panels refit to the window's size once Qt has laid it out
    scene = fig.plots["accuracy"].vb.mapViewToScene(QPointF(dx, dy))
    qtbot.mouseMove(fig.viewport(), fig.mapFromScene(scene))


def test_the_hover_read_out_gives_each_cells_95_percent_interval(tab, qtbot):
    from PyQt6.QtCore import Qt

    from padlens.core.stats import wilson
    qtbot.mouseClick(tab.start_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not tab.runner.running, timeout=30000)
    r = tab.result
    _hover(tab, qtbot, 4, -4)
    qtbot.waitUntil(lambda: "dx=+4, dy=-4" in tab.readout.text())
    i, j = r.cell(4, -4)
    lo, hi = wilson(r.correct[i, j], r.count[i, j])
    c_lo, c_hi = wilson(r.consistent[i, j], r.count[i, j])
    text = tab.readout.text()
    assert (f"accuracy {100 * r.accuracy[i, j]:.1f}% (95% CI {100 * lo:.1f}-{100 * hi:.1f}%, 30 images)" in text
            and lo < r.accuracy[i, j] < hi), text
    assert f"(95% CI {100 * c_lo:.1f}-{100 * c_hi:.1f}%)" in text


def test_stop_at_a_precision_ends_early_and_the_bar_says_precision_reached(tab, qtbot, tmp_path):
    from PyQt6.QtCore import QSettings, Qt

    from padlens.core.jobs import Partial
    tab.count.setValue(60)
    assert tab.until_ci.text() == "off (all images)" and tab.request().target_halfwidth is None
    widths = [float(np.nanmax(e.value.accuracy_halfwidth)) for e in tab.request().job() if isinstance(e, Partial)]
    assert len(widths) == 3 and widths[0] > widths[1], "chunks of 10, 30 and 60 images, narrower each time"
    points = round(50 * (widths[0] + widths[1]), 1)          # reached after 30 images, not after 10
    assert points < tab.until_ci.maximum()
    tab.until_ci.setFocus()
    qtbot.keyClick(tab.until_ci, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(tab.until_ci, f"{points}")
    qtbot.keyClick(tab.until_ci, Qt.Key.Key_Return)
    assert tab.until_ci.value() == points
    assert tab.result is None, "the full 60-image grid is another grid"
    qtbot.mouseClick(tab.start_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not tab.runner.running, timeout=30000)
    assert tab.result.images == 30 and tab.bar.format() == "precision reached" and tab.bar.value() == tab.bar.maximum()
    assert f"precision reached: every cell within ±{points:.1f} points" in tab.status.text()
    assert "after 30 of 60 images" in tab.status.text() and "cached as" in tab.status.text()
    tab.result = None
    assert tab.try_cache() and "precision reached" in tab.status.text(), "the early stop is complete: cached"
    s = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    tab.save_settings(s)
    tab.until_ci.setValue(0)
    tab._restore(s)
    assert tab.until_ci.value() == points
