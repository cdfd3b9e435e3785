"""Status text that says what is true (issue 17): each label follows the state it describes, one test per case
a user met: 'Start computes it' while the grid ran, 'Needs the data set' with the data loaded, counts that
disagreed after a cancel, read-out, examples and time left from another grid, a class filter's index beside
the split's; and the estimate before Start, the first launch without data, the folders the status bar names."""
import threading

import numpy as np
import pytest
import torch
from PyQt6.QtCore import Qt
from torchvision.io import write_png

import padlens.core.grid_cache as grid_cache
from padlens.core.jobs import Partial, Progress
from padlens.core.translation import GridSpec, grid_cost
from padlens.core.timing import FEW_MINUTES
from padlens.gui.translation_tab import NEEDS_DATA, estimate_text


@pytest.fixture
def tab(window):
    t = window.translation
    t.lo.setValue(-4)
    t.hi.setValue(4)
    t.step.setValue(4)
    t.count.setValue(60)
    t.precision.setCurrentText("fp32")
    return t


@pytest.fixture
def hold(monkeypatch):
    """hold(partials): the grid's worker waits at its first forward batch after that many heatmaps, until
    released; returns (reached, release) events."""
    def make(partials_before: int):
        reached, release, real = threading.Event(), threading.Event(), grid_cache.translation_grid

        def held(*args, **kwargs):
            gen, partials = real(*args, **kwargs), 0
            while True:
                try:
                    item = next(gen)
                except StopIteration as stop:
                    return stop.value
                if partials == partials_before and isinstance(item, Progress) and not reached.is_set():
                    reached.set()
                    release.wait(20)
                partials += isinstance(item, Partial)
                yield item
        monkeypatch.setattr(grid_cache, "translation_grid", held)
        return reached, release
    return make


def _start(tab, qtbot):
    qtbot.mouseClick(tab.start_btn, Qt.MouseButton.LeftButton)


def test_while_the_grid_runs_nothing_says_start_computes_it(tab, qtbot, hold):
    tab.mode.setCurrentText("roll")
    tab.mode.setCurrentText("affine")      # a grid was asked for and is not computed: the figure says Start
    assert "Start (Ctrl+Return) computes it" in tab.figure.title.text
    reached, release = hold(0)
    _start(tab, qtbot)
    qtbot.waitUntil(reached.is_set, timeout=30000)
    qtbot.wait(50)                          # the batch's progress reaches the window
    for text in (tab.figure.title.text, tab.status.text()):
        assert "Start" not in text and "Not computed" not in text, text
    assert "Computing" in tab.figure.title.text
    tab.mode.setCurrentText("roll")        # other settings mid-run: said so, not 'not computed'
    assert "Running for earlier settings" in tab.figure.title.text and "earlier settings" in tab.status.text()
    tab.mode.setCurrentText("affine")
    assert "Computing" in tab.figure.title.text
    release.set()
    qtbot.waitUntil(lambda: not tab.runner.running, timeout=30000)
    assert tab.status.text().startswith("Done in") and tab.result.images == 60


def test_with_the_data_loaded_nothing_says_it_is_needed(window, fake_data):
    w = window
    w.set_datasets({})
    w.inputs.set_kind("mean")
    assert "Needs the data set" in w.inputs.mean_status.text() and w.translation.status.text() == NEEDS_DATA
    w.inputs.set_loading("Loading CIFAR-10 from somewhere...")
    assert "Waiting for the data set" in w.inputs.mean_status.text()
    w.set_datasets({"test": fake_data})
    assert "Needs" not in w.inputs.mean_status.text() and "averaged over N images" in w.inputs.mean_status.text()
    assert "Needs" not in w.translation.status.text() and "Not computed" in w.translation.status.text()
    assert w.inputs.mean_btn.isEnabled()


