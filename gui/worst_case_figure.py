"""The worst case over shifts as a figure (core.worst_case): beside the per-shift averages of the heatmaps,
how many images some shift within r px flips, and each image's smallest flipping shift.

Left, the share flipped within r = 1..8 as points with 95% Wilson intervals; a radius the grid has no shift
at (odd radii of a step-2 grid, radii past its range) is marked n.a., never drawn as 0, and a share the
grid can only bound from below (it skips shifts within r) is a hollow point. Right, the histogram of each
image's smallest flipping radius with a separate grey bar for the images no grid shift flips.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg

from padlens.core.translation import GridResult
from padlens.core.worst_case import RADII, format_worst_case, worst_case
from padlens.gui.export import write_offscreen
from padlens.gui.figures import grid_caption
from padlens.gui.style import TEXT, PanelFigure, font, jpeg_note, set_label, set_title, style_axis

POINT, NEVER, ABSENT = "#1f5fa8", "#9a9a9a", "#6e6e6e"   # flipped shares and bars; never flipped; n.a.
HEADROOM = 20   # pixels above the highest bar or interval: a count label's height
EXPORT_SIZE = (860, 320)   # screen pixels of an exported figure, whatever the window: 9 x 3.3 in at 300 dpi


def legend(w: dict, na: bool) -> str:
    """The caption's reading guide; hollow points and n.a. are explained where the figure has them."""
    hollow = any(r > w["complete_radius"] for r in w["radii"])
    return ("Left: share of images whose prediction some grid shift within radius r (max(|dx|, |dy|) <= r) flips "
            "away from the unshifted one, with 95% Wilson intervals; in brackets, how many grid shifts lie within r"
            + ("; hollow: a lower bound (the grid skips some shifts within r)" if hollow else "")
            + ("; n.a.: the grid has no shift at that radius" if na else "")
            + ". Right: each image's smallest flipping shift; 'never': no grid shift flips it.")


def grid_radii(r: GridResult) -> np.ndarray:
    """The Chebyshev radii max(|dx|, |dy|) > 0 the grid has a shift at, ascending."""
    dx, dy = np.meshgrid(r.dxs, r.dys)
    cheb = np.maximum(np.abs(dx), np.abs(dy)).astype(int)
    return np.unique(cheb[cheb > 0])


def worst_case_title(r: GridResult, padding: str = "") -> str:
    """What the figure shows, of which model and how many images so far, on screen and in an export."""
    info = r.info
    model = Path(str(info.get("checkpoint", ""))).stem or "model"
    n, asked = 0 if r.flip_radius is None else len(r.flip_radius), info.get("images")
    done = not asked or "precision_reached" in info or n >= int(asked)   # as heatmap_title counts
    images = f"{n} images" if done else f"so far {n} of {int(asked)} images"
    return (f"Worst case over shifts: {model}" + (f" (padding {padding})" if padding else "")
            + f", {info.get('mode', 'affine')} shifts, {images}{jpeg_note(str(info.get('data', '')))}")


def summary_line(w: dict | None) -> str:
    """One line under the figure: the share flipped within the smallest and the largest radius shown, and how
    many images no grid shift flips (format_worst_case has every radius)."""
    if w is None or not w["images"]:
        return format_worst_case(w)[0]
    n, radii = w["images"], w["radii"]
    head = f"Worst case over shifts, {n} images: "
    if not radii:
        return head + f"the grid has no shift within {RADII[-1]} px."
    share = [f"{100 * w['share'][k]:.1f}%" for k in (0, len(radii) - 1)]
    text = f"{share[0]} flipped within {radii[0]} px"
    if len(radii) > 1:
        text += f", {share[1]} within {radii[-1]} px"
    if radii[-1] > (c := w["complete_radius"]):
        text += " (lower bounds" + (f" beyond {c} px" if c else "") + ": the grid skips shifts)"
    never = w["histogram"]["never"]
    return head + text + f"; never flipped: {never} ({100 * never / n:.1f}%)."


