"""Padding-aware channels panel: a layer's channels ranked by how much more they respond at the border ring than at
the centre (blank input, black image or dataset mean), the top ones' maps and mean filters as one mosaic, and
what zeroing the top k changes: accuracy with intervals, every layer's border bias and the translation grid.

The work is core.channels, run through the JobRunner on copies of the model taken here; rankings and ablations
are kept in memory per model and settings, so going back to earlier settings shows them at once."""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyqtgraph as pg
import torch
from PyQt6.QtCore import QRectF, QSettings, Qt, pyqtSignal
from PyQt6.QtGui import QFont
from PyQt6.QtWidgets import (QAbstractItemView, QComboBox, QFormLayout, QGraphicsSimpleTextItem, QGroupBox,
                             QHBoxLayout, QLabel, QMessageBox, QPushButton, QSplitter, QTableWidget,
                             QTableWidgetItem, QVBoxLayout, QWidget)

from padlens.core.channels import (ABLATION_GRID, ABLATION_HEAD, ABLATION_MODE, DEFAULT_ABLATE, DEFAULT_GRID_IMAGES,
                                   DEFAULT_IMAGES, DEFAULT_INPUT, DEFAULT_MEAN_IMAGES, DEFAULT_TOP, INPUTS,
                                   AblationResult, ChannelScan, LayerChannels, ablation_job, ablation_rows,
                                   ablation_text, ablation_title, channel_cells, channels_title, save_data, scan_job,
                                   summarize)
from padlens.core.data import stratified_subset
from padlens.core.device import PRECISION_CHOICES, describe_precision, resolve_precision
from padlens.core.colormaps import colorize
from padlens.core.files import atomic_csv
from padlens.core.layers import describe_layers
from padlens.core.mosaic import mosaic, tile_at
from padlens.core.session import LoadedModel
from padlens.core.timing import fmt_duration
from padlens.gui.analyses_tab import AnalysisPanel
from padlens.gui.export import FIGURE_FILTERS, ask_save_path, run_export, write_figure, write_offscreen
from padlens.gui.figures import grid_rect, origin_marker, show_origin
from padlens.gui.grid_settings import scroll_column, spin
from padlens.gui.job_bar import JobBar
from padlens.gui.style import (TEXT, PanelFigure, color_bar, figure_caption, font, image_panel, set_label,
                               set_levels, set_title, value_levels, wrap_label)
from padlens.gui.translation_tab import NEEDS_DATA

COLUMNS = ("rank", "channel", "score", "border mean", "centre mean", "filter asym")
GAP = 22   # mosaic pixels between cells (a cell is about 96 wide): room for each cell's label under it
TOP_COLOUR = (255, 236, 200)   # the table rows of the channels Ablate would zero


def diverging_colormap() -> pg.ColorMap:
    """core.colormaps's blue-white-red as a pyqtgraph colour map, so a bar shows the colours the mosaic and the
    difference heatmap are drawn with."""
    t = np.linspace(0, 1, 33)
    return pg.ColorMap(t, colorize(t[None], "diverging", (0, 1))[:, 0].T.numpy())


def layer_choices(loaded: LoadedModel, size: int) -> list[tuple[tuple, str]]:
    """(path, "model[2][6]  GELU  320x8x8") of every leaf layer core.channels ranks: a [C, H, W] output of at least
    3x3 at this input size, in the model's order."""
    return [(i.path, f"{i.name}  {i.type}  {'x'.join(map(str, i.output_shape))}")
            for i in describe_layers(loaded.model, (3, size, size))
            if not i.is_container and len(i.output_shape) == 3 and min(i.output_shape[1:]) >= 3]


def fit_columns(table: QTableWidget) -> None:
    """Columns as wide as their contents, and the table at least as wide as its columns: no column hides behind a
    horizontal scroll bar."""
    table.resizeColumnsToContents()
    width = sum(table.columnWidth(c) for c in range(table.columnCount()))
    table.setMinimumWidth(width + table.verticalScrollBar().sizeHint().width() + 2 * table.frameWidth() + 2)


@dataclass(frozen=True)
class PanelState:
    """What the status line describes; the line is a function of it."""
    has_model: bool
    has_data: bool
    needs_data: bool           # the input is the dataset mean
    running: str               # "", "scan" or "ablation": the job running
    current: bool              # that job computes what the panel is set to
    ranked: str                # the ranked layer's label, "" before its ranking
    input: str
    mean_images: int
    ablation: AblationResult | None
    k: int
    event: str = ""            # how the last job of these settings ended: done, cancelled, failed: ...
    message: str = ""
    seconds: float | None = None


