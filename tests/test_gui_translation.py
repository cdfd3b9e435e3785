"""The translation tab runs a small grid headless, fills the heatmaps as it goes, caches and exports."""
import numpy as np
import pytest

from core.translation import GridResult


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


def test_small_grid_runs_in_the_background_and_shows(tab, qtbot):
    partials = []
    tab.start()
    assert tab.runner.running and not tab.start_btn.isEnabled()
    tab.runner.worker.partial.connect(lambda r: partials.append(r))
    qtbot.waitUntil(lambda: not tab.runner.running, timeout=30000)
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
    tab.mode.setCurrentText("roll")          # other settings: not cached
    assert not tab.try_cache()


def test_cancel_keeps_partial_results(tab, qtbot):
    tab.count.setValue(60)
    tab.start()
    tab.runner.cancel()
    qtbot.waitUntil(lambda: not tab.runner.running, timeout=30000)
    assert "Cancelled" in tab.status.text() and tab.start_btn.isEnabled()


def test_export_numbers_and_figures(tab, qtbot, tmp_path, monkeypatch):
    tab.start()
    qtbot.waitUntil(lambda: not tab.runner.running, timeout=30000)
    answers = iter([str(tmp_path / "grid.npz"), str(tmp_path / "grid.csv"), str(tmp_path / "heat.svg"),
                    str(tmp_path / "heat.png")])
    monkeypatch.setattr("gui.translation_tab.QFileDialog.getSaveFileName", lambda *a, **k: (next(answers), ""))
    tab.export_numbers()
    tab.export_numbers()
    tab.export_figure()
    tab.export_figure()
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
