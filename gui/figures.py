"""Translation heatmaps (accuracy, loss, consistency over dx, dy) as one pyqtgraph figure.

Used live by the translation tab and offscreen by `padlens translate` for its figure files.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QPointF, QRectF, pyqtSignal
from PyQt6.QtGui import QPainterPath, QPolygonF
from PyQt6.QtWidgets import QGraphicsPathItem

from padlens.core.translation import GridResult
from padlens.gui.export import write_offscreen
from padlens.gui.style import (DATA_RANGE, PanelFigure, color_bar, figure_caption, image_panel, set_label, set_levels,
                               set_title, value_levels)

METRICS = (("accuracy", "accuracy", True, "viridis"),          # key, title, a share (0 to 1)?, colour map
           ("loss", "mean cross-entropy", False, "inferno"),
           ("consistency", "consistency with unshifted", True, "viridis"))


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


def grid_caption(r: GridResult, padding: str = "") -> str:
    """The exported heatmaps' caption: what was shifted how, on which model (padding: the grid's own record when
    not given) and data, over how many images."""
    info = r.info
    padding = padding or str(info.get("padding", ""))
    model = Path(str(info.get("checkpoint", ""))).stem
    size = int(info.get("input_size", 32))
    step = int(r.dxs[1] - r.dxs[0]) if len(r.dxs) > 1 else int(r.dys[1] - r.dys[0]) if len(r.dys) > 1 else 0
    shifts = (f"{info.get('mode', 'affine')} shifts dx {int(r.dxs[0]):+d} to {int(r.dxs[-1]):+d}, dy {int(r.dys[0]):+d} "
              f"to {int(r.dys[-1]):+d}" + (f", step {step} px" if step else ""))
    return figure_caption(model=model, padding=padding, input=f"CIFAR-10 test images ({size}x{size}), {shifts}",
                          data=str(info.get("data", "")), images=r.images,
                          extra=str(info.get("precision_text", "")))


def _plus(arm: float, half: float) -> QPainterPath:
    path = QPainterPath()
    path.addPolygon(QPolygonF([QPointF(x, y) for x, y in ((-half, -arm), (half, -arm), (half, -half), (arm, -half),
                                                           (arm, half), (half, half), (half, arm), (-half, arm),
                                                           (-half, half), (-arm, half), (-arm, -half),
                                                           (-half, -half))]))
    path.closeSubpath()
    return path


def origin_marker() -> QGraphicsPathItem:
    """The (0, 0) marker: a white plus on a wider black one, so it shows on every colour of every map. Filled
    shapes in grid units (`show_origin` scales it to one cell), so a 300 dpi PNG, an SVG and the window
    draw it alike."""
    outer = QGraphicsPathItem(_plus(0.45, 0.14))
    inner = QGraphicsPathItem(_plus(0.36, 0.05), outer)
    for item, color in ((outer, "k"), (inner, "w")):
        item.setBrush(pg.mkBrush(color))
        item.setPen(pg.mkPen(None))
    outer.setVisible(False)
    return outer


def show_origin(marker: QGraphicsPathItem, r: GridResult | None) -> None:
    """The marker on the grid's (0, 0) cell, one cell in size; hidden without one."""
    if r is not None:
        rect = grid_rect(r)
        marker.setScale(min(rect.width() / len(r.dxs), rect.height() / len(r.dys)))
    marker.setVisible(r is not None and has_origin(r))


def has_origin(r: GridResult) -> bool:
    """Whether the unshifted image is a cell of the grid (a range that excludes 0 has no such cell)."""
    return 0 in r.dxs and 0 in r.dys


