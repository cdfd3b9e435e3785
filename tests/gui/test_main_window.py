"""The main window never hangs, never shows a wrong model without a word, and names a damaged cache file
(issue 18): own models load on a worker with a progress dialog, Cancel and a timeout; refused checkpoints
say why and what is shown instead; every cache read goes through core.grid_cache, inside the event loop too."""
import time

import pytest
import torch
from PyQt6.QtCore import QSettings, Qt, QTimer
from PyQt6.QtGui import QAction
from PyQt6.QtWidgets import QFileDialog, QMessageBox, QPushButton

import padlens.gui.main_window as main_window
from padlens.gui.worker import live_jobs
from tests.gui.grids import run_small_grid

STUCK = '''
import pathlib
import time

import torch.nn as nn

FLAG = pathlib.Path({flag!r})


def wait():   # "forever", until the test lets it go
    while not FLAG.exists():
        time.sleep(0.02)


if {step!r} == "import":
    wait()


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))

    def forward(self, x):
        if {step!r} == "forward":
            wait()
        return self.head(self.conv(x))


def build():
    if {step!r} == "build":
        wait()
    return Net()


def quick():
    return Net()
'''


@pytest.fixture
def stuck(tmp_path, qtbot):
    """make(step) -> a model file stuck in that step until the test ends (then it is let go and its abandoned
    thread ends: no job outlives the test)."""
    flag = tmp_path / "let-go"

    def make(step: str):
        path = tmp_path / f"stuck_{step}.py"
        path.write_text(STUCK.format(flag=str(flag), step=step))
        return path
    yield make
    flag.touch()
    qtbot.waitUntil(lambda: live_jobs() == 0, timeout=20000)


@pytest.fixture
def warnings(monkeypatch):
    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: shown.append((a[1], a[2])))
    return shown


@pytest.mark.parametrize("step, words", [("import", "importing stuck_import.py"),
                                         ("build", "calling build() from stuck_build.py"),
                                         ("forward", "checking a forward pass")])
def test_an_own_model_that_never_returns_is_abandoned_and_the_window_stays_usable(window, stuck, warnings, qtbot,
                                                                                  monkeypatch, step, words):
    w = window
    monkeypatch.setattr(main_window, "MODEL_TIMEOUT_S", 1.5)
    path = stuck(step)
    before = w.explorer.loaded
    during = []
    QTimer.singleShot(900, lambda: during.append((w.model_dialog.isVisible(), w.model_dialog.labelText(),
                                                  w.tabs.currentIndex())))   # the event loop runs meanwhile
    t = time.perf_counter()
    assert not w.open_custom_model(str(path), "build", None)
    assert 1.4 < time.perf_counter() - t < 5
    assert during and during[0][0] and words in during[0][1], during
    title, text = warnings[-1]
    assert title == "Your model takes too long"
    assert f"took longer than 1.5 s, while {words}" in text and "The load is abandoned" in text
    assert "Python cannot stop code that is running" in text and "endless loop, a sleep" in text
    assert w.explorer.loaded is before and "The model shown stays open" in text
    assert live_jobs() == 1, "the stuck thread still runs, abandoned"
    if step == "build":   # the runner is free at once: the same file's other builder (not stuck) opens
        assert w.open_custom_model(str(path), "quick", None) and w.explorer.loaded.name == f"stuck_{step}.quick"


def test_cancel_abandons_a_stuck_load_at_once(window, stuck, warnings, qtbot):
    w = window
    path = stuck("build")
    QTimer.singleShot(800, lambda: qtbot.mouseClick(w.model_dialog.findChild(QPushButton), Qt.MouseButton.LeftButton))
    t = time.perf_counter()
    assert not w.open_custom_model(str(path), "build", None)
    assert time.perf_counter() - t < 5 and not warnings
    assert "was cancelled, while calling build() from stuck_build.py" in w.statusBar().currentMessage()
    assert w.open_custom_model(str(path), "quick", None), "the next model opens while the stuck one still runs"
    assert w.explorer.loaded.name == "stuck_build.quick"


