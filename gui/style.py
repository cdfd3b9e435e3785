"""The figure style of every view and export, in one place: pyqtgraph's global options (process-wide, so
modules that each set their own would depend on which was imported last), fonts, dark text, image panels,
colour bars whose tick labels fit, panels of one size with square cells, the colour range a scale shows,
and the caption every exported figure carries."""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QRectF, QSizeF, Qt, QTimer
from PyQt6.QtGui import QFont, QFontMetricsF, QTextOption
from PyQt6.QtWidgets import QApplication, QGraphicsItem, QSizePolicy

from padlens.core.mosaic import is_constant

TEXT = "#1a1a1a"                  # titles, axes, tick labels: dark on the white figure background
NO_INK = (0, 0, 0, 0)             # drawn, taking its room, but not seen
TICK_LENGTH = -5                  # pyqtgraph's default: inwards, 5 px
FONT_PT, LABEL_PT, TITLE_PT = 9, 10, 11
MIN_TITLE_WIDTH = 60             # a panel title wraps at its panel's width, but not to a word a line
BAR_WIDTH = 12                    # the colour strip of a colour bar, in pixels
DATA_RANGE, UNIT_RANGE = "data range", "0 to 1"   # what an accuracy or consistency colour bar spans
RANGES = (DATA_RANGE, UNIT_RANGE)
ZWSP = "\u200b"                   # zero-width space: where a long model name may wrap
UI_ONLY = 0x504C                  # QGraphicsItem data key: drawn on screen (a selection), left out of exports


def configure_pyqtgraph() -> None:
    """Row-major images (array[row, column] draws as row = y, the way numpy and torch lay out maps and grids)
    and no antialiasing (crisp cell edges). Call before the first ImageItem is made: each one reads the axis
    order when it is created."""
    pg.setConfigOptions(imageAxisOrder="row-major", antialias=False, foreground=TEXT, background="w")


def font(pt: float = FONT_PT, bold: bool = False) -> QFont:
    """The application's font family at a size that stays readable in a window and in a printed figure."""
    f = QFont(QApplication.font() if QApplication.instance() else QFont())
    f.setPointSizeF(pt)
    f.setBold(bold)
    return f


def style_axis(axis: pg.AxisItem) -> None:
    axis.setStyle(tickFont=font(FONT_PT))
    axis.setTextPen(TEXT)
    axis.setPen(TEXT)
    axis.enableAutoSIPrefix(False)   # "x1e-07" beside the ticks is easy to miss: the ticks carry the numbers


def set_label(plot: pg.PlotItem, side: str, text: str) -> None:
    plot.setLabel(side, text, color=TEXT, **{"font-size": f"{LABEL_PT}pt"})


def title_html(text: str, note: str = "") -> str:
    """A panel title with an optional second, smaller line (what the scale shows, how many images)."""
    small = f"<span style='font-size:{FONT_PT}pt'>{note}</span>" if note else ""
    return f"{text}<br>{small}" if text and small else text or small


def set_title(item, text: str, note: str = "") -> None:
    """The title of a PlotItem, or the text of a LabelItem, in the figure style."""
    if isinstance(item, pg.PlotItem):
        item.setTitle(title_html(text, note) if text or note else None, color=TEXT, size=f"{TITLE_PT}pt")  # None: no row
    else:
        item.setText(title_html(text, note), color=TEXT, size=f"{TITLE_PT}pt")
        item.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)   # no taller than its text


def image_panel(layout: pg.GraphicsLayout | pg.GraphicsLayoutWidget, row: int, col: int,
                title: str = "") -> tuple[pg.PlotItem, pg.ImageItem]:
    """A plot holding one image: y down (rows of a map or a grid), no mouse menu or auto-range button,
    styled axes."""
    plot = layout.addPlot(row=row, col=col)
    plot.invertY(True)
    plot.hideButtons()
    plot.setMenuEnabled(False)
    for side in ("left", "bottom"):
        style_axis(plot.getAxis(side))
    set_title(plot, title)
    img = PanelImage(plot)
    plot.addItem(img)
    return plot, img


class PanelImage(pg.ImageItem):
    """An image panel's image. While it holds none (nothing computed yet), its plot's axes draw no ticks or
    numbers: pyqtgraph's empty frame, -0.5 to 0.5, would read as coordinates. The axis titles stay, and the
    layout does not move when the data arrives (the numbers are transparent, not removed)."""

    def __init__(self, plot: pg.PlotItem):
        super().__init__()
        self.plot = plot
        self._show_ticks(False)

    def setImage(self, image=None, autoLevels=None, **kwargs):
        super().setImage(image, autoLevels, **kwargs)
        self._show_ticks(self.image is not None)

    def clear(self):
        super().clear()
        self._show_ticks(False)

    def _show_ticks(self, shown: bool) -> None:
        for side in ("left", "bottom", "top", "right"):
            axis = self.plot.getAxis(side)
            axis.setTextPen(TEXT if shown else NO_INK)
            axis.setStyle(tickLength=TICK_LENGTH if shown else 0)   # ticks point inwards: no room either way


