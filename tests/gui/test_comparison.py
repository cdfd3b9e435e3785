"""The comparison tab, headless: two tiny checkpoints (zeros and circular padding) on a fake test split."""
import math

import numpy as np
import pytest
import torch
from PyQt6.QtCore import QPointF, Qt
from PyQt6.QtWidgets import QMessageBox

import padlens.core.grid_cache as grid_cache
import padlens.gui.comparison as comparison
from padlens.core.checkpoint import save_checkpoint
from padlens.core.data import Normalization
from padlens.core.model import ModelConfig, build_model
from padlens.gui.comparison import ComparisonTab
from padlens.gui.style import configure_pyqtgraph

NORM = Normalization((0.49, 0.48, 0.45), (0.25, 0.24, 0.26))
LAYER = "model[1][0]"     # the second conv: its input is a feature map, so padding shows


def _checkpoint(path, padding_mode, seed):
    torch.manual_seed(seed)
    config = ModelConfig(widths=(8, 16, 16), stem_width=6, padding_mode=padding_mode)
    model = build_model(config).eval()
    save_checkpoint(path, model, config, NORM, {"crop_pad": 4}, {"test_accuracy": 0.1})
    return str(path)


@pytest.fixture
def checkpoints(tmp_path):
    return [_checkpoint(tmp_path / "zeros.pt", "zeros", 0), _checkpoint(tmp_path / "circular.pt", "circular", 1)]


@pytest.fixture
def data(fake_data):
    return fake_data


