"""Translation heatmaps (accuracy, loss, consistency over dx, dy) as one pyqtgraph figure.

Used live by the translation tab and offscreen by `padlens translate` for its figure files.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QRectF, Qt, pyqtSignal

from padlens.core.translation import GridResult

pg.setConfigOptions(imageAxisOrder="row-major")
METRICS = (("accuracy", "accuracy", (0.0, 1.0), "viridis"),
           ("loss", "mean cross-entropy", None, "inferno"),
           ("consistency", "consistency with unshifted", (0.0, 1.0), "viridis"))


def grid_rect(r: GridResult) -> QRectF:
    """The rectangle a grid's heatmap covers, one cell centred on each shift; a single row or column
    takes the other axis's step, so its cells stay square."""
    sx = float(r.dxs[1] - r.dxs[0]) if len(r.dxs) > 1 else None
    sy = float(r.dys[1] - r.dys[0]) if len(r.dys) > 1 else None
    sx = sx or sy or 1.0
    sy = sy or sx
    return QRectF(r.dxs[0] - sx / 2, r.dys[0] - sy / 2, sx * len(r.dxs), sy * len(r.dys))


def augment_box(r: GridResult, crop_pad: int) -> QRectF:
    """The training crop range drawn around the cells of shifts up to crop_pad, not through their centres."""
    rect = grid_rect(r)
    hx, hy = rect.width() / len(r.dxs) / 2, rect.height() / len(r.dys) / 2
    return QRectF(-crop_pad - hx, -crop_pad - hy, 2 * (crop_pad + hx), 2 * (crop_pad + hy))


def grid_cell(r: GridResult, p) -> tuple[int, int] | None:
    """(column, row) of the heatmap cell under view point p, or None outside the grid."""
    if not grid_rect(r).contains(p):
        return None
    return int(np.abs(r.dxs - p.x()).argmin()), int(np.abs(r.dys - p.y()).argmin())


def origin_marker(size: int = 14) -> pg.ScatterPlotItem:
    """The (0, 0) marker: a white cross on a wider black one, so it shows on every color of every map."""
    return pg.ScatterPlotItem(spots=[dict(pos=(0, 0), symbol="+", size=size + 2, pen=pg.mkPen("k", width=4)),
                                     dict(pos=(0, 0), symbol="+", size=size, pen=pg.mkPen("w", width=2))],
                              brush=None)


def has_origin(r: GridResult) -> bool:
    """Whether the unshifted image is a cell of the grid (a range that excludes 0 has no such cell)."""
    return 0 in r.dxs and 0 in r.dys