def test_after_a_cancel_status_title_and_read_out_give_the_same_counts(tab, qtbot, hold):
    reached, release = hold(1)             # one batch into the second chunk
    _start(tab, qtbot)
    qtbot.waitUntil(reached.is_set, timeout=30000)
    qtbot.mouseClick(tab.cancel_btn, Qt.MouseButton.LeftButton)
    release.set()
    qtbot.waitUntil(lambda: not tab.runner.running, timeout=30000)
    r = tab.result
    lo, hi = int(r.count.min()), int(r.count.max())
    assert lo == 10 and 10 < hi < 60
    phrase = f"{lo} to {hi} images per cell of the 60"
    assert phrase in tab.status.text() and "not cached" in tab.status.text()
    assert "60 test images" in tab.figure.title.text and f"so far {phrase}" in tab.figure.title.text
    unshifted = int(r.count[r.cell(0, 0)])
    assert f"over {unshifted} images" in tab.pitfalls.text() and lo <= unshifted <= hi
    assert tab.bar.format().startswith("cancelled at")


def test_read_out_examples_and_time_left_never_outlive_their_grid(tab, qtbot):
    _start(tab, qtbot)
    qtbot.waitUntil(lambda: not tab.runner.running, timeout=30000)
    assert tab.bar.format() == "done" and "left" not in tab.bar.format()
    tab.hover(4, -4)
    tab.show_examples(4, 0)
    assert "dx=+4, dy=-4" in tab.readout.text() and "dx=+4" in tab.examples_box.title()
    tab.mode.setCurrentText("roll")        # another grid, not computed
    assert tab.result is None and "dx=" not in tab.readout.text() and "dx=" not in tab.examples_box.title()
    assert all(img.pixmap().isNull() for img, _ in tab.example_labels) and tab.bar.format() == ""
    tab.mode.setCurrentText("affine")      # back: the cached grid, with nothing read off it yet
    assert tab.result is not None and "From cache" in tab.status.text()
    assert "dx=" not in tab.readout.text() and tab.bar.format() == "", "a cached grid has no time left"
    tab.hover(-4, 0)
    i, j = tab.result.cell(-4, 0)
    assert f"accuracy {100 * tab.result.accuracy[i, j]:.1f}%" in tab.readout.text()


def test_the_read_out_follows_the_grid_as_it_fills(tab, qtbot, hold):
    reached, release = hold(1)
    _start(tab, qtbot)
    qtbot.waitUntil(reached.is_set, timeout=30000)
    qtbot.waitUntil(lambda: tab.result is not None)
    tab.hover(0, 0)
    assert "10 images" in tab.readout.text()
    release.set()
    qtbot.waitUntil(lambda: not tab.runner.running, timeout=30000)
    assert "60 images" in tab.readout.text(), "the same cell, now with every image"


def test_the_class_filters_index_and_the_title_agree(window):
    w = window
    w.inputs.set_kind("dataset")
    w.inputs.index_spin.setValue(7)
    assert w.result.label == "test image 7" and w.inputs.index_spin.text() == "7 / 59"
    w.inputs.class_box.setCurrentText("cat")   # the fake split's cats: images 3, 13, ..., 53
    w.inputs.index_spin.setValue(w.inputs.index_spin.maximum())
    assert w.inputs.index_spin.text() == "5 / 5"
    assert w.result.label == "test image 53 (cat 5 / 5)" and "test image 53 (cat 5 / 5)" in w.grid.grid_title.text


def test_first_launch_without_data_opens_on_the_blank_tensor(qtbot, tiny_checkpoint, fake_data, tmp_path,
                                                             cache_home):
    from PyQt6.QtCore import QSettings

    from padlens.gui.main_window import MainWindow
    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(tmp_path / "config"))
    w = MainWindow(str(tiny_checkpoint), str(tmp_path / "no-data"))
    qtbot.addWidget(w)
    assert w.explorer is None, "the model opens once the event loop runs, not before the window shows"
    qtbot.waitUntil(lambda: w.data_label.text() == "no data set", timeout=10000)
    assert w.inputs.kind == "blank" and w.grid.maps is not None, "the blank tensor's maps show"
    assert not w.inputs.no_data_hint.isHidden() and "work without it" in w.inputs.no_data_hint.text()
    w.save_settings()
    assert int(w.settings.value("input_kind")) == 0, "the data-set image stays the kind to open on"
    w.set_datasets({"test": fake_data})       # the data set arrives (Open data folder)
    assert w.inputs.kind == "dataset" and w.result.label.startswith("test image")
    assert w.inputs.no_data_hint.isHidden()
    w.inputs.set_kind("blank")                # the user's own choice stays
    w.set_datasets({})
    w.set_datasets({"test": fake_data})
    assert w.inputs.kind == "blank"