@pytest.fixture
def tab(qtbot, checkpoints, data, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    configure_pyqtgraph()        # as the main window does before its tabs
    t = ComparisonTab()
    qtbot.addWidget(t)
    t.set_data(data)
    assert t.set_checkpoints(checkpoints) == []
    t.lo.setValue(-4)
    t.hi.setValue(4)
    t.step.setValue(4)
    t.count.setValue(20)
    t.precision.setCurrentText("fp32")
    assert t.set_layer(LAYER)
    return t


def _col(tab, name):
    return next(c for c, (n, _) in enumerate(comparison.COLUMNS) if n == name)


def test_run_shows_shared_heatmaps_difference_maps_and_table(tab, qtbot):
    markers = [*tab.heat_markers, tab.diff_marker]
    assert not any(m.isVisible() for m in markers), "no (0, 0) marker before there is a grid"
    assert tab.run() and tab.runner.running and not tab.start_btn.isEnabled()
    qtbot.waitUntil(lambda: not tab.runner.running, timeout=30000)
    assert "Done" in tab.status.text() and tab.start_btn.isEnabled()
    zeros, circ = tab.entries()
    assert zeros.padding == "zeros" and circ.padding == "circular"
    # one heatmap per checkpoint, all on the same levels
    assert len(tab.heat_images) == 2
    for e, img in zip((zeros, circ), tab.heat_images):
        assert img.image is not None and img.image.shape == (3, 3)
        np.testing.assert_array_equal(img.image, e.grid.accuracy)
        assert e.grid.images == 20
    levels = [tuple(img.getLevels()) for img in tab.heat_images]
    assert levels[0] == levels[1] == tuple(tab.heat_bar.levels())
    lo, hi = levels[0]
    both = np.concatenate([zeros.grid.accuracy.ravel(), circ.grid.accuracy.ravel()])
    assert lo == pytest.approx(both.min()) and hi >= both.max()
    # difference A - B on a scale symmetric around 0
    tab.diff_a.setCurrentIndex(0)
    tab.diff_b.setCurrentIndex(1)
    np.testing.assert_allclose(tab.diff_image.image, zeros.grid.accuracy - circ.grid.accuracy)
    dlo, dhi = tab.diff_bar.levels()
    assert dlo == pytest.approx(-dhi) and dhi > 0
    assert all(m.isVisible() for m in markers)
    tab.diff_a.setCurrentIndex(1)
    tab.diff_b.setCurrentIndex(0)
    np.testing.assert_allclose(tab.diff_image.image, circ.grid.accuracy - zeros.grid.accuracy)
    (x0, x1), (y0, y1) = tab.diff_plot.vb.viewRange()   # the axes end with the grid's cells (-4..4, step 4)
    assert (x0, x1, y0, y1) == pytest.approx((-6, 6, -6, 6)), "no blank margin, no cell cut off"
    # channel-mean maps of the chosen layer, one shared scale per row
    path = tab.layer_path()
    for key in ("blank", "mean"):
        imgs = tab.map_images[key]
        assert all(img.image is not None and img.image.shape == (32, 32) for img in imgs)
        assert tuple(imgs[0].getLevels()) == tuple(imgs[1].getLevels())
    np.testing.assert_allclose(tab.map_images["blank"][0].image, zeros.blank_maps[path])
    assert zeros.mean_images == 20
    # the table: zero padding makes the blank input's border differ, circular padding does not
    assert tab.table.rowCount() == 2
    assert zeros.blank_bias[path] > 0.01 and circ.blank_bias[path] < 1e-4
    blank_col = _col(tab, "layer bias, blank")
    assert float(tab.table.item(0, blank_col).text()) > 0.01
    assert float(tab.table.item(1, blank_col).text()) == pytest.approx(0, abs=1e-3)
    assert tab.table.item(0, _col(tab, "test accuracy")).text() == "10.0%"
    assert tab.table.item(1, _col(tab, "padding")).text() == "circular"
    for r in range(2):
        for c in range(len(comparison.COLUMNS)):
            assert tab.table.item(r, c).text() not in ("", "—")
    assert "Border bias" in tab.table.horizontalHeaderItem(blank_col).toolTip()
    assert not math.isnan(zeros.bias_all("blank")) and zeros.bias_all("blank") > circ.bias_all("blank")
    # hovering a cell reads out every checkpoint there
    tab.resize(1200, 800)
    tab.show()
    qtbot.waitExposed(tab)
    qtbot.wait(50)                   # let the plots take their size
    tab._hover(tab.heat_plots[0].vb.mapViewToScene(QPointF(4, -4)))
    assert "dx=+4, dy=-4" in tab.readout.text() and "zeros" in tab.readout.text() and "A - B" in tab.readout.text()
    # another layer only redraws
    tab.set_layer("model[2][0]")
    assert tab.map_images["blank"][0].image.shape == (16, 16)
    assert float(tab.table.item(1, blank_col).text()) == pytest.approx(0, abs=1e-3)


def test_second_run_takes_the_grids_from_the_cache(tab, qtbot):
    tab.run()
    qtbot.waitUntil(lambda: not tab.runner.running, timeout=30000)
    first = [e.grid.correct.copy() for e in tab.entries()]
    tab.run()
    qtbot.waitUntil(lambda: not tab.runner.running, timeout=30000)
    assert all(e.from_cache for e in tab.entries()) and "from the cache" in tab.status.text()
    for a, e in zip(first, tab.entries()):
        np.testing.assert_array_equal(a, e.grid.correct)


def test_cancel_mid_way_keeps_what_was_done(tab, qtbot, monkeypatch):
    real, calls = grid_cache.translation_grid, []

    def grid(*args, **kwargs):           # runs in the worker thread; cancel when the second grid starts
        calls.append(1)
        if len(calls) == 2:
            tab.cancel()
        return real(*args, **kwargs)

    monkeypatch.setattr(grid_cache, "translation_grid", grid)
    tab.run()
    qtbot.waitUntil(lambda: not tab.runner.running, timeout=30000)
    assert "Cancelled" in tab.status.text() and tab.start_btn.isEnabled()
    first, second = tab.entries()
    assert first.grid_done and first.mean_maps is not None
    assert not second.grid_done and second.blank_maps is None
    assert tab.heat_images[0].image is not None and tab.heat_images[1].image is None
    assert tab.table.rowCount() == 2
    blank_col = _col(tab, "layer bias, blank")
    assert tab.table.item(0, blank_col).text() not in ("", "—")
    assert tab.table.item(1, blank_col).text() == "—"
    assert tab.table.item(1, _col(tab, "grid accuracy")).text() == "—"
    assert tab.diff_image.image is None


def test_cancel_at_once_and_a_rerun(tab, qtbot):
    tab.run()
    tab.cancel()
    qtbot.waitUntil(lambda: not tab.runner.running, timeout=30000)
    assert "Cancelled" in tab.status.text() and tab.table.rowCount() == 2
    tab.run()
    qtbot.waitUntil(lambda: not tab.runner.running, timeout=30000)
    assert "Done" in tab.status.text() and all(e.mean_maps is not None for e in tab.entries())


def test_changing_the_list_while_running_cancels_and_keeps_the_rest(tab, qtbot, checkpoints, tmp_path):
    third = _checkpoint(tmp_path / "reflect.pt", "reflect", 2)
    tab.count.setValue(60)
    tab.run()
    assert tab.add_checkpoint(third)
    qtbot.waitUntil(lambda: not tab.runner.running, timeout=30000)
    assert [e.path for e in tab.entries()] == checkpoints + [third] and tab.table.rowCount() == 3
    assert len(tab.heat_images) == 3 and tab.entries()[2].grid is None and tab.start_btn.isEnabled()
    assert tab.remove_checkpoint(checkpoints[0])
    assert [e.path for e in tab.entries()] == [checkpoints[1], third] and tab.table.rowCount() == 2


def test_corrupt_checkpoint_is_refused_with_a_warning(tab, tmp_path, monkeypatch):
    warnings = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: warnings.append(a))
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"not a checkpoint at all")
    assert not tab.add_checkpoint(bad)
    assert len(warnings) == 1 and str(bad) in warnings[0][2] and "corrupt" in warnings[0][2]
    assert len(tab.paths) == 2 and tab.list.count() == 2
    assert tab.set_checkpoints(tab.paths + [str(bad)]) == [str(bad)]
    assert len(warnings) == 2 and len(tab.paths) == 2