def test_closing_the_window_does_not_wait_for_a_stuck_load(window, stuck, qtbot):
    w = window
    w.show()
    path = stuck("import")
    closed = []
    QTimer.singleShot(800, lambda: (closed.append(time.perf_counter()), w.close(), closed.append(time.perf_counter())))
    assert not w.open_custom_model(str(path), "build", None)
    assert len(closed) == 2 and closed[1] - closed[0] < main_window.CLOSE_WAIT_MS / 1000 and not w.isVisible()


@pytest.fixture
def shipped(tmp_path, tiny_checkpoint, monkeypatch):
    """The tiny checkpoint stands in for the shipped default (fast to open)."""
    folder = tmp_path / "shipped"
    folder.mkdir()
    (folder / "vgg_zeros.pt").write_bytes(tiny_checkpoint.read_bytes())
    monkeypatch.setenv("PADLENS_CHECKPOINTS", str(folder))
    return folder


@pytest.mark.parametrize("make, why", [
    (lambda p: p.write_bytes(b""), "is empty (0 bytes)"),
    (lambda p: p.write_bytes(bytes(range(256)) * 8), "is not a checkpoint file PadLens can read"),
    (lambda p: p.mkdir(), "is a folder, not a checkpoint file"),
])
def test_a_refused_start_up_checkpoint_is_named_with_the_model_shown_instead(qtbot, tmp_path, shipped, warnings,
                                                                             make, why):
    """`padlens --checkpoint random.pt` (or a folder) opened the flagship without a word; an empty one showed an
    error box with no window behind it."""
    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(tmp_path / "config"))
    bad = tmp_path / "random.pt"
    make(bad)
    w = main_window.MainWindow(str(bad), str(tmp_path / "no-data"))
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.explorer is not None and bool(warnings), timeout=10000)
    title, text = warnings[-1]
    assert title == "Checkpoint refused" and str(bad) in text and why in text
    assert "Showing vgg_zeros (the shipped default) instead" in text and w.explorer.loaded.name == "vgg_zeros"
    assert "random.pt was refused; showing vgg_zeros" in w.statusBar().currentMessage()


def _open_checkpoint_from_the_menu(w, path, monkeypatch):
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    next(a for a in w.findChildren(QAction) if a.text() == "Open &checkpoint...").trigger()


def test_a_checkpoint_with_nan_weights_is_refused_and_the_model_stays(window, tiny_checkpoint, tmp_path, warnings,
                                                                     monkeypatch):
    """It switched models, then raised 'Not setting range to [nan, nan]'."""
    c = torch.load(tiny_checkpoint, weights_only=True)
    c["state_dict"] = {k: v.clone().fill_(float("nan")) if v.is_floating_point() else v for k, v in c["state_dict"].items()}
    torch.save(c, tmp_path / "nan.pt")
    before = window.explorer.loaded
    _open_checkpoint_from_the_menu(window, tmp_path / "nan.pt", monkeypatch)
    title, text = warnings[-1]
    assert title == "Cannot open checkpoint" and "holds NaN or infinite weights" in text
    assert window.explorer.loaded is before


@pytest.mark.parametrize("damage", [lambda b: b[:len(b) // 2], lambda b: b""])
def test_a_damaged_cached_grid_is_named_on_reopening_and_computed_again(window, tiny_checkpoint, qtbot, monkeypatch,
                                                                       damage):
    """A truncated or empty cache file broke Start and reopening the checkpoint for good."""
    t = window.translation
    run_small_grid(qtbot, t, timeout=30000)
    path = t.request().path
    path.write_bytes(damage(path.read_bytes()))
    _open_checkpoint_from_the_menu(window, tiny_checkpoint, monkeypatch)   # the tab asks the cache again
    assert t.result is None
    assert "Discarded the unreadable" in t.figure.title.text and path.name in t.figure.title.text
    assert not path.exists()
    qtbot.mouseClick(t.start_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not t.runner.running and t.result is not None, timeout=30000)
    assert t.result.images == 20 and path.is_file() and path.stat().st_size > 100
