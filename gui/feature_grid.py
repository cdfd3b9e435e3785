"""All channels of one layer as a single mosaic ImageItem with channel numbers and a colour bar, the
channel-mean map beside it, and a click-to-enlarge view with a colour bar and pixel read-out.

One mosaic image instead of one ViewBox per channel: 512 maps draw in milliseconds, not seconds.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import torch
from PyQt6.QtCore import QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QPen
from PyQt6.QtWidgets import (QComboBox, QDoubleSpinBox, QGraphicsRectItem, QGraphicsSimpleTextItem, QHBoxLayout,
                             QLabel, QSplitter, QVBoxLayout, QWidget)

from padlens.core.mosaic import SCALES, mosaic, scale_maps, tile_at
from padlens.gui.style import (TEXT, PanelFigure, color_bar, constant_text, font, image_panel, mark_ui_only,
                               set_label, set_levels, set_title, style_axis, value_levels)

COLORMAPS = ("viridis", "inferno", "magma", "plasma", "CET-L1", "CET-D1")
GAP = 1
DEFAULT_SCALE = "per map"   # each map stretched to its own range: the border artifacts show in weak channels too
STRIP = 8                   # a mosaic wider than this many times its height (a vector) fills its panel instead


def as_maps(act: torch.Tensor | np.ndarray) -> np.ndarray:
    """Any layer output as [C,H,W] float32 maps: a vector becomes one 1xN map."""
    a = act.float().numpy() if isinstance(act, torch.Tensor) else np.asarray(act, np.float32)
    if a.ndim == 1:
        return a[None, None, :]
    if a.ndim == 2:
        return a[None]
    return a


def fmt_value(v: float) -> str:
    return f"{v:.3g}"


class FeatureGrid(QWidget):
    """names: what each map is when not a channel (the spatial-bias tab's mean filters are one per
    convolution); they label the tiles and the enlarged view."""
    channelSelected = pyqtSignal(int)

    def __init__(self, parent=None, gap: int = GAP):
        super().__init__(parent)
        self.maps: np.ndarray | None = None
        self.names: list[str] | None = None
        self.title = ""
        self.gap = gap
        self.frame_width = gap if gap <= 1 else 0.3   # mosaic pixels; the rest of a wider gap holds tile names
        self.rows = self.cols = 0
        self.selected = 0
        self.tile_labels: list[QGraphicsSimpleTextItem] = []

        self.cmap_box = QComboBox()
        self.cmap_box.addItems(COLORMAPS)
        self.scale_box = QComboBox()
        self.scale_box.addItems(SCALES)
        self.scale_box.setCurrentText(DEFAULT_SCALE)
        self.scale_box.setToolTip("per map: every map stretched to its own range (shapes, such as the border, in "
                                  "weak channels too); per layer: one range (which channels are strong); fixed")
        self.lo_spin, self.hi_spin = QDoubleSpinBox(), QDoubleSpinBox()
        for s, v in ((self.lo_spin, 0.0), (self.hi_spin, 1.0)):
            s.setRange(-1e6, 1e6)
            s.setDecimals(3)
            s.setValue(v)
            s.setEnabled(False)
            s.valueChanged.connect(self._redraw)
        self.cmap_box.currentTextChanged.connect(self._apply_cmap)
        self.scale_box.currentTextChanged.connect(self._scale_changed)
        self.info = QLabel("Pick an input and a layer")
        self.info.setWordWrap(True)
        self.info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.readout = QLabel(" ")

        controls = QHBoxLayout()
        for w in (QLabel("Colormap"), self.cmap_box, QLabel("Scale"), self.scale_box, QLabel("fixed range"),
                  self.lo_spin, self.hi_spin):
            controls.addWidget(w)
        controls.addStretch(1)

        self.grid_widget = PanelFigure()
        self.grid_title = self.grid_widget.addLabel("", row=0, col=0)
        self.grid_plot, self.grid_image = image_panel(self.grid_widget, 1, 0)
        self.grid_view = self.grid_plot.vb
        self.grid_plot.hideAxis("bottom")
        self.grid_plot.showAxis("top")
        style_axis(self.grid_plot.getAxis("top"))
        set_label(self.grid_plot, "left", "first channel of the row")
        set_label(self.grid_plot, "top", "+ column")
        self.grid_bar = color_bar("viridis")
        self.grid_bar.setImageItem(self.grid_image, insert_in=self.grid_plot)
        self.highlight = QGraphicsRectItem()   # a frame in the gap around the tile: the border pixels stay visible
        pen = QPen(QColor(230, 0, 0))
        pen.setWidthF(self.frame_width)
        pen.setCosmetic(False)
        pen.setJoinStyle(Qt.PenJoinStyle.MiterJoin)
        self.highlight.setPen(pen)
        mark_ui_only(self.highlight)
        self.grid_view.addItem(self.highlight)
        self.grid_widget.scene().sigMouseClicked.connect(self._grid_clicked)

        self.side_widget = PanelFigure()
        self.mean_plot, self.mean_image = image_panel(self.side_widget, 0, 0, "channel mean")
        self.big_plot, self.big_image = image_panel(self.side_widget, 1, 0, "channel")
        self.mean_bar, self.big_bar = color_bar("viridis"), color_bar("viridis")
        self.mean_bar.setImageItem(self.mean_image, insert_in=self.mean_plot)
        self.big_bar.setImageItem(self.big_image, insert_in=self.big_plot)
        self.side_widget.setMinimumWidth(260)   # room for the maps' axes and colour-bar labels, never cut off
        self.big_image.hoverEvent = self._big_hover
        self.mean_image.hoverEvent = self._mean_hover

        split = QSplitter()
        split.addWidget(self.grid_widget)
        split.addWidget(self.side_widget)
        split.setChildrenCollapsible(False)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        self.split = split
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addWidget(self.info)
        layout.addWidget(split, 1)
        layout.addWidget(self.readout)
        self._apply_cmap(self.cmap_box.currentText())

    # ---- data in -------------------------------------------------------------------------------
    def set_maps(self, act, title: str, names: list[str] | None = None) -> None:
        self.maps = as_maps(act)
        self.names = list(names) if names is not None else None
        self.title = title
        self.selected = min(self.selected, len(self.maps) - 1)
        c, h, w = self.maps.shape
        what = "map" if names is not None else "channel"
        self.info.setText(f"{title}: {c} {what}{'s' * (c != 1)} of {h}x{w}, values "
                          f"{self.maps.min():.3g} to {self.maps.max():.3g}")
        self._redraw()
        self.show_channel(self.selected)

    def clear(self, message: str = "") -> None:
        """Nothing on show: no maps, titles or highlight of what was there before; the message says why."""
        self.maps = None
        for img in (self.grid_image, self.mean_image, self.big_image):
            img.clear()
        self._label_tiles()
        self.info.setText(message)
        set_title(self.grid_title, message)
        self.highlight.setRect(0, 0, 0, 0)
        set_title(self.mean_plot, "channel mean")
        set_title(self.big_plot, "channel")
        for bar in (self.mean_bar, self.big_bar, self.grid_bar):   # no scale left over from maps no longer shown
            bar.axis.setTicks(None)
            set_levels(bar, (0, 1))
        self.readout.setText(" ")

    def channel_name(self, k: int) -> str:
        return self.names[k] if self.names is not None else f"channel {k}"

    # ---- drawing -------------------------------------------------------------------------------
    def _scale_changed(self, scale: str) -> None:
        self.lo_spin.setEnabled(scale == "fixed")
        self.hi_spin.setEnabled(scale == "fixed")
        self._redraw()

    def _apply_cmap(self, name: str) -> None:
        cmap = pg.colormap.get(name)
        for img in (self.grid_image, self.mean_image, self.big_image):
            img.setColorMap(cmap)
        for bar in (self.grid_bar, self.mean_bar, self.big_bar):
            bar.setColorMap(cmap)

    def mosaic_image(self) -> np.ndarray:
        scaled = scale_maps(self.maps, self.scale_box.currentText(), (self.lo_spin.value(), self.hi_spin.value()))
        img, self.rows, self.cols = mosaic(scaled, self.gap)
        return img

    def _bar_ticks(self) -> None:
        """The mosaic holds every map scaled to 0..1: the bar names what 0 and 1 stand for."""
        scale = self.scale_box.currentText()
        if scale == "per map":
            ticks = [(0.0, "map min"), (1.0, "map max")]
        else:
            lo, hi = ((float(self.maps.min()), float(self.maps.max())) if scale == "per layer" else
                      (self.lo_spin.value(), self.hi_spin.value()))
            ticks = [(t, fmt_value(lo + t * (hi - lo))) for t in (0.0, 0.25, 0.5, 0.75, 1.0)]
        self.grid_bar.axis.setTicks([ticks])
        set_levels(self.grid_bar, (0, 1))

    def _axis_ticks(self) -> None:
        """Channel numbers: the first channel of each tile row on the left, the column's offset on top;
        named maps are labelled on their tiles instead."""
        _, h, w = self.maps.shape
        g = self.gap
        named = self.names is not None
        every = lambda n: next(k for k in (1, 2, 4, 5, 10, 20, 50) if n / k <= 12)  # noqa: E731 (labels apart)
        left = [] if named else [(r * (h + g) + h / 2, str(r * self.cols)) for r in range(0, self.rows, every(self.rows))]
        top = [] if named else [(q * (w + g) + w / 2, f"+{q}") for q in range(0, self.cols, every(self.cols))]
        self.grid_plot.getAxis("left").setTicks([left])
        self.grid_plot.getAxis("top").setTicks([top])
        for side in ("left", "top"):
            self.grid_plot.showAxis(side, not named)
        self._label_tiles()

    def _label_tiles(self) -> None:
        """Named maps: each name under its tile, sized in mosaic pixels so it scales with the figure."""
        for item in self.tile_labels:
            self.grid_view.removeItem(item)
        self.tile_labels = []
        if self.maps is None or self.names is None:
            return
        _, h, w = self.maps.shape
        g = self.gap
        for k, name in enumerate(self.names):
            r, q = divmod(k, self.cols)
            item = QGraphicsSimpleTextItem(name)
            item.setFont(font())
            item.setBrush(pg.mkBrush(TEXT))
            br = item.boundingRect()
            room = g - self.frame_width   # under the selection frame
            s = min(0.5 * room / br.height(), 0.8 * (w + g) / br.width())
            item.setScale(s)
            item.setPos(q * (w + g) + w / 2 - br.width() * s / 2,
                        r * (h + g) + h + self.frame_width + (room - br.height() * s) / 2)
            self.grid_view.addItem(item)
            self.tile_labels.append(item)

    def _redraw(self) -> None:
        if self.maps is None:
            return
        img = self.mosaic_image()
        self.grid_image.setImage(img, levels=(0, 1), autoLevels=False)
        _, h, w = self.maps.shape
        extra = self.gap if self.names is not None else 0    # room for the names under the last tile row
        g = self.gap   # the selection frame lies in the gap, also around the outer tiles
        self.grid_view.setRange(QRectF(-g, -g, img.shape[1] + 2 * g, img.shape[0] + extra + 2 * g), padding=0)
        self._bar_ticks()
        self._axis_ticks()
        set_title(self.grid_title, self.title, f"{self.scale_box.currentText()} scale")
        ratio = (img.shape[1] + 2 * g) / (img.shape[0] + extra + 2 * g)
        self.grid_widget.set_panels([self.grid_plot], 1, 1, ratio if 1 / STRIP <= ratio <= STRIP else None)
        mean = self.maps.mean(0)
        self.mean_image.setImage(mean, autoLevels=False)
        self.mean_image.setRect(QRectF(-0.5, -0.5, w, h))   # integer ticks on pixel centres
        set_levels(self.mean_bar, value_levels([mean]))
        what = f"channel mean {h}x{w}" if self.names is None else f"mean of the {len(self.maps)} maps"
        set_title(self.mean_plot, what, constant_text(mean))
        step = next(s for s in (1, 2, 4, 8, 16, 32, 64) if max(h, w) / s <= 10)   # whole pixels, about 8 ticks
        for plot in (self.mean_plot, self.big_plot):
            plot.vb.setRange(QRectF(-0.5, -0.5, w, h), padding=0)
            for side in ("left", "bottom"):
                plot.getAxis(side).setTickSpacing(step, step)
        self.side_widget.set_panels([self.mean_plot, self.big_plot], 1, 2, w / h if 1 / STRIP <= w / h <= STRIP else None)

    def show_channel(self, k: int) -> None:
        if self.maps is None:
            return
        self.selected = k
        m = self.maps[k]
        self.big_image.setImage(m, autoLevels=False)
        self.big_image.setRect(QRectF(-0.5, -0.5, m.shape[1], m.shape[0]))
        set_levels(self.big_bar, value_levels([m]))
        set_title(self.big_plot, self.channel_name(k), constant_text(m))
        h, w = m.shape
        r, q = divmod(k, self.cols or 1)
        g, f = self.gap, self.frame_width   # the pen, f wide, runs f/2 outside the tile: in the gap, not on the tile
        self.highlight.setRect(q * (w + g) - f / 2, r * (h + g) - f / 2, w + f, h + f)
        self.channelSelected.emit(k)

    # ---- interaction ---------------------------------------------------------------------------
    def _grid_clicked(self, ev) -> None:
        if self.maps is None:
            return
        p = self.grid_image.mapFromScene(ev.scenePos())
        _, h, w = self.maps.shape
        hit = tile_at(p.y(), p.x(), h, w, self.rows, self.cols, len(self.maps), self.gap)
        if hit:
            self.show_channel(hit[0])

    def _hover(self, ev, image: np.ndarray | None, what: str) -> None:
        if ev.isExit() or image is None:
            return
        y, x = int(ev.pos().y()), int(ev.pos().x())
        if 0 <= y < image.shape[0] and 0 <= x < image.shape[1]:
            self.readout.setText(f"{what} pixel (x={x}, y={y}): {image[y, x]:.5g}")

    def _big_hover(self, ev) -> None:
        self._hover(ev, None if self.maps is None else self.maps[self.selected], self.channel_name(self.selected))

    def _mean_hover(self, ev) -> None:
        self._hover(ev, None if self.maps is None else self.maps.mean(0), "channel mean")
