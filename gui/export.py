"""Figure and array export: never overwrite without asking, never leave a half-written file.

PNG goes through pyqtgraph's ImageExporter; SVG through QSvgGenerator, because pyqtgraph's
SVGExporter crashes with Qt 6.11 (pyqtgraph #3485).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PyQt6.QtCore import QRectF, QSize
from PyQt6.QtGui import QPainter
from PyQt6.QtSvg import QSvgGenerator
from PyQt6.QtWidgets import QGraphicsScene, QMessageBox, QWidget

from core.files import atomic_write


def confirm_overwrite(parent: QWidget | None, path: Path) -> bool:
    """True when path is free or the user agrees to replace it."""
    if not Path(path).exists():
        return True
    answer = QMessageBox.question(parent, "Replace file?", f"{path} exists. Replace it?",
                                  QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                  QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes


def _scene_rect(scene: QGraphicsScene) -> QRectF:
    views = scene.views()
    if views:   # what the user sees, not every item ever added
        return views[0].mapToScene(views[0].viewport().rect()).boundingRect()
    return scene.itemsBoundingRect()


def write_png(scene: QGraphicsScene, path, scale: float = 2.0) -> Path:
    import pyqtgraph.exporters as pge
    rect = _scene_rect(scene)

    def write(tmp: Path):
        exp = pge.ImageExporter(scene)
        exp.parameters()["width"] = int(rect.width() * scale)
        exp.export(str(tmp))
    return atomic_write(path, write)


def write_svg(scene: QGraphicsScene, path, title: str = "PadLens figure") -> Path:
    rect = _scene_rect(scene)

    def write(tmp: Path):
        gen = QSvgGenerator()
        gen.setFileName(str(tmp))
        gen.setSize(QSize(int(rect.width()), int(rect.height())))
        gen.setViewBox(QRectF(0, 0, rect.width(), rect.height()))
        gen.setTitle(title)
        painter = QPainter(gen)
        try:
            scene.render(painter, QRectF(0, 0, rect.width(), rect.height()), rect)
        finally:
            painter.end()
    return atomic_write(path, write)


def write_figure(scene: QGraphicsScene, path, title: str = "PadLens figure") -> Path:
    """PNG or SVG by the file's suffix."""
    suffix = Path(path).suffix.lower()
    if suffix == ".svg":
        return write_svg(scene, path, title)
    if suffix == ".png":
        return write_png(scene, path)
    raise ValueError(f"export as .png or .svg, not {suffix or 'no suffix'}")


def write_npy(array, path) -> Path:
    return atomic_write(path, lambda tmp: np.save(tmp, np.asarray(array)))
