"""Regenerate the README screenshot (resources/feature_maps_blank.png) from the shipped checkpoint.

The blank input (zeros after normalization) through the zero-padded model at layer model[2][6]:
the channel-mean map lights up along the border although the input is constant.

    QT_QPA_PLATFORM=offscreen python resources/screenshot.py [OUT.png]
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="padlens-shot-")   # no remembered settings


def main(out: str = str(ROOT / "resources" / "feature_maps_blank.png")) -> None:
    from PyQt6.QtWidgets import QApplication

    from padlens.gui.main_window import MainWindow
    app = QApplication.instance() or QApplication([])
    w = MainWindow(None, tempfile.mkdtemp(prefix="padlens-no-data-"))   # no data set needed
    w.resize(1500, 950)
    w.show()
    while w.explorer is None:   # the window shows first and opens the model once its event loop runs
        app.processEvents()
    w.inputs.set_kind("blank")
    for button in w.inputs.blank_group.buttons():
        if button.property("kind") == "normalized":
            button.setChecked(True)
    w.tree.select((2, 6))
    for _ in range(20):
        app.processEvents()
    w.grab().save(out)
    w.close()
    print(f"wrote {out}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