def test_the_estimate_beside_start_comes_from_a_timing_of_this_model(window, tab, qtbot):
    from padlens.core.device import hardware
    w = window
    assert tab.estimate.text() == "", "no timing before the tab shows (start-up does not wait for it)"
    w.show()
    w.tabs.setCurrentWidget(tab)
    qtbot.waitUntil(lambda: tab.estimate.text().startswith("About"), timeout=30000)
    assert f"on this {hardware(tab.request().device)}" in tab.estimate.text()
    assert "first heatmap after about" in tab.estimate.text()
    before = tab.estimate.text()
    tab.step.setValue(1)                       # 81 shifts, not 9: priced at once, with no new timing
    assert not tab.timer.running and tab.estimate.text() != before
    _start(tab, qtbot)
    tab.runner.cancel()
    qtbot.waitUntil(lambda: not tab.runner.running, timeout=30000)
    tab.step.setValue(4)
    _start(tab, qtbot)
    qtbot.waitUntil(lambda: not tab.runner.running, timeout=30000)
    assert tab.estimate.text() == "Computed: on screen."


def test_a_long_grid_is_priced_in_hours_and_offered_fewer_images():
    spec, rate = GridSpec(-32, 32, -32, 32, 2), 120.0     # the default of old, at a 2-core CPU's flagship rate
    text = estimate_text(spec, "affine", 1000, 32, rate, "AVX2 CPU")
    assert text.startswith("About 2 h") and "on this AVX2 CPU" in text, text
    n = int(text.split(". ")[1].split(" images")[0])
    seconds = lambda images: grid_cost(spec, "affine", images, 32).rows / rate  # noqa: E731
    assert seconds(n) <= FEW_MINUTES < seconds(2 * n), "it fits in a few minutes; twice as many would not"
    assert estimate_text(spec, "affine", 1000, 32, None, "AVX2 CPU").startswith("Timing")
    quick = estimate_text(GridSpec(-4, 4, -4, 4, 4), "affine", 60, 32, rate, "AVX2 CPU")
    assert "images: about" not in quick and "s on this" in quick


def test_the_status_bar_names_the_folders_actually_read(window, qtbot, tmp_path, monkeypatch):
    from padlens.core.checkpoint import save_checkpoint
    from padlens.core.data import CLASSES
    from tests.tiny import NORM, tiny
    for label, cls in enumerate(CLASSES[:2]):
        (tmp_path / "pngs" / "test" / cls).mkdir(parents=True)
        write_png(torch.full((3, 32, 32), 40 * label, dtype=torch.uint8),
                  str(tmp_path / "pngs" / "test" / cls / "0.png"))
    monkeypatch.chdir(tmp_path)
    window.load_data("pngs")                   # relative, as typed after --data
    qtbot.waitUntil(lambda: not window.data_runner.running, timeout=20000)
    assert f"ImageFolder {tmp_path / 'pngs' / 'test'}" in window.data_label.text()
    assert window.settings.value("data_root") == str(tmp_path / "pngs")
    model, cfg = tiny()
    save_checkpoint(tmp_path / "trained.pt", model, cfg, NORM, {"crop_pad": 4},
                    {"test_accuracy": 0.5, "test_images": 10000,
                     "test_data": "CIFAR-10 JPEG test (ImageFolder ../shared/datasets/cifar10-jpeg/test)"})
    assert window.open_checkpoint(str(tmp_path / "trained.pt"))
    text = window.model_label.text()
    assert "../shared" not in text and "CIFAR-10 (lossy JPEG copy) test" in text and "50.00%" in text
    np.testing.assert_array_equal(window.datasets["test"].labels, [0, 1])