def color_bar(cmap: str, levels=(0.0, 1.0), label: str | None = None) -> pg.ColorBarItem:
    """A non-interactive colour bar with dark tick labels wide enough to be read in full."""
    bar = pg.ColorBarItem(values=tuple(levels), colorMap=pg.colormap.get(cmap), interactive=False, width=BAR_WIDTH)
    for side in ("left", "right"):
        style_axis(bar.getAxis(side))
    if label:
        bar.getAxis("left").setLabel(label, color=TEXT, **{"font-size": f"{FONT_PT}pt"})
    fit_bar(bar)
    return bar


def fit_bar(bar: pg.ColorBarItem) -> None:
    """Make the bar's axis as wide as its longest tick label: the fixed default cuts off '-0.07' to '-'."""
    axis = bar.axis
    lo, hi = axis.range
    if axis._tickLevels is not None:   # ticks set by name (e.g. "map min", "map max")
        texts = [t for level in axis._tickLevels for _, t in level]
    else:
        values = [v for _, vs in axis.tickValues(min(lo, hi), max(lo, hi), 200) for v in vs]
        texts = axis.tickStrings(values, 1.0, (abs(hi - lo) or 1.0) / 4) if values else []
    texts = texts or [f"{hi:.3g}"]
    metrics = QFontMetricsF(font(FONT_PT))
    axis.setWidth(math.ceil(max(metrics.horizontalAdvance(t) for t in texts) + axis.style["tickLength"] + 10))


def set_levels(bar: pg.ColorBarItem, levels) -> None:
    bar.setLevels(tuple(float(v) for v in levels))
    fit_bar(bar)


def value_levels(arrays, mode: str = DATA_RANGE, symmetric: bool = False, floor: float = 1e-6) -> tuple[float, float]:
    """The range a colour scale shows: the finite values' range (DATA_RANGE), or 0 to 1 (UNIT_RANGE, for
    shares); symmetric about 0 for differences. A constant (`is_constant`) is centred in a range wide
    enough that float noise shows as one colour."""
    if mode == UNIT_RANGE:
        return 0.0, 1.0
    vals = [np.asarray(a)[np.isfinite(a)] for a in arrays if a is not None]
    vals = np.concatenate([v.ravel() for v in vals]) if any(v.size for v in vals) else np.zeros(0)
    if not vals.size:
        return (-floor, floor) if symmetric else (0.0, 1.0)
    lo, hi = float(vals.min()), float(vals.max())
    if symmetric:
        m = max(abs(lo), abs(hi), floor)
        return -m, m
    if is_constant(lo, hi) or hi - lo < floor:
        half = max(abs(hi) / 10, 1e-3)
        return lo - half, hi + half
    return lo, hi


def constant_text(values) -> str:
    """'constant 0.0312' for a map that is one value up to float noise, else ''."""
    v = np.asarray(values)
    v = v[np.isfinite(v)]
    return f"constant {float(v.mean()):.4g}" if v.size and is_constant(v.min(), v.max()) else ""


def mark_ui_only(item) -> None:
    """Shown on screen (a selection, a hover frame), never in an exported figure."""
    QGraphicsItem.setData(item, UI_ONLY, True)   # the base class's: pyqtgraph items have setData of their own


def is_ui_only(item) -> bool:
    return bool(QGraphicsItem.data(item, UI_ONLY))


def jpeg_note(source: str) -> str:
    """' (lossy JPEG copy)' for the shared JPEG copy of CIFAR-10: every figure measured on it says so."""
    return " (lossy JPEG copy)" if "JPEG" in source else ""


def data_text(source: str) -> str:
    """A data set as a caption names it, saying so when the images are the lossy JPEG copy."""
    return f"{source}, the lossy JPEG copy of CIFAR-10" if jpeg_note(source) else source


def figure_caption(model: str = "", padding: str = "", layer: str = "", input: str = "", data: str = "",
                   images: int | None = None, extra: str = "") -> str:
    """What an exported figure shows, for a reader who has only the file: model, padding mode, layer,
    input, data set and image count (the parts that apply)."""
    parts = [f"Model {model}" + (f" (padding {padding})" if padding else "") if model else "",
             f"layer {layer}" if layer else "", f"input: {input}" if input else "",
             f"data: {data_text(data)}" if data else "", f"{images:,} images" if images else "", extra]
    return "; ".join(p for p in parts if p) + "."