def test_checkpoint_count_is_checked(tab, checkpoints, tmp_path, monkeypatch):
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: pytest.fail("no warning expected"))
    assert tab.remove_checkpoint(checkpoints[1]) and tab.paths == [checkpoints[0]]
    assert "Choose 2 to 4" in tab.message.text() and not tab.start_btn.isEnabled()
    assert not tab.run() and "Choose 2 to 4" in tab.status.text()
    assert not tab.add_checkpoint(checkpoints[0])      # already there
    more = [_checkpoint(tmp_path / f"extra{k}.pt", "zeros", 10 + k) for k in range(4)]
    tab.set_checkpoints(checkpoints + more)
    assert len(tab.paths) == 6 and "At most 4" in tab.message.text() and not tab.run()
    tab.set_checkpoints(checkpoints)
    assert "2 checkpoints" in tab.message.text() and tab.start_btn.isEnabled()
    _, h, w = next(i for i in tab.layers if i.name == LAYER).output_shape
    assert (h, w) == (32, 32) and f"{LAYER}  Conv2d  32x32" in [tab.layer_box.itemText(i)
                                                               for i in range(tab.layer_box.count())]   # name, type, size


def test_no_data_no_run(tab):
    tab.set_data(None)
    assert not tab.start_btn.isEnabled() and not tab.run() and "CIFAR-10" in tab.status.text()


def test_settings_round_trip(tab, qtbot, tmp_path, checkpoints, data):
    from PyQt6.QtCore import QSettings

    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    tab.set_layer("model[2][0]")
    tab.save_settings(settings)
    other = ComparisonTab(settings)
    qtbot.addWidget(other)
    assert other.paths == [], "nothing loads before the tab shows (start-up stays fast)"
    other.show()
    other.set_data(data)             # what the main window pushes once the data set is loaded
    assert other.paths == checkpoints and other.count.value() == 20 and other.step.value() == 4
    assert other.layer_name() == "model[2][0]" and other.data is data and other.start_btn.isEnabled()


def test_a_result_of_another_input_size_says_so(tab, qtbot):
    tab.run()
    qtbot.waitUntil(lambda: not tab.runner.running, timeout=30000)
    assert "Compute again" not in tab.heat_title.text
    tab.set_input_size(48)                                # View > Input size in the app
    assert "now 48x48: Compute again" in tab.heat_title.text
    assert tab.layers[0].output_shape[-1] == 48, "the layer list follows the new size"


def test_input_size_change_during_a_run_waits_for_it(tab, qtbot):
    tab.run()
    tab.set_input_size(48)                                     # the job keeps its size and its models
    assert tab.layers[0].output_shape[-1] == 32
    qtbot.waitUntil(lambda: not tab.runner.running, timeout=30000)
    assert tab.layers[0].output_shape[-1] == 48 and "now 48x48: Compute again" in tab.heat_title.text


def test_a_checkpoint_that_cannot_take_the_input_size_is_named_before_any_work(tab, qtbot, tmp_path, monkeypatch):
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: pytest.fail("no raw error half-way through"))
    assert tab.add_checkpoint(_checkpoint(tmp_path / "reflect.pt", "reflect", 2))
    tab.set_input_size(8)                                 # reflect padding needs maps wider than 1 px
    assert not tab.run() and not tab.runner.running
    assert "reflect" in tab.status.text() and "zeros" not in tab.status.text()
    assert "does not run on a 8x8 input (the smallest larger size it takes is 16x16)" in tab.status.text()
    tab.set_input_size(16)
    assert tab.run()
    tab.cancel()
    qtbot.waitUntil(lambda: not tab.runner.running, timeout=30000)


def test_a_damaged_cache_file_is_discarded_named_and_computed_again(tab, qtbot, tmp_path):
    """A truncated or empty cached grid broke the comparison for good (BadZipFile, EOFError in the event loop)."""
    qtbot.mouseClick(tab.start_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not tab.runner.running, timeout=30000)
    files = sorted((tmp_path / "cache" / "padlens" / "translation").glob("*.npz"))
    assert len(files) == 2
    files[0].write_bytes(files[0].read_bytes()[:50])   # truncated
    files[1].write_bytes(b"")                          # empty
    qtbot.mouseClick(tab.start_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not tab.runner.running, timeout=30000)
    status = tab.status.text()
    assert status.startswith("Done") and not any(e.from_cache for e in tab.entries())
    for f in files:
        assert "Note: discarded the unreadable" in status and f.name in status
        assert f.stat().st_size > 50, "computed again and cached"


