"""Start the PadLens window."""
from __future__ import annotations

import sys


def main(args=None) -> int:
    from PyQt6.QtWidgets import QApplication

    from core.device import pick_device
    from gui.main_window import MainWindow
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("PadLens")
    app.setOrganizationName("PadLens")
    device = pick_device(getattr(args, "device", None))
    win = MainWindow(getattr(args, "checkpoint", None), getattr(args, "data", None), device)
    win.show()
    return app.exec()
