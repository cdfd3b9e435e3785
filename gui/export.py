"""Figure and array export: never overwrite without asking, never leave a half-written file.

Figures render the scene themselves: PNG at 300 dpi through QImage, SVG through QSvgGenerator (pyqtgraph's
SVGExporter crashes with Qt 6.11, pyqtgraph #3485) and PDF through QPdfWriter; each trimmed to the figure,
without UI-only items, with its caption underneath.
"""
from __future__ import annotations

import math
import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QMarginsF, QPointF, QRectF, QSettings, QSizeF, Qt
from PyQt6.QtGui import QColor, QFontMetricsF, QImage, QPageSize, QPainter, QPdfWriter, QPen
from PyQt6.QtSvg import QSvgGenerator
from PyQt6.QtWidgets import (QAbstractGraphicsShapeItem, QApplication, QFileDialog, QGraphicsScene, QMessageBox,
                             QTableWidget, QWidget)

from padlens.core.files import atomic_csv, atomic_write
from padlens.gui.style import FONT_PT, TEXT, configure_pyqtgraph, font, is_ui_only

CAPTION_FLAGS = int(Qt.AlignmentFlag.AlignLeft | Qt.TextFlag.TextWordWrap)


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


FIGURE_FILTERS = "PNG, 300 dpi (*.png);;SVG (*.svg);;PDF (*.pdf)"
PNG_DPI, SCREEN_DPI = 300, 96      # a figure's scene is in screen pixels: PNGs render it at 300 / 96 of that
MARGIN, CAPTION_GAP = 8, 6         # white border around a trimmed figure; space above its caption
MAX_RASTER = 24_000_000            # pixels an image may grow to when embedded in an SVG or PDF


def _layout_rect(scene: QGraphicsScene) -> QRectF:
    """Everything the figure's layout placed, also what runs past a too-small window's edge; not the
    viewport (which cut colour-bar labels off) and not every item ever added (hidden or scrolled images)."""
    views = scene.views()
    central = getattr(views[0], "centralWidget", None) if views else None
    items = central.childItems() if central is not None else scene.items()
    rect = QRectF()
    for item in items:
        if item.isVisible():
            rect = rect.united(item.sceneBoundingRect())
    return rect if not rect.isEmpty() else scene.itemsBoundingRect()


def _render(scene: QGraphicsScene, rect: QRectF, scale: float = 1.0) -> QImage:
    img = QImage(max(1, math.ceil(rect.width() * scale)), max(1, math.ceil(rect.height() * scale)),
                 QImage.Format.Format_RGB32)
    img.fill(QColor("white"))
    painter = QPainter(img)
    try:
        painter.scale(scale, scale)
        scene.render(painter, QRectF(0, 0, rect.width(), rect.height()), rect)
    finally:
        painter.end()
    return img


def figure_rect(scene: QGraphicsScene) -> QRectF:
    """The figure's extent without the white space around it (aspect-locked boxes, a wide window), plus a
    small margin."""
    rect = _layout_rect(scene)
    img = _render(scene, rect)
    row = img.bytesPerLine() // 4
    px = np.frombuffer(img.constBits().asstring(img.sizeInBytes()), np.uint32).reshape(img.height(), row)
    ink = px[:, :img.width()] != np.uint32(0xFFFFFFFF)
    ys, xs = np.nonzero(ink.any(1))[0], np.nonzero(ink.any(0))[0]
    if not ys.size:
        return rect
    return QRectF(rect.x() + xs[0] - MARGIN, rect.y() + ys[0] - MARGIN, xs[-1] - xs[0] + 1 + 2 * MARGIN,
                  ys[-1] - ys[0] + 1 + 2 * MARGIN)


def _print_pen(item: QAbstractGraphicsShapeItem, scale: float, vector: bool) -> QPen | None:
    """A drawn line's pen for the file: a cosmetic pen (width in screen pixels) keeps its width in device
    pixels, a hairline at 300 dpi, and QSvgGenerator takes it in item units (a 1.5 px dashed box becomes
    1.5 grid cells wide). Wider by the PNG's scale, or as item units for a vector file."""
    pen = item.pen()
    if not pen.isCosmetic() or pen.style() == Qt.PenStyle.NoPen:
        return None
    new, width = QPen(pen), pen.widthF() or 1.0
    if vector:
        t = item.sceneTransform()
        new.setCosmetic(False)
        new.setWidthF(width / (math.sqrt(abs(t.determinant())) or 1.0))
    else:
        new.setWidthF(width * scale)
    return new