def _plot(fig: PanelFigure, col: int, bottom: str, left: str) -> pg.PlotItem:
    """A panel named by its axis labels alone: a title row more would leave the plots no height at 1280x720."""
    plot = fig.addPlot(row=1, col=col)
    plot.hideButtons()
    plot.setMenuEnabled(False)
    plot.setMouseEnabled(False, False)
    for side in ("left", "bottom"):
        style_axis(plot.getAxis(side))
    set_label(plot, "bottom", bottom)
    set_label(plot, "left", left)
    plot.getAxis("left").setWidth(48)
    return plot


def _text(plot: pg.PlotItem, text: str, x: float, y: float, color: str = TEXT) -> pg.TextItem:
    item = pg.TextItem(text, color=color, anchor=(0.5, 1.0))
    item.setFont(font())
    item.setPos(x, y)
    plot.addItem(item)
    return item


def _point(plot: pg.PlotItem, x: float, y: float, hollow: bool) -> pg.TargetItem:
    """A marker drawn at the figure's scale, so a 300 dpi export enlarges it as it does the text (a
    ScatterPlotItem's symbols stay at screen pixels there)."""
    pen = pg.mkPen(POINT, width=2)
    brush = pg.mkBrush("w" if hollow else POINT)
    item = pg.TargetItem((x, y), size=9, symbol="o", pen=pen, brush=brush, hoverPen=pen, hoverBrush=brush,
                         movable=False)
    plot.addItem(item)
    return item