def test_the_estimate_under_compute_times_each_checkpoint_and_counts_only_uncached_grids(tab, qtbot):
    from padlens.core.timing import fmt_duration, known_rate, rate_key
    from padlens.core.translation import grid_cost
    tab.show()
    qtbot.waitExposed(tab)
    qtbot.waitUntil(lambda: tab.estimate.text().startswith("About"), timeout=30000)
    reqs = tab._requests()
    rates = [known_rate(rate_key(r.loaded.cache_id, r.device, r.precision, 32)) for r in reqs]   # as measured
    assert all(rates), "each checkpoint timed on its own"
    seconds = sum((grid_cost(r.spec, r.mode, r.images, 32).rows + r.images) / rate for r, rate in zip(reqs, rates))
    assert tab.estimate.text().startswith(f"About {fmt_duration(seconds)} on this ") and "for 2 grids." in \
        tab.estimate.text()
    qtbot.mouseClick(tab.start_btn, Qt.MouseButton.LeftButton)
    assert tab.estimate.text() == ""   # the progress bar says the time left while it runs
    qtbot.waitUntil(lambda: not tab.runner.running, timeout=30000)
    assert tab.estimate.text().startswith("All 2 grids are in the cache")
    assert tab.status.text().startswith("Done in ") and " s;" in tab.status.text()
    tab.count.setValue(30)   # another grid: priced again, at the rates already measured
    assert tab.estimate.text().startswith("About") and not tab.timer.running


def test_a_long_comparison_is_priced_with_fewer_images_offered(tab):
    from padlens.core.timing import FEW_MINUTES
    from padlens.core.translation import grid_cost
    tab.count.setValue(len(tab.data))
    reqs = tab._requests()
    rate = (grid_cost(reqs[0].spec, reqs[0].mode, reqs[0].images, 32).rows + reqs[0].images) * 2 / 1200  # 20 min
    text = comparison.compare_estimate_text(reqs, [rate, rate], 3)
    assert text.startswith("About 20 min on this ") and "for 2 grids (1 in the cache)" in text
    fits = int(text.split(". ")[1].split(" images")[0])
    assert fits < reqs[0].images and fits * 1200 / reqs[0].images <= FEW_MINUTES, "the offer fits in a few minutes"


def test_the_status_line_is_one_function_of_what_happened():
    from padlens.gui.comparison import CompareState, compare_status
    from padlens.gui.translation_tab import NEEDS_DATA
    split = CompareState(data="CIFAR-10 test", images=60)
    assert compare_status(CompareState()) == NEEDS_DATA
    assert compare_status(split) == "60 test images (CIFAR-10 test). Press Compute."
    running = CompareState(data="d", running=True, planned=2)
    assert compare_status(running) == "Running: each checkpoint is shown as soon as it is done."
    assert compare_status(CompareState(running=True, message="zeros: 3 of 9 shifts")) == "zeros: 3 of 9 shifts"
    assert compare_status(CompareState(running=True, message="m", stopping="Checkpoints changed: x")).startswith(
        "Checkpoints changed"), "a progress message does not hide that the run is being stopped"
    done = CompareState(data="d", event="done", seconds=75, cached=1, notes=("discarded a.npz",))
    assert compare_status(done) == "Done in 1 min 15 s; 1 grid from the cache. Note: discarded a.npz."
    assert "cached for next time" in compare_status(CompareState(data="d", event="done", seconds=3))
    assert compare_status(CompareState(data="d", event="cancelled", complete=1, planned=3)).startswith(
        "Cancelled: showing what was done (1 of 3 checkpoints complete")
    assert compare_status(CompareState(event="refused", detail="Choose 2 to 4 checkpoints (now 1).")) == \
        "Choose 2 to 4 checkpoints (now 1).", "a refusal is said even before a split is open"
    assert compare_status(CompareState(data="d", event="failed", detail="boom")) == "Failed: boom"


def test_reloading_the_same_split_keeps_done_and_another_split_asks_for_compute(tab, qtbot, data):
    from padlens.core.data import Dataset
    assert tab.run()
    qtbot.waitUntil(lambda: not tab.runner.running, timeout=30000)
    done = tab.status.text()
    assert done.startswith("Done in")
    tab.set_data(Dataset(data.images, data.labels, data.source))   # File > Open data on the same folder
    assert tab.status.text() == done
    tab.set_data(Dataset(data.images[:30], data.labels[:30], "another split"))
    assert tab.status.text() == "30 test images (another split). Press Compute."
    tab.remove_checkpoint(tab.paths[-1])
    assert not tab.run() and tab.status.text().startswith("Choose 2 to 4")
    tab.add_checkpoint(tab.paths[0])
    assert tab.status.text().endswith("is already in the comparison.")