@contextmanager
def _as_figure(scene: QGraphicsScene, vector: bool, scale: float = 1.0):
    """The scene as a figure for the duration: no UI-only items (the selection frame); drawn lines as wide
    as on screen (`_print_pen`); for a vector file, every image enlarged by whole pixels so the embedded
    raster prints sharply at 300 dpi (a viewer would blur a 179x179 mosaic stretched over a page)."""
    hidden = [it for it in scene.items() if is_ui_only(it) and it.isVisible()]
    for it in hidden:
        it.setVisible(False)
    pens = [(it, it.pen(), pen) for it in scene.items() if isinstance(it, QAbstractGraphicsShapeItem)
            and it.isVisible() and (pen := _print_pen(it, scale, vector)) is not None]
    for it, _, pen in pens:
        it.setPen(pen)
    swapped = []
    if vector:
        for it in scene.items():
            if not (isinstance(it, pg.ImageItem) and it.isVisible() and it.image is not None and it.image.ndim == 2):
                continue
            h, w = it.image.shape
            k = math.ceil(it.sceneBoundingRect().width() * PNG_DPI / SCREEN_DPI / w)
            k = max(1, min(k, int(math.sqrt(MAX_RASTER / (h * w)))))
            if k > 1:
                image, rect, levels = it.image, it.mapRectToParent(it.boundingRect()), it.levels
                swapped.append((it, image, rect, levels))
                it.setImage(np.repeat(np.repeat(image, k, 0), k, 1), autoLevels=False, levels=levels)
                it.setRect(rect)
    try:
        yield
    finally:
        for it, image, rect, levels in swapped:
            it.setImage(image, autoLevels=False, levels=levels)
            it.setRect(rect)
        for it, pen, _ in pens:
            it.setPen(pen)
        for it in hidden:
            it.setVisible(True)


def _caption_height(caption: str, width: float) -> float:
    if not caption:
        return 0.0
    box = QFontMetricsF(font(FONT_PT)).boundingRect(QRectF(0, 0, width - 2 * MARGIN, 1e6), CAPTION_FLAGS, caption)
    return box.height() + CAPTION_GAP + MARGIN


def _paint(painter: QPainter, scene: QGraphicsScene, rect: QRectF, caption: str) -> None:
    """The figure at the painter's origin, its caption word-wrapped underneath in the figure's font."""
    scene.render(painter, QRectF(0, 0, rect.width(), rect.height()), rect)
    if caption:
        painter.setFont(font(FONT_PT))
        painter.setPen(QColor(TEXT))
        painter.drawText(QRectF(MARGIN, rect.height() + CAPTION_GAP - MARGIN / 2, rect.width() - 2 * MARGIN, 1e6),
                         CAPTION_FLAGS, caption)


def write_png(scene: QGraphicsScene, path, caption: str = "") -> Path:
    """A 300 dpi PNG: the figure drawn at 300/96 of its screen size, tagged 300 dpi for print."""
    scale = PNG_DPI / SCREEN_DPI

    def write(tmp: Path):
        with _as_figure(scene, vector=False, scale=scale):
            rect = figure_rect(scene)
            size = QSizeF(rect.width(), rect.height() + _caption_height(caption, rect.width()))
            img = QImage(math.ceil(size.width() * scale), math.ceil(size.height() * scale), QImage.Format.Format_RGB32)
            img.fill(QColor("white"))
            painter = QPainter(img)
            try:
                painter.scale(scale, scale)
                _paint(painter, scene, rect, caption)
            finally:
                painter.end()
        dpm = round(PNG_DPI / 0.0254)
        img.setDotsPerMeterX(dpm)
        img.setDotsPerMeterY(dpm)
        return img.save(str(tmp), "PNG")   # QImage.save's False (a full disk) fails the write
    return atomic_write(path, write)