def _settle(layout, plots) -> None:
    """Lay out now, the figure and each plot's own axes-and-box layout, which Qt would otherwise do later."""
    layout.invalidate()
    layout.activate()
    for p in plots:
        p.layout.activate()


def breakable(doc) -> None:
    """Let a title wrap after an underscore too: "vgg_zeros_distilled" is one word, and a word wider than its
    panel widens it, which an aspect-locked view fills by showing axes past the data. A zero-width space
    after each underscore (once) is invisible on screen and in exports."""
    cursor = doc.find("_")
    while not cursor.isNull():
        if doc.characterAt(cursor.position()) != ZWSP:
            cursor.insertText("_" + ZWSP)
        cursor = doc.find("_", cursor)


def wrap_label(label: pg.LabelItem, width: float) -> None:
    """Wrap a title's text at word boundaries to width (-1: one line), centred: "vgg_zeros - vgg_reflect"
    takes two lines instead of widening its panel past the others. A LabelItem is at least as wide as its
    text, so an unwrapped long title widens the figure past its window, which cuts off the colour bars."""
    item = label.item
    breakable(item.document())
    item.setTextWidth(width)
    option = item.document().defaultTextOption()
    option.setAlignment(Qt.AlignmentFlag.AlignHCenter)
    option.setWrapMode(QTextOption.WrapMode.WordWrap)
    item.document().setDefaultTextOption(option)
    if width > 0:   # as wide as the longest line, not the width offered: a short title keeps its own width
        item.setTextWidth(math.ceil(item.document().idealWidth()) + 1)
    label.updateMin()


def _min_size(item) -> QSizeF:
    return item.effectiveSizeHint(Qt.SizeHint.MinimumSize)


def _rest(ci: pg.GraphicsLayout, plots, margin: float) -> tuple[float, float]:
    """Width and height of the layout's columns and rows that hold no plot (separate colour bars, row labels,
    the figure title), with the spacing and margins: the room the panels cannot have. Items beside the plots
    (a bar as tall as its row, a rotated row label) take no height of their own, nor items spanning
    columns (a title) width."""
    cells = {it: rc for it, rc in ci.items.items() if it.isVisible()}
    plot_rows = {r for p in plots for r, _ in cells.get(p, [])}
    plot_cols = {c for p in plots for _, c in cells.get(p, [])}
    widths, heights = {}, {}
    for it, rc in cells.items():
        size = _min_size(it)
        if len({c for _, c in rc}) == 1 and rc[0][1] not in plot_cols:
            widths[rc[0][1]] = max(widths.get(rc[0][1], 0.0), size.width())
        if len({r for r, _ in rc}) == 1 and rc[0][0] not in plot_rows:
            heights[rc[0][0]] = max(heights.get(rc[0][0], 0.0), size.height())
    layout = ci.layout
    spacing_w = layout.horizontalSpacing() * max(0, layout.columnCount() - 1)
    spacing_h = layout.verticalSpacing() * max(0, layout.rowCount() - 1)
    return sum(widths.values()) + spacing_w + 2 * margin, sum(heights.values()) + spacing_h + 2 * margin


def _fold_hidden(item) -> None:
    """A grid layout keeps a hidden item's room (a figure with two of six columns would be mostly white): a hidden
    item takes none; shown again, it gets back the sizes it had (a plot's are set again by fit_panels anyway)."""
    if item is None:
        return
    if not item.isVisible():
        if not hasattr(item, "_unfolded"):
            item._unfolded = (item.minimumSize(), item.maximumSize())
            item.setMinimumSize(0, 0)
            item.setMaximumSize(0, 0)
    elif hasattr(item, "_unfolded"):
        low, high = item.__dict__.pop("_unfolded")
        item.setMinimumSize(low)
        item.setMaximumSize(high)