def panel_status(s: PanelState) -> str:
    if not s.has_model:
        return "No model is open."
    if s.needs_data and not s.has_data:
        return NEEDS_DATA
    if s.running and not s.current:
        return "Computing for earlier settings (Cancel stops it); these are not computed yet."
    if s.running == "scan":
        return f"Ranking the channels: {s.message or 'starting'}."
    if s.running == "ablation":
        return f"Ablating: {s.message or 'starting'}."
    if s.event.startswith("Failed"):
        return s.event
    if not s.ranked:
        return ("Ranking cancelled: Rank computes it." if s.event == "cancelled" else
                "Not ranked for these settings yet: Rank computes it.")
    on = f"the {s.input} input" + (f" ({s.mean_images} images)" if s.input == "mean" else "")
    a = s.ablation
    if a is None:
        return (f"Ranked on {on}: {s.ranked}. " + (f"Ablate zeroes the top {s.k}." if s.has_data else
                                                  "Ablating needs the CIFAR-10 test split."))
    if a.complete:
        took = f" in {fmt_duration(s.seconds)}" if s.event == "done" and s.seconds else " (kept from an earlier run)"
        return f"Done{took}: the top {len(a.channels)} of {a.layer} zeroed, accuracy on {a.evaluated} images."
    return f"Cancelled: accuracy on {a.evaluated} of {a.images} images" + (
        "" if a.grids[1] is not None else ", no grid after") + "."


class ChannelMosaic(PanelFigure):
    """The top channels of a layer as one RGB mosaic image: each cell its map (viridis, its own range) above its
    mean filter (blue-white-red, its own range), its channel number and score under it; two colour bars say what
    the colours mean. Clicking a cell emits its channel."""
    channelClicked = pyqtSignal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.title = self.addLabel("", row=0, col=0, colspan=3)
        self.plot, self.image = image_panel(self, 1, 0)
        for side in ("left", "bottom"):
            self.plot.hideAxis(side)
        self.map_bar = color_bar("viridis", label="map (each its own range)")
        self.filter_bar = color_bar("viridis", label="mean filter (each its own range)")
        self.filter_bar.setColorMap(diverging_colormap())
        for bar, ticks in ((self.map_bar, [(0.0, "min"), (1.0, "max")]),
                           (self.filter_bar, [(0.0, "-max |w|"), (0.5, "0"), (1.0, "+max |w|")])):
            bar.axis.setTicks([ticks])
            set_levels(bar, (0, 1))
        self.addItem(self.map_bar, row=1, col=1)
        self.addItem(self.filter_bar, row=1, col=2)
        self.labels: list[QGraphicsSimpleTextItem] = []
        self.channels: list[int] = []
        self.cell = (0, 0, 0, 0)   # cell height, width, rows, cols
        self.scene().sigMouseClicked.connect(self._clicked)

    def show_channels(self, lc: LayerChannels, channels: list[int], title: str) -> None:
        cells = np.stack([c.permute(1, 2, 0).numpy() for c in channel_cells(lc, channels)]).astype(np.float32) / 255
        planes = [mosaic(cells[..., k], GAP, 1.0) for k in range(3)]
        rgb = np.rint(np.stack([p[0] for p in planes], -1) * 255).astype(np.uint8)
        _, rows, cols = planes[0]
        h, w = cells.shape[1:3]
        self.channels, self.cell = list(channels), (h, w, rows, cols)
        self.image.setImage(rgb, autoLevels=False, levels=(0, 255))
        self.image.setRect(QRectF(0, 0, rgb.shape[1], rgb.shape[0]))
        for item in self.labels:
            self.plot.vb.removeItem(item)
        self.labels = []
        for k, c in enumerate(channels):
            r, q = divmod(k, cols)
            item = QGraphicsSimpleTextItem(f"{c}: {lc.score[c]:+.2f}")
            item.setFont(font())
            item.setBrush(pg.mkBrush(TEXT))
            br = item.boundingRect()
            s = min(0.8 * GAP / br.height(), 0.95 * (w + GAP) / br.width())
            item.setScale(s)
            item.setPos(q * (w + GAP) + w / 2 - br.width() * s / 2, r * (h + GAP) + h + (GAP - br.height() * s) / 2)
            self.plot.vb.addItem(item)
            self.labels.append(item)
        view = QRectF(0, 0, rgb.shape[1], rgb.shape[0] + GAP)
        self.plot.vb.setRange(view, padding=0)
        set_title(self.title, title, "under each cell: channel and score")
        self.set_panels([self.plot], 1, 1, view.width() / view.height())

    def show_nothing(self, message: str) -> None:
        self.image.clear()
        for item in self.labels:
            self.plot.vb.removeItem(item)
        self.labels, self.channels = [], []
        set_title(self.title, message)

    def _clicked(self, ev) -> None:
        if not self.channels:
            return
        p = self.image.mapFromScene(ev.scenePos())
        h, w, rows, cols = self.cell
        hit = tile_at(p.y(), p.x(), h, w, rows, cols, len(self.channels), GAP)
        if hit:
            self.channelClicked.emit(self.channels[hit[0]])


