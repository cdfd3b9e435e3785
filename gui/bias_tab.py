"""Spatial bias, measured: per-layer border bias for the blank inputs and the dataset mean, the mean
3x3 filter of every convolution (Mind the Pad, Fig. 6b) and each layer's padding arithmetic."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import (QAbstractItemView, QLabel, QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout,
                             QWidget)

from padlens.core.activations import Activations
from padlens.core.layers import LayerInfo, path_name
from padlens.core.spatial_bias import BORDER_BIAS_HELP, FILTER_ASYMMETRY_HELP, bias_table, mean_filters
from padlens.gui.export import write_offscreen
from padlens.gui.feature_grid import FeatureGrid
from padlens.gui.style import figure_caption

COLUMNS = ("Layer", "Type", "Output", "Bias\nblank\n(norm. zeros)", "Bias\nblank\n(black)",
           "Bias\ndataset\nmean", "Mean-filter\nasymmetry", "Padding")   # headers wrapped: no sideways scrolling
COLUMN_TIPS = {3: "Border bias of the channel-mean map for the blank input that is all zeros after normalization "
                  "(the data set's mean colour).\n\n" + BORDER_BIAS_HELP,
               4: "Border bias for the black input (all zeros before normalization).\n\n" + BORDER_BIAS_HELP,
               5: "Border bias for the dataset mean (compute it on the Feature maps tab).\n\n" + BORDER_BIAS_HELP,
               6: FILTER_ASYMMETRY_HELP,
               7: "Padding arithmetic at this input size: UNEVEN when the layer drops or pads rows or columns on one "
                  "side only (hover a cell for the sizes)"}


def fmt(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


class SpatialBiasTab(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        for col, tip in COLUMN_TIPS.items():
            self.table.horizontalHeaderItem(col).setToolTip(tip)
        self.table.setSortingEnabled(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.filters = FeatureGrid(gap=3)   # room under each filter for its layer's name
        self.filters.scale_box.setCurrentText("per map")
        self.filters.cmap_box.setCurrentText("CET-D1")
        split = QSplitter()
        split.addWidget(self.table)
        split.addWidget(self.filters)
        split.setChildrenCollapsible(False)
        split.setStretchFactor(1, 1)
        self.split = split
        v = QVBoxLayout(self)
        v.addWidget(self.note)
        v.addWidget(split, 1)
        self.rows: dict[tuple, int] = {}
        self.mean_biases: dict = {}

    def set_model(self, model: torch.nn.Module, layers: list[LayerInfo], blank: dict[str, Activations],
                  input_size: int, padding_mode: str) -> None:
        """blank: {"normalized": acts, "pixel": acts} from the explorer's two blank inputs."""
        self.table_model = (model, input_size)   # set_mean_biases measures the mean activations with it
        shapes = {info.path: info.output_shape for info in layers}
        filters = mean_filters(model)
        self.table.setRowCount(0)
        self.rows = {}
        for x in bias_table(model, blank, input_size):
            r = self.table.rowCount()
            self.table.insertRow(r)
            self.rows[x["path"]] = r
            padding = "UNEVEN" if x["uneven"] else "even" if x["padding_arithmetic"] else ""
            cells = (x["name"], x["type"], "x".join(map(str, shapes.get(x["path"], x["shape"]))),
                     fmt(x["normalized"]), fmt(x["pixel"]), "",
                     fmt(x["filter_asymmetry"]) if x["filter_asymmetry"] is not None else "", padding)
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c == 7 and x["padding_arithmetic"]:
                    item.setToolTip(x["padding_arithmetic"])
                elif c in COLUMN_TIPS:
                    item.setToolTip(COLUMN_TIPS[c])
                if c >= 3:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, c, item)
        self.table.resizeColumnsToContents()
        self._fit_table()
        self.set_mean_biases(self.mean_biases if self.mean_biases else {})
        if len({tuple(k.shape) for k in filters.values()}) == 1:
            stack = torch.stack(list(filters.values()))
            kh, kw = stack.shape[1:]
            self.filters.set_maps(stack, f"mean {kh}x{kw} filter of each of the {len(filters)} convolutions",
                                  [path_name(p) for p in filters])
            self.filters.info.setText(f"Mean {kh}x{kw} filter of each of the {len(filters)} convolutions (averaged "
                                      "over input and output channels); click one to enlarge.")
        else:   # never leave the previous model's filters (and caption) on show
            why = ("no mean filters: the model has no convolution" if not filters else
                   "no mean filters: the convolutions' kernels differ in shape (see the table)")
            self.filters.clear(why)
        self.note.setText(f"Padding mode <b>{padding_mode}</b>, input {input_size}x{input_size}. "
                          f"{BORDER_BIAS_HELP} Compute the dataset mean on the Feature maps tab to fill its column. "
                          "Symmetric padding equals replicate for 3x3 kernels with padding 1, so PadLens ships no "
                          "separate symmetric model.")

    def _fit_table(self) -> None:
        """Wide enough for every column, so nothing needs sideways scrolling; the filters take the rest."""
        header = self.table.horizontalHeader()
        width = header.length() + 2 * self.table.frameWidth() + self.table.verticalScrollBar().sizeHint().width()
        self.table.setMinimumWidth(width)
        self.split.setSizes([width, max(1, self.split.width() - width)])

    def set_mean_biases(self, acts_or_biases) -> None:
        """Fill the dataset-mean column from mean activations (or from biases already computed)."""
        if acts_or_biases and isinstance(next(iter(acts_or_biases.values())), torch.Tensor):
            model, input_size = self.table_model
            acts_or_biases = {x["path"]: x["mean"] for x in bias_table(model, {"mean": acts_or_biases}, input_size)}
        self.mean_biases = acts_or_biases or {}
        for path, r in self.rows.items():
            item = QTableWidgetItem(fmt(self.mean_biases.get(path)) if self.mean_biases else "")
            item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            item.setToolTip(COLUMN_TIPS[5])
            self.table.setItem(r, 5, item)