class WorstCaseFigure(PanelFigure):
    """The two panels of the worst case over shifts of one grid (`set_result`), or a message (`show_nothing`).
    `share_points`, `na_radii`, `bars` and `never_bar` hold what is drawn, for a reader of the numbers."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.title = self.addLabel("", row=0, col=0, colspan=2)
        self.share_plot = _plot(self, 0, "radius r, px (in brackets: grid shifts within r)", "flipped (%)")
        self.hist_plot = _plot(self, 1, "each image's smallest flipping shift max(|dx|, |dy|), px", "images")
        self.errors = pg.ErrorBarItem(x=np.zeros(0), y=np.zeros(0), pen=pg.mkPen(TEXT, width=1.5), beam=0.25)
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.7, brush=POINT, pen=pg.mkPen(TEXT, width=0.8))
        self.never_bar = pg.BarGraphItem(x=[], height=[], width=0.7, brush=NEVER, pen=pg.mkPen(TEXT, width=0.8))
        for plot, items in ((self.share_plot, (self.errors,)), (self.hist_plot, (self.bars, self.never_bar))):
            for it in items:
                plot.addItem(it)
        self.labels: list[pg.GraphicsObject] = []   # points, n.a. marks and bar counts of the grid on screen
        self.share_points: dict[int, float] = {}   # radius: share flipped, of the radii the grid has
        self.na_radii: list[int] = []
        self.never_x: float | None = None   # where the bar of the images no grid shift flips stands
        self.share_plot.setXRange(RADII[0] - 0.6, RADII[-1] + 0.6, padding=0)
        self.tops: dict[pg.PlotItem, float] = {}   # the data each panel's y range must show (fit)
        self.set_panels([self.share_plot, self.hist_plot], 2, 1, None)
        self.show_nothing()

    def fit(self) -> None:
        """The panels fitted to the window, then each y range up to its highest bar or interval with room
        in pixels above it for the count labels (a share of the range would cut them off in a low panel)."""
        super().fit()
        for plot, top in self.tops.items():
            room = HEADROOM / max(plot.vb.height(), 2 * HEADROOM)
            plot.setYRange(0, top / (1 - room), padding=0)

    def _clear(self) -> None:
        for plot in (self.share_plot, self.hist_plot):
            for item in self.labels:
                if item in plot.items:
                    plot.removeItem(item)
        self.labels = []
        self.errors.setData(x=np.zeros(0), y=np.zeros(0), top=np.zeros(0), bottom=np.zeros(0))
        self.bars.setOpts(x=[], height=[])
        self.never_bar.setOpts(x=[], height=[])
        self.share_points, self.na_radii, self.never_x = {}, [], None

    def show_nothing(self, message: str = "") -> None:
        """No worst case on screen: the title says why (no grid, or one saved without the per-image record)."""
        self._clear()
        self.caption = ""
        set_title(self.title, message)
        self.share_plot.getAxis("bottom").setTicks([[(r, str(r)) for r in RADII]])
        self.tops = {self.share_plot: 10.0, self.hist_plot: 1.0}
        self.hist_plot.getAxis("bottom").setTicks(None)
        self.fit()

    def set_result(self, r: GridResult, padding: str = "") -> None:
        """The worst case of grid r (partial while it runs); the caption is what an export says under it."""
        w = worst_case(r)
        if w is None:
            self.show_nothing("Worst case over shifts: not recorded in this grid (saved before the per-image "
                              "record); compute the grid again")
            return
        if not w["images"]:
            self.show_nothing(f"{worst_case_title(r, padding)}: no image finished yet")
            return
        self._clear()
        set_title(self.title, worst_case_title(r, padding))
        self._share(w)
        self._histogram(w, grid_radii(r))
        self.caption = f"{legend(w, bool(self.na_radii))} {grid_caption(r, padding)}"
        self.set_panels([self.share_plot, self.hist_plot], 2, 1, None)

    def _share(self, w: dict) -> None:
        radii, share = np.array(w["radii"], dtype=float), 100 * np.array(w["share"])
        low, high = 100 * np.array(w["low"]), 100 * np.array(w["high"])
        lower_bound = radii > w["complete_radius"]
        self.errors.setData(x=radii, y=share, top=high - share, bottom=share - low)
        self.labels += [_point(self.share_plot, x, y, hollow) for x, y, hollow in zip(radii, share, lower_bound)]
        self.share_points = {int(r): float(s) for r, s in zip(w["radii"], w["share"])}
        self.na_radii = [r for r in RADII if r not in self.share_points]
        counts = dict(zip(w["radii"], w["shifts"]))
        self.share_plot.getAxis("bottom").setTicks([[(r, f"{r} ({counts[r]})" if r in counts else str(r))
                                                     for r in RADII]])
        self.labels += [_text(self.share_plot, "n.a.", r, 0, ABSENT) for r in self.na_radii]
        self.tops[self.share_plot] = max(5.0, float(high.max(initial=0)))

    def _histogram(self, w: dict, radii: np.ndarray) -> None:
        h = w["histogram"]
        spacing = float(np.diff(radii).min()) if len(radii) > 1 else 1.0
        never_x = float(radii.max(initial=0)) + 1.5 * spacing
        width = 0.7 * spacing
        self.bars.setOpts(x=np.array(h["radius"], dtype=float), height=np.array(h["images"], dtype=float), width=width)
        self.never_x = never_x
        self.never_bar.setOpts(x=[never_x], height=[float(h["never"])], width=width)
        counts = dict(zip(h["radius"], h["images"]))   # a radius the grid tried and no image first flips at: 0
        self.labels += [_text(self.hist_plot, str(counts.get(int(x), 0)), float(x), counts.get(int(x), 0))
                        for x in radii]
        self.labels.append(_text(self.hist_plot, str(h["never"]), never_x, h["never"]))
        step = max(1, int(np.ceil(len(radii) / 10)))   # no more than ~10 radius ticks: they would run together
        ticks = [(float(r), str(int(r))) for r in radii[::step]] + [(never_x, "never")]
        self.hist_plot.getAxis("bottom").setTicks([ticks])
        self.hist_plot.setXRange(float(radii.min(initial=1)) - spacing, never_x + spacing, padding=0)
        self.tops[self.hist_plot] = float(max([*h["images"], h["never"], 1]))


def write_worst_case_figure(r: GridResult, path, padding: str = "") -> Path:
    """The worst case of grid r as PNG, SVG or PDF (by path's suffix), drawn offscreen at EXPORT_SIZE: the
    window's strip under the heatmaps (a 1280x720 screen leaves it 160 px high) is no shape for a page."""
    return write_offscreen(WorstCaseFigure, EXPORT_SIZE, lambda fig: fig.set_result(r, padding), [path],
                           "PadLens worst case over shifts")[0]
