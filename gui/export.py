"""Figure and array export: never overwrite without asking, never leave a half-written file.

PNG goes through pyqtgraph's ImageExporter; SVG through QSvgGenerator, because pyqtgraph's
SVGExporter crashes with Qt 6.11 (pyqtgraph #3485).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

import numpy as np
from PyQt6.QtCore import QRectF, QSettings, QSize
from PyQt6.QtGui import QPainter
from PyQt6.QtSvg import QSvgGenerator
from PyQt6.QtWidgets import QFileDialog, QGraphicsScene, QMessageBox, QTableWidget, QWidget

from padlens.core.files import atomic_csv, atomic_write


def ask_save_path(parent: QWidget | None, settings: QSettings | None, title: str, name: str,
                  filters: str) -> Path | None:
    """Save dialog that starts in the last export folder, adds the chosen filter's suffix when the typed
    name has none, and asks before replacing a file; None when the user backs out."""
    folder = settings.value("export_dir") if settings is not None else None
    start = Path(str(folder or Path.home())) / name
    path, chosen = QFileDialog.getSaveFileName(parent, title, str(start), filters,
                                               options=QFileDialog.Option.DontConfirmOverwrite)
    if not path:
        return None
    path = Path(path)
    if not path.suffix and (m := re.search(r"\*(\.\w+)", chosen or filters)):
        path = path.with_suffix(m.group(1))
    if not confirm_overwrite(parent, path):
        return None
    if settings is not None:
        settings.setValue("export_dir", str(path.parent))
    return path


def run_export(parent: QWidget | None, path: Path, write: Callable[[], object]) -> bool:
    """Run one export; a failure (disk full, no permission, wrong suffix) becomes a message, not a crash."""
    try:
        write()
    except (OSError, ValueError) as e:
        QMessageBox.warning(parent, "Export failed", f"{path}: {e}")
        return False
    return True


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


def write_table_csv(table: QTableWidget, path) -> Path:
    """A table as shown (header and cell texts) as CSV, for a spreadsheet or a paper."""
    heads = [table.horizontalHeaderItem(c).text() if table.horizontalHeaderItem(c) else str(c)
             for c in range(table.columnCount())]
    rows = [[table.item(r, c).text() if table.item(r, c) else "" for c in range(table.columnCount())]
            for r in range(table.rowCount())]
    return atomic_csv(path, [heads, *rows])


def write_npy(array, path) -> Path:
    return atomic_write(path, lambda tmp: np.save(tmp, np.asarray(array)))