def fit_panels(widget: pg.GraphicsLayoutWidget, plots: list[pg.PlotItem], cols: int, rows: int,
               aspect: float | None) -> None:
    """Give every plot the same size, its view box width/height = aspect (None: fill the room), as large
    as the widget allows, and centre the figure: square cells fill their panels instead of sitting in tall
    boxes, and every panel shows the same range. The plots sit in a grid of rows x cols (row by row); the
    other items of the layout (separate colour bars, row labels) keep their minimum sizes; titles wrap to
    their panel's width."""
    plots = [p for p in plots if p.isVisible()]
    view = widget.viewport().size()
    if not plots or view.width() < 50 or view.height() < 50:   # not laid out yet (a hidden tab): later
        return
    layout = widget.ci.layout
    margin = 4
    layout.setContentsMargins(margin, margin, margin, margin)
    for i in range(layout.count()):
        item = layout.itemAt(i).graphicsItem()
        if isinstance(item, pg.LabelItem) and item.angle == 0:   # figure titles: no wider than the figure
            wrap_label(item, view.width() - 4 * margin)
        _fold_hidden(item)
    titled = [p for p in plots if p.titleLabel.isVisible() and p.titleLabel.text]
    for p in plots:
        p.setMinimumSize(-1, -1)   # unset: the plot's own layout decides its minimum again
        p.setMaximumSize(-1, -1)
        p.vb.setAspectLocked(False)
    for p in titled:
        wrap_label(p.titleLabel, -1)
    # the view sized the figure when it last resized, but never below the old fixed sizes: again, to the view
    widget.ci.setGeometry(QRectF(0, 0, view.width(), view.height()))
    layout.invalidate()
    row, col = plots[:cols], plots[::cols]

    def title_w(p):
        return p.titleLabel.minimumWidth() if p in titled else 0.0
    # room across: the window less what is not a view box (axes, bars, a title's excess over its box)
    rest_w, rest_h = _rest(widget.ci, plots, margin)
    over_w = {p: _min_size(p).width() - max(title_w(p), p.vb.minimumWidth()) for p in plots}
    vb_w = (view.width() - 2 * margin - rest_w - sum(over_w[p] for p in row)) / cols
    for p in titled:   # wrapped to the widest the box can be (narrower would make it taller)
        wrap_label(p.titleLabel, max(vb_w, MIN_TITLE_WIDTH))
    for r in range(0, len(plots), cols):   # as tall as the row's longest title: the boxes of a row line up
        height = max([math.ceil(p.titleLabel.item.boundingRect().height()) for p in plots[r:r + cols]
                      if p in titled] or [0])
        for p in plots[r:r + cols]:
            if p in titled:
                p.titleLabel.setMaximumHeight(height)
                p.layout.setRowFixedHeight(0, height)
                p.layout.invalidate()
    layout.invalidate()
    over_h = {p: _min_size(p).height() - p.vb.minimumHeight() for p in plots}
    tallest = [max(over_h[p] for p in plots[r * cols:(r + 1) * cols]) for r in range(len(col))]   # per row
    vb_h = (view.height() - 2 * margin - rest_h - sum(tallest)) / rows
    if vb_w <= 1 or vb_h <= 1:
        return
    w, h = (min(vb_w, vb_h * aspect), min(vb_h, vb_w / aspect)) if aspect else (vb_w, vb_h)
    w = max([w] + [p.titleLabel.minimumWidth() for p in titled])   # a word longer than the box
    for p in plots:
        p.setFixedWidth(over_w[p] + w)
        p.setFixedHeight(over_h[p] + h)
        p.vb.setAspectLocked(bool(aspect))   # should a title still widen a box: margins, never stretched cells
    used = _min_size(layout)   # with every plot fixed, the figure's size: centre it
    dx = max(0.0, (view.width() - used.width()) / 2)
    dy = max(0.0, (view.height() - used.height()) / 2)
    layout.setContentsMargins(margin + dx, margin + dy, margin + dx, margin + dy)
    _settle(layout, plots)


class PanelFigure(pg.GraphicsLayoutWidget):
    """A white figure whose image panels keep one size and their cells' aspect as the window resizes
    (`fit_panels`); the owner names the panels with set_panels."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setBackground("w")
        self.panels: tuple = ([], 1, 1, None)
        self.caption = ""   # what an export of this figure says under it (gui.export.write_figure)
        self._fit_timer = QTimer(self)
        self._fit_timer.setSingleShot(True)
        self._fit_timer.timeout.connect(self.fit)

    def set_panels(self, plots: list[pg.PlotItem], cols: int, rows: int, aspect: float | None) -> None:
        self.panels = (list(plots), cols, rows, aspect)
        self.fit()
        self._fit_timer.start(0)   # again once Qt has laid out what changed (new titles, tick labels)

    def fit(self) -> None:
        fit_panels(self, *self.panels)

    def showEvent(self, ev) -> None:
        super().showEvent(ev)
        self._fit_timer.start(0)   # fitted while hidden (another tab on show), it had no size to fit to

    def closeEvent(self, ev) -> None:
        self._fit_timer.stop()   # a figure closed after an export may be deleted before the timer fires
        super().closeEvent(ev)

    def resizeEvent(self, ev) -> None:
        super().resizeEvent(ev)
        if hasattr(self, "_fit_timer"):   # the view resizes once while the base class is still being set up
            self._fit_timer.start(0)      # once Qt has laid out the new size