class HeatmapFigure(PanelFigure):
    """Three heatmaps of one size with square cells, colour bars, pixel axes, a (0,0) marker and the training
    augmentation box. Accuracy and consistency show their data range (default: an 84-95% spread is not one
    colour) or 0 to 1; each panel says which."""
    cellHovered = pyqtSignal(int, int)    # dx, dy
    cellClicked = pyqtSignal(int, int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.result: GridResult | None = None
        self.framed: QRectF | None = None
        self.range_mode = DATA_RANGE
        self.title = self.addLabel("", row=0, col=0, colspan=len(METRICS))
        self.plots, self.images, self.bars, self.boxes, self.markers = {}, {}, {}, {}, {}
        for col, (key, label, _, cmap) in enumerate(METRICS):
            plot, img = image_panel(self, 1, col, label)
            set_label(plot, "bottom", "dx (pixels, + = right)")
            set_label(plot, "left", "dy (pixels, + = down)")
            plot.getAxis("left").setWidth(54)   # one width for every panel, whatever its tick labels
            bar = color_bar(cmap)
            bar.setImageItem(img, insert_in=plot)
            marker = origin_marker()
            box = pg.QtWidgets.QGraphicsRectItem()
            box.setPen(pg.mkPen((255, 80, 80), width=1.5, style=pg.QtCore.Qt.PenStyle.DashLine))
            box.setVisible(False)
            plot.addItem(box)
            plot.addItem(marker)
            self.plots[key], self.images[key], self.bars[key], self.boxes[key] = plot, img, bar, box
            self.markers[key] = marker
        self.set_panels(list(self.plots.values()), len(METRICS), 1, 1.0)
        self.scene().sigMouseMoved.connect(self._moved)
        self.scene().sigMouseClicked.connect(self._clicked)

    def set_result(self, result: GridResult, title: str = "", augment_range: int | None = None) -> None:
        self.result = result
        set_title(self.title, title)
        rect = grid_rect(result)
        reframe = rect != self.framed   # a new grid; partial results of the same one keep the user's zoom
        self.framed = rect
        for key, *_ in METRICS:
            if reframe:
                self.plots[key].vb.setRange(rect, padding=0)
            img = self.images[key]
            img.setImage(getattr(result, key), autoLevels=False)   # cells not computed yet (NaN) stay transparent
            img.setRect(rect)
            box = self.boxes[key]
            if augment_range:
                box.setRect(augment_box(result, augment_range))
                box.setToolTip(f"training augmentation range: shifts up to {augment_range} px")
            box.setVisible(bool(augment_range))
            show_origin(self.markers[key], result)
        self._levels()
        self.set_panels(list(self.plots.values()), len(METRICS), 1, self.aspect())

    def set_range_mode(self, mode: str) -> None:
        """DATA_RANGE or UNIT_RANGE for the accuracy and consistency colour bars."""
        self.range_mode = mode
        self._levels()

    def _levels(self) -> None:
        for key, label, share, _ in METRICS:
            data = getattr(self.result, key) if self.result is not None else None
            mode = self.range_mode if share else DATA_RANGE
            set_levels(self.bars[key], value_levels([data], mode))
            set_title(self.plots[key], label, f"colour scale: {mode}" if self.result is not None else "")

    def aspect(self) -> float | None:
        """Width / height of the grid, so cells come out square; None (fill the panel) for a strip such
        as a dx sweep at dy = 0, whose square cells would be a thin line."""
        if self.result is None:
            return 1.0
        rect = grid_rect(self.result)
        return rect.width() / rect.height() if max(rect.width(), rect.height()) <= 4 * min(
            rect.width(), rect.height()) else None

    def show_nothing(self, message: str = "") -> None:
        """No grid on screen (e.g. none computed for the current model and settings)."""
        self.result = None
        set_title(self.title, message)
        for key in self.images:
            self.images[key].clear()
            self.boxes[key].setVisible(False)
            show_origin(self.markers[key], None)
        self._levels()

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


def save_heatmap_figures(result: GridResult, out_dir, title: str = "", augment_range: int | None = None,
                         name: str = "translation_heatmaps") -> list[Path]:
    """Write name.png and name.svg, and the worst case over shifts as name_worst_case.png/.svg, drawn offscreen
    (gui.export.write_offscreen): from the command line no display is needed; inside the app nothing flashes up."""
    if augment_range is None:
        augment_range = result.info.get("crop_pad")

    def show(fig: HeatmapFigure) -> None:
        fig.set_result(result, title or result.info.get("title", ""), augment_range)
        fig.caption = grid_caption(result)

    out = Path(out_dir)
    written = write_offscreen(HeatmapFigure, (1500, 520), show, [out / f"{name}{ext}" for ext in (".png", ".svg")],
                              "PadLens translation heatmaps")
    if result.flip_radius is not None:   # beside them, named as the Translation tab's export names it
        from padlens.gui.worst_case_figure import write_worst_case_figure   # it imports this module
        written += [write_worst_case_figure(result, out / f"{name}_worst_case{ext}") for ext in (".png", ".svg")]
    return written