class AblationFigure(PanelFigure):
    """The translation grid's accuracy before and after zeroing, and after - before (blue: fell, red: rose), each a
    heatmap over (dx, dy) with the (0, 0) marker; one bar over both accuracies' range, a symmetric one for the
    change."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.title = self.addLabel("", row=0, col=0, colspan=5)
        self.plots, self.images, self.markers = [], [], []
        for col, what in enumerate(("accuracy before", "accuracy after", "after - before")):
            plot, img = image_panel(self, 1, col if col < 2 else 3, what)
            set_label(plot, "bottom", "dx (px, + = right)")
            set_label(plot, "left", "dy (px, + = down)")
            marker = origin_marker()
            plot.addItem(marker)
            self.plots.append(plot)
            self.images.append(img)
            self.markers.append(marker)
        self.acc_bar = color_bar("viridis", label="accuracy (range of both)")
        self.acc_bar.setImageItem(self.images[:2])
        self.diff_bar = color_bar("viridis", label="after - before")
        self.diff_bar.setColorMap(diverging_colormap())
        self.diff_bar.setImageItem(self.images[2])
        self.addItem(self.acc_bar, row=1, col=2)
        self.addItem(self.diff_bar, row=1, col=4)
        self.set_panels(self.plots, 3, 1, 1.0)   # fitted to the window from the start, not only once shown

    def _show_axes(self, shown: bool) -> None:
        """Empty axes say nothing: until an ablation, only the title (which says why)."""
        for item in [*self.plots, self.acc_bar, self.diff_bar]:
            item.setVisible(shown)
        if not shown:   # no panels to fit: the title wraps at the figure's width, not at an old panel's
            wrap_label(self.title, max(120, self.viewport().width() - 16))

    def show_result(self, result: AblationResult, title: str) -> None:
        before, after = result.grids
        diff = result.grid_difference
        set_title(self.title, title)
        self._show_axes(True)
        for k, (grid, values) in enumerate(((before, before.accuracy), (after, after.accuracy), (before, diff))):
            self.images[k].setImage(values, autoLevels=False)
            self.images[k].setRect(grid_rect(grid))
            self.plots[k].vb.setRange(grid_rect(grid), padding=0)
            show_origin(self.markers[k], grid)
        set_levels(self.acc_bar, value_levels([before.accuracy, after.accuracy]))
        m = float(np.nanmax(np.abs(diff))) if np.isfinite(diff).any() else 0.0
        set_levels(self.diff_bar, (-max(m, 0.01), max(m, 0.01)))
        rect = grid_rect(before)
        self.set_panels(self.plots, 3, 1, rect.width() / rect.height())

    def show_nothing(self, message: str) -> None:
        set_title(self.title, message)
        self._show_axes(False)
        for img, marker in zip(self.images, self.markers):
            img.clear()
            show_origin(marker, None)


def mosaic_caption(name: str, padding: str, scan: ChannelScan, kind: str, lc: LayerChannels) -> str:
    """What an exported mosaic says under it: model, layer, input (with its image count and data for the mean)."""
    size = int(scan.info.get("input_size", 32))
    return figure_caption(
        model=name, padding=padding, layer=f"{lc.name} ({lc.type})",
        input=INPUTS[kind] + (f" ({size}x{size})" if size != 32 else ""),
        data=str(scan.info.get("data", "")) if kind == "mean" else "",
        images=scan.info.get("mean_images") if kind == "mean" else None,
        extra=("channels ranked by the signed border bias of their own maps; each cell: its map (own range) "
               "above its mean filter" + (f" (of {lc.conv})" if lc.conv else "")))


def ablation_caption(name: str, padding: str, a: AblationResult, device) -> str:
    """What an exported ablation figure says under it: the grid, the channels zeroed and the precision."""
    g = a.grids[0]
    return figure_caption(
        model=name, padding=padding, layer=f"{a.layer} ({a.type})",
        input=f"CIFAR-10 test images, {ABLATION_MODE} shifts dx {int(g.dxs[0]):+d} to {int(g.dxs[-1]):+d}, dy "
              f"{int(g.dys[0]):+d} to {int(g.dys[-1]):+d}",
        data=str(a.info.get("data", "")), images=min(x.images for x in a.grids),
        extra=f"channels {a.channels} zeroed (the top {len(a.channels)} on the {a.input} input); "
              f"{describe_precision(a.info['precision'], device)}")


MOSAIC_SIZE, ABLATION_SIZE = (1100, 700), (1500, 520)   # figure files' sizes in screen pixels


def write_channel_figures(scan: ChannelScan, kind: str, layer, top: int, name: str, padding: str, out,
                          ablation: AblationResult | None = None, device=None, stem: str = "channels",
                          exts=(".png", ".svg")) -> list[Path]:
    """The panel's figures as files, drawn offscreen (the command line and the report): stem.png/.svg, the top
    channels of layer on input kind; with an ablation that has its grid, stem_ablation.png/.svg."""
    out, lc = Path(out), scan.layer(kind, layer)

    def mosaic(fig: ChannelMosaic) -> None:
        fig.show_channels(lc, lc.top(top), channels_title(name, scan, kind, lc, top))
        fig.caption = mosaic_caption(name, padding, scan, kind, lc)

    written = write_offscreen(ChannelMosaic, MOSAIC_SIZE, mosaic, [out / f"{stem}{e}" for e in exts],
                              "PadLens padding-aware channels")
    if ablation is not None and ablation.grid_difference is not None:
        def grid(fig: AblationFigure) -> None:
            fig.show_result(ablation, ablation_title(name, ablation))
            fig.caption = ablation_caption(name, padding, ablation, device or torch.device("cpu"))
        written += write_offscreen(AblationFigure, ABLATION_SIZE, grid, [out / f"{stem}_ablation{e}" for e in exts],
                                   "PadLens channel ablation")
    return written


class ChannelsPanel(AnalysisPanel):
    def __init__(self, settings: QSettings, device, parent=None):
        super().__init__(settings, device, parent)
        self.scans: dict[tuple, ChannelScan] = {}
        self.ablations: dict[tuple, AblationResult] = {}   # complete and partial, per settings
        self.job: tuple[str, tuple] = ("", ())   # what the running (or last) job computes, and its key
        self.tried: set[tuple] = set()   # rankings started on their own once: after a cancel, Rank starts them

        self.input_box = QComboBox()
        for k, text in INPUTS.items():
            self.input_box.addItem(text.split(",")[0], k)
            self.input_box.setItemData(self.input_box.count() - 1, text, Qt.ItemDataRole.ToolTipRole)
        self.mean_images = spin(1, 10000, DEFAULT_MEAN_IMAGES)
        self.mean_images.setToolTip("Test images averaged for the dataset mean, balanced over the classes")
        self.layer_box = QComboBox()
        self.layer_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.layer_box.setMinimumContentsLength(len("model[3][4]  Conv2d  320x4x4"))   # a conv's name is not cut
        self.layer_box.setToolTip("The layer whose channels are ranked and ablated: path, type, channels x H x W")
        self.top = spin(1, 64, DEFAULT_TOP)
        self.top.setToolTip("Channels in the mosaic")
        self.rank_btn = QPushButton("Rank")
        self.rank_btn.setToolTip("Rank every layer's channels on this input (runs by itself when a setting changes)")
        rank_form = QFormLayout()
        rank_form.addRow("Input", self.input_box)
        rank_form.addRow("Mean over", self.mean_images)
        rank_form.addRow("Layer", self.layer_box)
        rank_form.addRow("Show top", self.top)
        rank_form.addRow(self.rank_btn)
        rank_box = QGroupBox("Rank channels")
        rank_box.setLayout(rank_form)

        self.k = spin(1, 64, DEFAULT_ABLATE)
        self.k.setToolTip("How many of the top channels to zero")
        self.images = spin(1, 10000, DEFAULT_IMAGES)
        self.images.setToolTip("Test images for the accuracy before and after, balanced over the classes")
        self.grid_images = spin(0, 10000, DEFAULT_GRID_IMAGES)
        g = ABLATION_GRID
        self.grid_images.setToolTip(f"Test images for the translation grid before and after ({ABLATION_MODE} shifts "
                                    f"{g.x_min} to {g.x_max}, step {g.step}); 0: no grid")
        self.seed = spin(0, 10_000, 0)
        self.precision = QComboBox()
        self.precision.addItems(PRECISION_CHOICES)
        self.precision.setToolTip(f"auto: here {describe_precision(resolve_precision('auto', device), device)}")
        self.ablate_btn, self.cancel_btn = QPushButton("Ablate top k"), QPushButton("Cancel")
        self.ablate_btn.setToolTip("Zero the top k channels of the layer in a copy of the model and measure again")
        self.cancel_btn.setEnabled(False)
        ab_form = QFormLayout()
        ab_form.addRow("k", self.k)
        ab_form.addRow("Accuracy images", self.images)
        ab_form.addRow("Grid images", self.grid_images)
        ab_form.addRow("Seed", self.seed)
        ab_form.addRow("Precision", self.precision)
        buttons = QHBoxLayout()
        buttons.addWidget(self.ablate_btn)
        buttons.addWidget(self.cancel_btn)
        ab_form.addRow(buttons)
        ab_box = QGroupBox("Ablate")
        ab_box.setLayout(ab_form)

        self.bar = JobBar()
        self.status = QLabel("No model is open.")
        self.status.setWordWrap(True)
        self.export_btn = QPushButton("Export figure...")
        self.export_ablation_btn = QPushButton("Export ablation figure...")
        self.save_btn = QPushButton("Save data...")
        about = QLabel("Score: the signed border bias of the channel's own map, (mean of the border ring - mean of the "
                       "centre) / RMS of the map; positive where it responds more at the border. Ablate zeroes the "
                       "top k channels' outputs in a copy of the model.")
        about.setWordWrap(True)
        left = QWidget()
        lv = QVBoxLayout(left)
        for w in (rank_box, ab_box, self.bar, self.status, self.export_btn, self.export_ablation_btn, self.save_btn,
                  about):
            lv.addWidget(w)
        lv.addStretch(1)

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.mosaic = ChannelMosaic()
        self.result_text = QLabel("")
        self.result_text.setWordWrap(True)
        self.result_text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.bias_table = QTableWidget(0, 3)
        self.bias_table.setHorizontalHeaderLabels(("layer", "border bias before", "after"))
        self.bias_table.verticalHeader().setVisible(False)
        self.bias_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        fit_columns(self.bias_table)   # its headers in full before the first ablation fills it
        self.ablation_figure = AblationFigure()
        top = QSplitter()
        top.addWidget(self.table)
        top.addWidget(self.mosaic)
        top.setStretchFactor(1, 3)
        bottom = QSplitter()
        bottom.addWidget(self.bias_table)
        bottom.addWidget(self.ablation_figure)
        bottom.setStretchFactor(1, 3)
        lower = QWidget()
        low = QVBoxLayout(lower)
        low.setContentsMargins(0, 0, 0, 0)
        low.addWidget(self.result_text)
        low.addWidget(bottom, 1)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(top)
        right.addWidget(lower)
        split = QSplitter()
        split.addWidget(scroll_column(left))
        split.addWidget(right)
        split.setChildrenCollapsible(False)
        split.setStretchFactor(1, 3)
        QHBoxLayout(self).addWidget(split)

        self._restore()
        self.rank_btn.clicked.connect(lambda: self.start_scan(explicit=True))
        self.ablate_btn.clicked.connect(self.start_ablation)
        self.cancel_btn.clicked.connect(self.cancel)
        self.export_btn.clicked.connect(self.export_figure)
        self.export_ablation_btn.clicked.connect(self.export_ablation_figure)
        self.save_btn.clicked.connect(self.save_data)
        self.mosaic.channelClicked.connect(self.select_channel)
        self.runner.idle.connect(self._refresh)   # running is False again: the status says how it ended
        self.input_box.currentIndexChanged.connect(self._settings_changed)
        self.layer_box.currentIndexChanged.connect(self._settings_changed)
        self.precision.currentTextChanged.connect(self._settings_changed)
        for w in (self.mean_images, self.top, self.k, self.images, self.grid_images, self.seed):
            w.valueChanged.connect(self._settings_changed)
        self._refresh()

    # ---- inputs --------------------------------------------------------------------------------
    def set_model(self, loaded: LoadedModel, input_size: int) -> None:
        """The model and the input size it runs at; a job of the previous model is cancelled (what it finished
        stays in memory)."""
        self.runner.cancel()
        self.loaded, self.input_size = loaded, input_size
        self._fill_layers()
        self._refresh()

    def set_input_size(self, size: int) -> None:
        if size != self.input_size:
            self.runner.cancel()
            self.input_size = size
            self._fill_layers()
        self._refresh()

    # ---- what the settings ask for -------------------------------------------------------------
    def _fill_layers(self) -> None:
        """The layer picker for the model at the input size, keeping the layer chosen (else the last convolution)."""
        saved = self.settings.value("ch_layer", "") if self.settings is not None else ""
        keep = self.layer_box.currentText().split("  ")[0] or str(saved)
        choices = layer_choices(self.loaded, self.input_size)
        self.layer_box.blockSignals(True)
        self.layer_box.clear()
        for path, text in choices:
            self.layer_box.addItem(text, path)
        names = [t.split("  ")[0] for _, t in choices]
        convs = [i for i, (_, t) in enumerate(choices) if t.split("  ")[1] == "Conv2d"]
        self.layer_box.setCurrentIndex(names.index(keep) if keep in names else (convs or [len(names) - 1])[-1])
        self.layer_box.blockSignals(False)

    def kind(self) -> str:
        return self.input_box.currentData()

    def scan_key(self) -> tuple | None:
        """What decides a ranking: the model, the input size and the input (for the dataset mean: the data, the
        images and the seed); None while it cannot be computed."""
        if self.loaded is None or (self.kind() == "mean" and self.data is None):
            return None
        own = self.loaded.cache_id or f"model {id(self.loaded.model)}"
        mean = (self.data.fingerprint, self.mean_images.value(), self.seed.value()) if self.kind() == "mean" else ()
        return (own, self.input_size, self.kind(), *mean)

    def ablation_key(self) -> tuple | None:
        scan_key, path = self.scan_key(), self.layer_box.currentData()
        if scan_key is None or self.data is None or path is None:
            return None
        return (*scan_key, tuple(path), self.k.value(), self.images.value(), self.grid_images.value(),
                self.seed.value(), self.precision.currentText(), self.data.fingerprint, str(self.device))

    def scan(self) -> ChannelScan | None:
        return self.scans.get(self.scan_key())

    def layer(self) -> LayerChannels | None:
        scan, path = self.scan(), self.layer_box.currentData()
        if scan is None or path is None or tuple(path) not in scan.inputs.get(self.kind(), {}):
            return None
        return scan.layer(self.kind(), path)

    def ablation(self) -> AblationResult | None:
        return self.ablations.get(self.ablation_key())

    def _state(self) -> PanelState:
        lc = self.layer()
        kind, key = self.job
        current = key == (self.scan_key() if kind == "scan" else self.ablation_key())
        running = kind if self.runner.running else ""
        return PanelState(self.loaded is not None, self.data is not None, self.kind() == "mean", running, current,
                          lc.label if lc is not None else "", self.kind(), self.mean_images.value(), self.ablation(),
                          self.k.value(), self.event if current else "", self.message, self.seconds)

    # ---- running -------------------------------------------------------------------------------
    def start_scan(self, explicit: bool = False) -> None:
        """Rank every layer's channels on the chosen input; on its own (not explicit) once per settings."""
        key = self.scan_key()
        if key is None or self.runner.running or key in self.scans or (not explicit and key in self.tried):
            return
        self.tried.add(key)
        kind, size, device = self.kind(), self.input_size, self.device
        images = (self.data.images[stratified_subset(self.data.labels, self.mean_images.value(), self.seed.value())]
                  if kind == "mean" else None)
        model = copy.deepcopy(self.loaded.model).eval()   # the explorer runs its own forward passes meanwhile
        norm, info = self.loaded.norm, {"model": self.loaded.name, "data": self.data.source if self.data else ""}

        def job(stop):
            return (yield from scan_job(model, norm, images, (kind,), device, size, info, stop))

        def done(scan: ChannelScan) -> None:
            if kind in scan.inputs:
                self.scans[key] = scan
        self._start("scan", key, job, done)

    def start_ablation(self) -> None:
        lc, key = self.layer(), self.ablation_key()
        if lc is None or key is None or self.runner.running:
            return
        if key in self.ablations and self.ablations[key].complete:
            self.job, self.event = ("ablation", key), ""
            self._refresh()
            return
        try:
            precision = resolve_precision(self.precision.currentText(), self.device)
        except ValueError as e:
            self.job, self.event = ("ablation", key), f"Failed: {e}"
            self._refresh()
            return
        own = self.loaded
        loaded = LoadedModel(copy.deepcopy(own.model).eval(), own.norm, own.name, own.meta, own.classes, own.cache_id)
        data, channels, kind, size = self.data, lc.top(self.k.value()), self.kind(), self.input_size
        settings = (self.images.value(), self.grid_images.value(), self.seed.value(), self.mean_images.value())

        def job(stop):
            images, grid, seed, mean = settings
            return (yield from ablation_job(loaded, data, lc.path, channels, kind, images, grid, precision=precision,
                                            input_size=size, seed=seed, mean_images=mean, should_stop=stop))

        def done(result: AblationResult) -> None:
            self.ablations[key] = result
        self._start("ablation", key, job, done, partial=done)

    def _start(self, kind: str, key: tuple, job, done, partial=None) -> None:
        self.job, self.event, self.message, self.seconds = (kind, key), "", "", None
        self.bar.start()
        self.cancel_btn.setEnabled(True)

        def finish(value, event: str) -> None:
            if value is not None:
                done(value)
            self.event = event
            if event == "done":
                self.seconds = self.bar.elapsed
                self.bar.finish()
            else:
                self.bar.cancelled()

        def failed(msg: str) -> None:
            self.event = f"Failed: {msg}"
            QMessageBox.warning(self, "Padding-aware channels failed", msg)

        def finished() -> None:
            self.cancel_btn.setEnabled(False)
            self.message = ""

        self.runner.start(job, on_progress=self._progress, on_partial=lambda v: (partial(v), self._refresh())
                          if partial else None, on_result=lambda v: finish(v, "done"),
                          on_cancelled=lambda v: finish(v, "cancelled"), on_error=failed, on_finished=finished)
        self._refresh()

    def _progress(self, done: int, total: int, msg: str) -> None:
        self.bar.progress(done, total)
        self.message = msg
        self.status.setText(panel_status(self._state()))

    # ---- showing -------------------------------------------------------------------------------
    def showEvent(self, ev) -> None:
        super().showEvent(ev)
        self._refresh()

    def _settings_changed(self, *_) -> None:
        self._save()
        self._refresh()

    def _refresh(self) -> None:
        """The status line, the table, the mosaic and the ablation of the current settings, from the state they
        describe; a ranking the settings need and nothing has computed yet starts, once the panel is on screen (a
        model opened in another tab costs no ranking)."""
        if not self.runner.running and self.isVisible():
            self.start_scan()
        state = self._state()
        self.status.setText(panel_status(state))
        self.mean_images.setEnabled(self.kind() == "mean")
        self.rank_btn.setEnabled(not self.runner.running and self.scan_key() is not None and self.scan() is None)
        lc = self.layer()
        self.ablate_btn.setEnabled(not self.runner.running and lc is not None and self.data is not None)
        self.ablate_btn.setText(f"Ablate top {self.k.value()}")
        self.export_btn.setEnabled(lc is not None)
        self.save_btn.setEnabled(lc is not None)
        self._show_layer(lc, state)
        self._show_ablation(self.ablation(), state)

    def _show_layer(self, lc: LayerChannels | None, state: PanelState) -> None:
        if lc is None:
            self.table.setRowCount(0)
            self.mosaic.show_nothing(self.status.text())
            self.mosaic.caption = ""
            return
        k = self.k.value()
        self.table.setRowCount(len(lc.score))
        for r, c in enumerate(lc.ranking):
            texts = (str(r + 1), str(c), f"{lc.score[c]:+.3f}", f"{lc.border[c]:.4g}", f"{lc.centre[c]:.4g}",
                     "n/a" if not np.isfinite(lc.asymmetry[c]) else f"{lc.asymmetry[c]:.3f}")
            for col, text in enumerate(texts):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, int(c))
                if r < k:
                    item.setBackground(pg.mkColor(TOP_COLOUR))
                self.table.setItem(r, col, item)
        fit_columns(self.table)
        self.table.setToolTip(f"Highlighted: the top {k}, which Ablate zeroes")
        self.mosaic.show_channels(lc, lc.top(self.top.value()),
                                  channels_title(self.loaded.name, self.scan(), self.kind(), lc, self.top.value()))
        self.mosaic.caption = mosaic_caption(self.loaded.name, self.loaded.padding_mode, self.scan(), self.kind(), lc)

    def _show_ablation(self, a: AblationResult | None, state: PanelState) -> None:
        enabled = a is not None and a.grid_difference is not None
        self.export_ablation_btn.setEnabled(enabled)
        if a is None:
            self.result_text.setText("")
            self.bias_table.setRowCount(0)
            self.ablation_figure.show_nothing("Ablate top k: accuracy, border bias and the translation grid, before "
                                              "and after zeroing the layer's top channels")
            self.ablation_figure.caption = ""
            return
        s = summarize(a)
        lines = ablation_text(s) if a.evaluated else [f"zeroing channels {a.channels} of {a.layer}: no accuracy yet"]
        self.result_text.setText("<br>".join(line.strip() for line in lines))
        self.bias_table.setRowCount(len(a.bias_layers))
        bold = QFont(self.bias_table.font())
        bold.setBold(True)
        for r, (name, b, x) in enumerate(zip(a.bias_layers, a.bias_before, a.bias_after)):
            for col, text in enumerate((name, f"{b:.3f}", f"{x:.3f}")):
                item = QTableWidgetItem(text)
                if name == a.layer:
                    item.setFont(bold)
                self.bias_table.setItem(r, col, item)
        fit_columns(self.bias_table)
        self.bias_table.setToolTip(f"Border bias of every layer on the {a.input} input (bold: the ablated layer)")
        if enabled:
            self.ablation_figure.show_result(a, ablation_title(self.loaded.name, a))
            self.ablation_figure.caption = ablation_caption(self.loaded.name, self.loaded.padding_mode, a, self.device)
        else:
            self.ablation_figure.show_nothing("No translation grid yet" if a.info.get("grid_images") else
                                              "No translation grid (grid images 0)")
            self.ablation_figure.caption = ""

    def select_channel(self, c: int) -> None:
        """The table row of channel c, as a click on its mosaic cell asks."""
        for r in range(self.table.rowCount()):
            if self.table.item(r, 1).data(Qt.ItemDataRole.UserRole) == c:
                self.table.selectRow(r)
                self.table.scrollToItem(self.table.item(r, 0))
                return

    # ---- export and settings -------------------------------------------------------------------
    def export_figure(self) -> Path | None:
        """The mosaic on screen as PNG (300 dpi), SVG or PDF; the path written, else None."""
        lc = self.layer()
        if lc is None:
            return None
        path = ask_save_path(self, self.settings, "Export padding-aware channels", "channels.png", FIGURE_FILTERS)
        if path and run_export(self, path, lambda: write_figure(self.mosaic.scene(), path,
                                                                "PadLens padding-aware channels", self.mosaic.caption)):
            return path
        return None

    def export_ablation_figure(self) -> Path | None:
        a = self.ablation()
        if a is None or a.grid_difference is None:
            return None
        path = ask_save_path(self, self.settings, "Export ablation heatmaps", "channels_ablation.png", FIGURE_FILTERS)
        if path and run_export(self, path, lambda: write_figure(self.ablation_figure.scene(), path,
                                                                "PadLens channel ablation",
                                                                self.ablation_figure.caption)):
            return path
        return None

    def save_data(self) -> Path | None:
        """The ranking of every layer as CSV (with the ablation beside it, NAME_ablation.csv) or everything as NPZ;
        the path written, else None."""
        scan, lc = self.scan(), self.layer()
        if scan is None or lc is None:
            return None
        a = self.ablation()
        path = ask_save_path(self, self.settings, "Save padding-aware channels", "channels.csv",
                             "CSV (*.csv);;NumPy archive (*.npz)")

        def write():
            save_data(path, scan, lc.path, a)
            if a is not None and path.suffix.lower() == ".csv":
                atomic_csv(path.with_name(f"{path.stem}_ablation.csv"), [ABLATION_HEAD, *ablation_rows(a)])
        if path and run_export(self, path, write):
            return path
        return None

    def _save(self) -> None:
        s = self.settings
        if s is None:
            return
        for key, val in (("input", self.kind()), ("mean_images", self.mean_images.value()), ("top", self.top.value()),
                         ("k", self.k.value()), ("images", self.images.value()),
                         ("grid_images", self.grid_images.value()), ("seed", self.seed.value()),
                         ("precision", self.precision.currentText()),
                         ("layer", self.layer_box.currentText().split("  ")[0])):
            s.setValue(f"ch_{key}", val)

    def _restore(self) -> None:
        s = self.settings
        if s is None:
            return
        self.input_box.setCurrentIndex(max(0, self.input_box.findData(str(s.value("ch_input", DEFAULT_INPUT)))))
        for box, key, default in ((self.mean_images, "mean_images", DEFAULT_MEAN_IMAGES),
                                  (self.top, "top", DEFAULT_TOP), (self.k, "k", DEFAULT_ABLATE),
                                  (self.images, "images", DEFAULT_IMAGES),
                                  (self.grid_images, "grid_images", DEFAULT_GRID_IMAGES), (self.seed, "seed", 0)):
            box.setValue(int(s.value(f"ch_{key}", default)))
        self.precision.setCurrentText(str(s.value("ch_precision", "auto")))