class HeatmapFigure(pg.GraphicsLayoutWidget):
    """Three heatmaps with color bars, pixel axes, a (0,0) marker and the training augmentation box."""
    cellHovered = pyqtSignal(int, int)    # dx, dy
    cellClicked = pyqtSignal(int, int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setBackground("w")
        self.result: GridResult | None = None
        self.framed: QRectF | None = None
        self.title = self.addLabel("", row=0, col=0, colspan=len(METRICS), color="k")
        self.plots, self.images, self.bars, self.boxes, self.markers = {}, {}, {}, {}, {}
        for col, (key, label, levels, cmap) in enumerate(METRICS):
            plot = self.addPlot(row=1, col=col, title=label)
            plot.setLabel("bottom", "dx (pixels, + = right)")
            plot.setLabel("left", "dy (pixels, + = down)")
            plot.invertY(True)
            plot.setAspectLocked(True)
            plot.hideButtons()
            plot.setMenuEnabled(False)
            img = pg.ImageItem()
            plot.addItem(img)
            bar = pg.ColorBarItem(values=levels or (0, 1), colorMap=pg.colormap.get(cmap), interactive=False, width=12)
            bar.setImageItem(img, insert_in=plot)
            marker = origin_marker()
            marker.setVisible(False)
            box = pg.QtWidgets.QGraphicsRectItem()
            box.setPen(pg.mkPen((255, 80, 80), width=1.5, style=pg.QtCore.Qt.PenStyle.DashLine))
            box.setVisible(False)
            plot.addItem(box)
            plot.addItem(marker)
            self.plots[key], self.images[key], self.bars[key], self.boxes[key] = plot, img, bar, box
            self.markers[key] = marker
        self.scene().sigMouseMoved.connect(self._moved)
        self.scene().sigMouseClicked.connect(self._clicked)

    def set_result(self, result: GridResult, title: str = "", augment_range: int | None = None) -> None:
        self.result = result
        self.title.setText(title)
        rect = grid_rect(result)
        reframe = rect != self.framed   # a new grid; partial results of the same one keep the user's zoom
        self.framed = rect
        # square cells, unless the grid is a strip (a dx sweep at dy = 0): then the strip fills the plot
        square = max(rect.width(), rect.height()) <= 4 * min(rect.width(), rect.height())
        for key, _, levels, _ in METRICS:
            if reframe:
                self.plots[key].setAspectLocked(square)
                self.plots[key].vb.setRange(rect, padding=0.02)
            data = getattr(result, key)
            img = self.images[key]
            img.setImage(data, autoLevels=False)   # cells not computed yet (NaN) stay transparent
            img.setRect(rect)
            if levels is None:
                finite = data[np.isfinite(data)]
                levels = (float(finite.min()), float(max(finite.max(), finite.min() + 1e-6))) if finite.size else (0, 1)
            self.bars[key].setLevels(levels)
            box = self.boxes[key]
            if augment_range:
                box.setRect(augment_box(result, augment_range))
                box.setToolTip(f"training augmentation range: shifts up to {augment_range} px")
            box.setVisible(bool(augment_range))
            self.markers[key].setVisible(has_origin(result))

    def show_nothing(self, message: str = "") -> None:
        """No grid on screen (e.g. none computed for the current model and settings)."""
        self.result = None
        self.title.setText(message)
        for key in self.images:
            self.images[key].clear()
            self.boxes[key].setVisible(False)
            self.markers[key].setVisible(False)

    def cell_at(self, scene_pos):
        if self.result is None:
            return None
        for plot in self.plots.values():
            if plot.vb.sceneBoundingRect().contains(scene_pos):
                cell = grid_cell(self.result, plot.vb.mapSceneToView(scene_pos))
                if cell:
                    return int(self.result.dxs[cell[0]]), int(self.result.dys[cell[1]])
        return None

    def _moved(self, pos) -> None:
        cell = self.cell_at(pos)
        if cell:
            self.cellHovered.emit(*cell)

    def _clicked(self, ev) -> None:
        cell = self.cell_at(ev.scenePos())
        if cell:
            self.cellClicked.emit(*cell)


def save_heatmap_figures(result: GridResult, out_dir, title: str = "", augment_range: int | None = None) -> list[Path]:
    """Write translation_heatmaps.png and .svg without showing a window: from the command line Qt runs
    offscreen (no display needed, a stale one does not matter); inside the app nothing flashes up."""
    from PyQt6.QtWidgets import QApplication

    from padlens.gui.export import write_figure
    if QApplication.instance() is None:   # kept alive on the module: Qt needs it while drawing
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        save_heatmap_figures.app = QApplication([])
    fig = HeatmapFigure()
    fig.setAttribute(Qt.WidgetAttribute.WA_DontShowOnScreen, True)   # laid out and drawn, never on screen
    fig.resize(1500, 520)
    if augment_range is None:
        augment_range = result.info.get("crop_pad")
    fig.set_result(result, title or result.info.get("title", ""), augment_range)
    fig.show()
    QApplication.processEvents()
    out = Path(out_dir)
    written = [write_figure(fig.scene(), out / f"translation_heatmaps{ext}", "PadLens translation heatmaps")
               for ext in (".png", ".svg")]
    fig.close()
    return written