MAPS_SIZE = (1200, 520)   # figure files' size in screen pixels: a row or two of named tiles


def to_common_size(maps: list, least: int = 24) -> np.ndarray:
    """Maps of different sizes (every layer's) as one [N, S, S'] stack at the largest size (at least `least`
    pixels, a whole multiple of the largest: a 3x3 filter becomes 24x24), each enlarged by repeating its pixels
    (nearest, no smoothing: the border rows stay rows), so one mosaic holds them all with room for their names."""
    arrays = [np.asarray(m.float() if isinstance(m, torch.Tensor) else m, np.float32) for m in maps]
    h, w = max(a.shape[0] for a in arrays), max(a.shape[1] for a in arrays)
    h, w = h * -(-least // h), w * -(-least // w)
    return np.stack([a[np.arange(h) * a.shape[0] // h][:, np.arange(w) * a.shape[1] // w] for a in arrays])


def write_tile_figure(tiles: dict[str, object], paths, title: str, caption: str, cmap: str = "viridis") -> list[Path]:
    """Named 2-D maps (every layer's channel-mean map, every convolution's mean filter) as the Spatial bias tab
    draws its filters: one mosaic, each tile on its own range and named under it, drawn offscreen (the command
    line and the report)."""
    stack = to_common_size(list(tiles.values()))

    def show(grid: FeatureGrid) -> None:
        grid.cmap_box.setCurrentText(cmap)
        grid.set_maps(stack, title, list(tiles))
        grid.grid_widget.caption = caption

    # a gap of half a tile between the tiles holds a readable name under each
    return write_offscreen(lambda: FeatureGrid(gap=stack.shape[1] // 2), MAPS_SIZE, show, paths, "PadLens spatial bias",
                           figure=lambda grid: grid.grid_widget)


def filters_caption(name: str, padding: str) -> str:
    """What an exported figure of the mean filters says under it (the tab's export and the command line's)."""
    return figure_caption(model=name, padding=padding, extra="the mean filter of each convolution, averaged over "
                                                             "its input and output channels; each on its own range")


def write_bias_figures(maps: dict[str, dict[str, object]], filters: dict[str, object], out, name: str, padding: str,
                       inputs: dict[str, str], data: dict[str, str] | None = None, input_size: int = 32,
                       exts=(".png", ".svg")) -> list[Path]:
    """maps_KEY.png/.svg for each input KEY of maps ({key: {layer name: channel-mean map}}, inputs[key] saying
    what the input is, data[key] the data set its images came from; a blank input has none) and
    mean_filters.png/.svg ({conv name: mean kernel}, when there are any of one shape)."""
    data = data or {}
    out = Path(out)
    sized = f" ({input_size}x{input_size})" if input_size != 32 else ""
    written = []
    for key, layer_maps in maps.items():
        what = inputs[key]
        written += write_tile_figure(
            layer_maps, [out / f"maps_{key}{e}" for e in exts], f"{name}: channel-mean map of every layer, {what}",
            figure_caption(model=name, padding=padding, input=what + sized,
                           data=data.get(key, ""),
                           extra="each map on its own range, enlarged to the largest map's size by repeating its "
                                 "pixels; named by layer"))
    if filters and len({tuple(k.shape) for k in filters.values()}) == 1:
        written += write_tile_figure(filters, [out / f"mean_filters{e}" for e in exts],
                                     f"{name}: mean filter of each convolution", filters_caption(name, padding),
                                     cmap="CET-D1")
    return written
