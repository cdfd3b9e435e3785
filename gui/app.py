"""Start the PadLens window."""
from __future__ import annotations

import sys
import traceback


def report_uncaught(kind, value, tb) -> None:
    """A bug in a slot becomes a message box instead of PyQt's abort, so no open work is lost."""
    from PyQt6.QtWidgets import QApplication, QMessageBox
    traceback.print_exception(kind, value, tb)
    QMessageBox.critical(QApplication.activeWindow(), "PadLens: unexpected error",
                         f"{kind.__name__}: {value}\n\nThe window stays open. The full traceback is printed on the "
                         "console; please include it in a bug report.")


def main(args=None, model=None) -> int:
    """Open the window on args' --checkpoint (else the last or the flagship), then on model when given: a
    core.session.LoadedModel the command line already opened (your own model), so a bad one never opens a window."""
    from PyQt6.QtWidgets import QApplication

    from padlens.core.device import pick_device
    from padlens.gui.main_window import MainWindow
    sys.excepthook = report_uncaught
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("PadLens")
    app.setOrganizationName("PadLens")
    device = pick_device(getattr(args, "device", None))
    win = MainWindow(getattr(args, "checkpoint", None), getattr(args, "data", None), device)
    if model is not None:
        win.set_model(model)
    win.show()
    return app.exec()
