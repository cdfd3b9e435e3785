"""Translation heatmaps (accuracy, loss, consistency over dx, dy) as one pyqtgraph figure.

Used live by the translation tab and offscreen by `padlens translate` for its figure files.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QRectF, Qt, pyqtSignal

from core.translation import GridResult

pg.setConfigOptions(imageAxisOrder="row-major")
METRICS = (("accuracy", "accuracy", (0.0, 1.0), "viridis"),
           ("loss", "mean cross-entropy", None, "inferno"),
           ("consistency", "consistency with unshifted", (0.0, 1.0), "viridis"))


class HeatmapFigure(pg.GraphicsLayoutWidget):
    """Three heatmaps with color bars, pixel axes, a (0,0) marker and the training augmentation box."""
    cellHovered = pyqtSignal(int, int)    # dx, dy
    cellClicked = pyqtSignal(int, int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setBackground("w")
        self.result: GridResult | None = None
        self.title = self.addLabel("", row=0, col=0, colspan=len(METRICS), color="k")
        self.plots, self.images, self.bars, self.boxes = {}, {}, {}, {}
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
            marker = pg.ScatterPlotItem([0], [0], symbol="+", size=14, pen=pg.mkPen("w", width=2), brush=None)
            box = pg.QtWidgets.QGraphicsRectItem()
            box.setPen(pg.mkPen((255, 80, 80), width=1.5, style=pg.QtCore.Qt.PenStyle.DashLine))
            box.setVisible(False)
            plot.addItem(box)
            plot.addItem(marker)
            self.plots[key], self.images[key], self.bars[key], self.boxes[key] = plot, img, bar, box
        self.scene().sigMouseMoved.connect(self._moved)
        self.scene().sigMouseClicked.connect(self._clicked)

    def set_result(self, result: GridResult, title: str = "", augment_range: int | None = None) -> None:
        self.result = result
        self.title.setText(title)
        dxs, dys = result.dxs, result.dys
        step_x = float(dxs[1] - dxs[0]) if len(dxs) > 1 else 1.0
        step_y = float(dys[1] - dys[0]) if len(dys) > 1 else 1.0
        rect = QRectF(dxs[0] - step_x / 2, dys[0] - step_y / 2, step_x * len(dxs), step_y * len(dys))
        for key, _, levels, _ in METRICS:
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
                box.setRect(QRectF(-augment_range, -augment_range, 2 * augment_range, 2 * augment_range))
                box.setToolTip(f"training augmentation range: shifts up to {augment_range} px")
            box.setVisible(bool(augment_range))

    def cell_at(self, scene_pos):
        if self.result is None:
            return None
        for plot in self.plots.values():
            if plot.vb.sceneBoundingRect().contains(scene_pos):
                p = plot.vb.mapSceneToView(scene_pos)
                dxs, dys = self.result.dxs, self.result.dys
                ix, iy = int(np.abs(dxs - p.x()).argmin()), int(np.abs(dys - p.y()).argmin())
                step = max(abs(float(dxs[1] - dxs[0])) if len(dxs) > 1 else 1, abs(float(dys[1] - dys[0])) if len(dys) > 1 else 1)
                if abs(dxs[ix] - p.x()) <= step / 2 + 1e-9 and abs(dys[iy] - p.y()) <= step / 2 + 1e-9:
                    return int(dxs[ix]), int(dys[iy])
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

    from gui.export import write_figure
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
