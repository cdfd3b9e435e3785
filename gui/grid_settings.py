"""The translation-grid controls (range, step, images, shift mode, precision) shared by the tabs."""
from __future__ import annotations

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QComboBox, QFormLayout, QHBoxLayout, QLabel, QSpinBox

from core.shifts import SHIFT_MODES
from core.translation import GridSpec


def spin(lo, hi, value, suffix="") -> QSpinBox:
    s = QSpinBox()
    s.setRange(lo, hi)
    s.setValue(value)
    s.setSuffix(suffix)
    return s


class GridSettings:
    """Builds the controls and a form holding them; the owning tab keeps references to each."""

    def __init__(self, lo: int, hi: int, step: int, count: int, precision_tip: str):
        self.lo, self.hi = spin(-64, 64, lo, " px"), spin(-64, 64, hi, " px")
        self.step = spin(1, 32, step, " px")
        self.count = spin(10, 10000, count)
        self.mode = QComboBox()
        for m, text in SHIFT_MODES.items():
            self.mode.addItem(m)
            self.mode.setItemData(self.mode.count() - 1, text, Qt.ItemDataRole.ToolTipRole)
        self.mode.setCurrentText("affine")
        self.precision = QComboBox()
        self.precision.addItems(["auto", "bf16", "fp32"])
        self.precision.setToolTip(precision_tip)
        self.form = QFormLayout()
        rng = QHBoxLayout()
        rng.addWidget(self.lo)
        rng.addWidget(QLabel("to"))
        rng.addWidget(self.hi)
        self.form.addRow("Shift range (dx and dy)", rng)
        self.form.addRow("Step", self.step)
        self.form.addRow("Images (stratified)", self.count)
        self.form.addRow("Shift mode", self.mode)
        self.form.addRow("Precision", self.precision)

    def spec(self) -> GridSpec:
        lo, hi = min(self.lo.value(), self.hi.value()), max(self.lo.value(), self.hi.value())
        return GridSpec.square(lo, hi, self.step.value())
