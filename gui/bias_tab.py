"""Spatial bias, measured: per-layer border bias for the blank inputs and the dataset mean, the mean
3x3 filter of every convolution (Mind the Pad, Fig. 6b) and each layer's padding arithmetic."""
from __future__ import annotations

import math

import torch
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import (QAbstractItemView, QLabel, QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout,
                             QWidget)

from padlens.core.activations import Activations
from padlens.core.layers import LayerInfo, path_name
from padlens.core.spatial_bias import BORDER_BIAS_HELP, FILTER_ASYMMETRY_HELP, bias_table, mean_filters
from padlens.gui.feature_grid import FeatureGrid

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
