"""Start the PadLens window.

A window is on screen at once: Qt alone starts in a fraction of a second, PyTorch takes seconds to import
on a laptop CPU. `start_window` shows a start-up window with the main window's title and place while torch
and the core import in a thread (the window keeps painting and moving meanwhile); `main` then builds the
main window, which takes the start-up window's place.
"""
from __future__ import annotations

import gc
import importlib
import signal
import sys
import threading
import traceback
from typing import Callable

ORG, APP = "PadLens", "PadLens"   # the QSettings every part of the window reads and writes
CORE_MODULES = ("torch", "padlens.core.session", "padlens.core.train")   # nearly all of the start-up's import time


def report_uncaught(kind, value, tb) -> None:
    """A bug in a slot becomes a message box instead of PyQt's abort, so no open work is lost."""
    from PyQt6.QtWidgets import QApplication, QMessageBox
    traceback.print_exception(kind, value, tb)
    QMessageBox.critical(QApplication.activeWindow(), "PadLens: unexpected error",
                         f"{kind.__name__}: {value}\n\nThe window stays open. The full traceback is printed on the "
                         "console; please include it in a bug report.")


_app = []   # the QApplication made here and its collector timer, kept alive: Qt ends with its Python object


def application():
    """The QApplication, made once, named so that QSettings finds the user's settings."""
    from PyQt6.QtWidgets import QApplication
    app = QApplication.instance()
    if app is None:
        app = QApplication(sys.argv[:1])
        _app.extend([app, collect_between_events(app)])
    app.setApplicationName(APP)
    app.setOrganizationName(ORG)
    return app


def collect_between_events(app, interval_ms: int = 1000):
    """Run Python's cycle collector from a timer of the event loop instead of at any allocation, and return
    the timer. Widgets are freed by the collector (their signals hold cycles); an automatic collection that
    fires inside a paint frees a view whose scene is being drawn, and pyqtgraph's AxisItem.paint then
    segfaults (seen in CI). Between events nothing is being drawn. Same thresholds as Python's own."""
    from PyQt6.QtCore import QTimer
    thresholds = gc.get_threshold()
    gc.disable()

    def collect():
        counts = gc.get_count()
        generation = max((g for g in range(3) if counts[g] > thresholds[g]), default=None)
        if generation is not None:
            gc.collect(generation)

    timer = QTimer(app)
    timer.timeout.connect(collect)
    timer.start(interval_ms)
    return timer


def start_window():
    """Show the start-up window (Qt only, nothing of torch) and return it once it has been painted."""
    from PyQt6.QtCore import QSettings, Qt
    from PyQt6.QtWidgets import QLabel, QMainWindow, QProgressBar, QVBoxLayout, QWidget

    class StartupWindow(QMainWindow):
        """The main window's title, size and place, saying what the wait is for."""

        def __init__(self):
            super().__init__()
            self.setWindowTitle("PadLens")
            geometry = QSettings(ORG, APP).value("geometry")
            if geometry:
                self.restoreGeometry(geometry)
            else:
                self.resize(1400, 900)
            box = QWidget()
            lay = QVBoxLayout(box)
            self.label = QLabel("Starting PadLens: loading PyTorch (the first launch after an install takes longest)")
            self.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            bar = QProgressBar()
            bar.setRange(0, 0)   # busy: an import reports no progress
            bar.setMaximumWidth(360)
            lay.addStretch()
            lay.addWidget(self.label)
            lay.addWidget(bar, alignment=Qt.AlignmentFlag.AlignHCenter)
            lay.addStretch()
            self.setCentralWidget(box)

        def wait_for(self, work: Callable[[], object]) -> object:
            """work() in a thread while this window keeps painting; its result, or its exception raised here.
            Ctrl-C at the terminal raises KeyboardInterrupt here (inside Qt's loop it would abort the process)."""
            from PyQt6.QtCore import QEventLoop, QTimer
            done, box = threading.Event(), {}

            def run() -> None:
                try:
                    box["value"] = work()
                except BaseException as e:  # noqa: BLE001 - re-raised in the GUI thread
                    box["error"] = e
                finally:
                    done.set()

            interrupted = []
            old = signal.signal(signal.SIGINT, lambda *_: interrupted.append(True))
            loop, timer = QEventLoop(), QTimer()
            timer.timeout.connect(lambda: (done.is_set() or interrupted) and loop.quit())
            threading.Thread(target=run, name="padlens-start-up", daemon=True).start()
            timer.start(15)
            try:
                loop.exec()
            finally:
                timer.stop()
                signal.signal(signal.SIGINT, old)
            if interrupted:
                raise KeyboardInterrupt
            if "error" in box:
                raise box["error"]
            return box.get("value")

    application()
    win = StartupWindow()
    win.show()
    win.repaint()   # painted now, not at the next turn of an event loop that the imports would delay
    return win


def import_core() -> None:
    """Import torch and the core (no Qt: safe in a thread)."""
    for name in CORE_MODULES:
        importlib.import_module(name)


def main(args=None, model=None, startup=None) -> int:
    """Open the window on args' --checkpoint (else the last or the flagship), then on model when given: a
    core.session.LoadedModel the command line already opened (your own model), so a bad one never opens a window.
    startup: the start-up window on screen, which the main window replaces."""
    from padlens.core.device import pick_device
    from padlens.gui.main_window import MainWindow
    app = application()
    sys.excepthook = report_uncaught
    gc.freeze()   # what the imports made lives to the end: no collection walks it again (a full one took 0.14 s)
    device = pick_device(getattr(args, "device", None))
    win = MainWindow(getattr(args, "checkpoint", None), getattr(args, "data", None), device)
    if model is not None:
        win.set_model(model)
    if startup is not None:   # where the user may have moved it meanwhile
        win.restoreGeometry(startup.saveGeometry())
    win.show()
    if startup is not None:
        startup.close()
    return app.exec()