def write_svg(scene: QGraphicsScene, path, title: str = "PadLens figure", caption: str = "") -> Path:
    """SVG through QSvgGenerator (pyqtgraph's SVGExporter crashes with Qt 6.11, pyqtgraph #3485)."""
    def write(tmp: Path):
        with _as_figure(scene, vector=True):
            rect = figure_rect(scene)
            size = QSizeF(rect.width(), rect.height() + _caption_height(caption, rect.width()))
            gen = QSvgGenerator()
            gen.setFileName(str(tmp))
            gen.setResolution(SCREEN_DPI)
            gen.setSize(size.toSize())
            gen.setViewBox(QRectF(QPointF(0, 0), size))
            gen.setTitle(title)
            gen.setDescription(caption)
            painter = QPainter(gen)
            try:
                _paint(painter, scene, rect, caption)
            finally:
                painter.end()
    return atomic_write(path, write)


def write_pdf(scene: QGraphicsScene, path, title: str = "PadLens figure", caption: str = "") -> Path:
    """A one-page PDF the size of the figure, text and lines as vectors."""
    def write(tmp: Path):
        with _as_figure(scene, vector=True):
            rect = figure_rect(scene)
            size = QSizeF(rect.width(), rect.height() + _caption_height(caption, rect.width()))
            pdf = QPdfWriter(str(tmp))
            pdf.setResolution(SCREEN_DPI)
            pdf.setTitle(title)
            pdf.setCreator("PadLens")
            pdf.setPageSize(QPageSize(QSizeF(size.width() * 72 / SCREEN_DPI, size.height() * 72 / SCREEN_DPI),
                                      QPageSize.Unit.Point))
            pdf.setPageMargins(QMarginsF(0, 0, 0, 0))
            painter = QPainter(pdf)
            try:
                _paint(painter, scene, rect, caption)
            finally:
                painter.end()
    return atomic_write(path, write)


def write_figure(scene: QGraphicsScene, path, title: str = "PadLens figure", caption: str = "") -> Path:
    """PNG (300 dpi), SVG or PDF by the file's suffix, trimmed to the figure, with its caption."""
    suffix = Path(path).suffix.lower()
    if suffix == ".svg":
        return write_svg(scene, path, title, caption)
    if suffix == ".pdf":
        return write_pdf(scene, path, title, caption)
    if suffix == ".png":
        return write_png(scene, path, caption)
    raise ValueError(f"export as .png, .svg or .pdf, not {suffix or 'no suffix'}")


def offscreen_app():
    """The running QApplication, else one made offscreen (the command line: no display needed, a stale one does not
    matter), kept on this function because Qt needs it while drawing; pyqtgraph configured as the window does."""
    app = QApplication.instance()
    if app is None:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        app = offscreen_app.app = QApplication([])
    configure_pyqtgraph()   # no window has set them when the command line draws
    return app


def write_offscreen(make: Callable[[], QWidget], size: tuple[int, int], show: Callable[[QWidget], None], paths,
                    title: str, figure: Callable[[QWidget], object] = lambda w: w) -> list[Path]:
    """Make a figure window (make(): a PanelFigure, or a widget holding one, which figure(window) picks), lay it
    out at size without putting it on screen, fill it with show(window), and write the figure to every path
    (write_figure, its caption underneath): how the command line and the report draw the app's figures, so a file
    from either is the figure the window exports. The window is made here, once there is a QApplication."""
    offscreen_app()
    window = make()
    window.setAttribute(Qt.WidgetAttribute.WA_DontShowOnScreen, True)   # laid out and drawn, never on screen
    window.resize(*size)
    window.show()
    try:
        QApplication.processEvents()
        show(window)
        QApplication.processEvents()   # titles and tick labels laid out, then the panels fitted to them
        fig = figure(window)
        fig.fit()
        return [write_figure(fig.scene(), p, title, fig.caption) for p in paths]
    finally:
        window.close()
        window.deleteLater()


def write_table_csv(table: QTableWidget, path) -> Path:
    """A table as shown (header and cell texts) as CSV, for a spreadsheet or a paper."""
    heads = [table.horizontalHeaderItem(c).text().replace("\n", " ") if table.horizontalHeaderItem(c) else str(c)
             for c in range(table.columnCount())]
    rows = [[table.item(r, c).text() if table.item(r, c) else "" for c in range(table.columnCount())]
            for r in range(table.rowCount())]
    return atomic_csv(path, [heads, *rows])


def write_npy(array, path) -> Path:
    return atomic_write(path, lambda tmp: np.save(tmp, np.asarray(array)))
