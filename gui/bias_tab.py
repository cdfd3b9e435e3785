"""Spatial bias, measured: per-layer border bias for the blank inputs and the dataset mean, the mean
3x3 filter of every convolution (Mind the Pad, Fig. 6b) and each layer's padding arithmetic."""
from __future__ import annotations

import math

import torch
from PyQt6.QtWidgets import QLabel, QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from padlens.core.activations import Activations
from padlens.core.layers import LayerInfo
from padlens.core.spatial_bias import (BORDER_BIAS_HELP, FILTER_ASYMMETRY_HELP, filter_asymmetry, layer_biases,
                               mean_filters, padding_arithmetic)
from padlens.gui.feature_grid import FeatureGrid

COLUMNS = ("Layer", "Type", "Output", "Bias: blank (normalized zeros)", "Bias: blank (black)",
           "Bias: dataset mean", "Mean-filter asymmetry", "Padding arithmetic")


def fmt(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


class SpatialBiasTab(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        for col in (3, 4, 5):
            self.table.horizontalHeaderItem(col).setToolTip(BORDER_BIAS_HELP)
        self.table.horizontalHeaderItem(6).setToolTip(FILTER_ASYMMETRY_HELP)
        self.table.setSortingEnabled(False)
        self.filters = FeatureGrid()
        self.filters.scale_box.setCurrentText("per map")
        self.filters.cmap_box.setCurrentText("CET-D1")
        split = QSplitter()
        split.addWidget(self.table)
        split.addWidget(self.filters)
        split.setSizes([900, 600])
        v = QVBoxLayout(self)
        v.addWidget(self.note)
        v.addWidget(split, 1)
        self.rows: dict[tuple, int] = {}
        self.mean_biases: dict = {}

    def set_model(self, model: torch.nn.Module, layers: list[LayerInfo], blank: dict[str, Activations],
                  input_size: int, padding_mode: str) -> None:
        """blank: {"normalized": acts, "pixel": acts} from the explorer's two blank inputs."""
        biases = {k: layer_biases(a) for k, a in blank.items()}
        filters = mean_filters(model)
        arith = {tuple(r["path"]): r for r in padding_arithmetic(model, input_size)}
        self.table.setRowCount(0)
        self.rows = {}
        for info in layers:
            if info.is_container:
                continue
            r = self.table.rowCount()
            self.table.insertRow(r)
            self.rows[info.path] = r
            ar = arith.get(info.path)
            k = filters.get(info.path)
            cells = (info.name, info.type, "x".join(map(str, info.output_shape)),
                     fmt(biases["normalized"].get(info.path)), fmt(biases["pixel"].get(info.path)), "",
                     fmt(filter_asymmetry(k)) if k is not None else "",
                     (("UNEVEN: " if ar["uneven"] else "") + ar["note"]) if ar else "")
            for c, text in enumerate(cells):
                self.table.setItem(r, c, QTableWidgetItem(text))
        self.table.resizeColumnsToContents()
        self.set_mean_biases(self.mean_biases if self.mean_biases else {})
        if len({tuple(k.shape) for k in filters.values()}) == 1:
            stack = torch.stack(list(filters.values()))
            self.filters.set_maps(stack, f"mean {tuple(stack.shape[1:])} filter of each of {len(filters)} convolutions "
                                         "(per-map scale; click one to enlarge)")
        else:   # never leave the previous model's filters (and caption) on show
            why = ("no mean filters: the model has no convolution" if not filters else
                   "no mean filters: the convolutions' kernels differ in shape (see the table)")
            self.filters.clear(why)
        self.note.setText(f"Padding mode <b>{padding_mode}</b>, input {input_size}x{input_size}. "
                          f"{BORDER_BIAS_HELP} Compute the dataset mean on the Feature maps tab to fill its column. "
                          "Symmetric padding equals replicate for 3x3 kernels with padding 1, so PadLens ships no "
                          "separate symmetric model.")

    def set_mean_biases(self, acts_or_biases) -> None:
        """Fill the dataset-mean column from mean activations (or from biases already computed)."""
        if acts_or_biases and isinstance(next(iter(acts_or_biases.values())), torch.Tensor):
            acts_or_biases = layer_biases(acts_or_biases)
        self.mean_biases = acts_or_biases or {}
        for path, r in self.rows.items():
            self.table.setItem(r, 5, QTableWidgetItem(fmt(self.mean_biases.get(path)) if self.mean_biases else ""))
