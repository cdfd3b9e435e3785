"""The translation-grid controls (range, step, images, shift mode, precision) shared by the tabs."""
from __future__ import annotations

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QCheckBox, QComboBox, QFormLayout, QHBoxLayout, QLabel, QSpinBox

from padlens.core.shifts import SHIFT_MODES
from padlens.core.translation import GridSpec


def spin(lo, hi, value, suffix="") -> QSpinBox:
    s = QSpinBox()
    s.setRange(lo, hi)
    s.setValue(value)
    s.setSuffix(suffix)
    return s


class GridSettings:
    """Builds the controls and a form holding them, and saves / restores them under a key prefix; the
    owning tab keeps references to each."""

    def __init__(self, lo: int, hi: int, step: int, count: int, precision_tip: str):
        self.defaults = dict(lo=lo, hi=hi, step=step, count=count)
        self.lo, self.hi = spin(-64, 64, lo, " px"), spin(-64, 64, hi, " px")
        self.y_same = QCheckBox("dy range same as dx")
        self.y_same.setChecked(True)
        self.y_same.setToolTip("Untick for a rectangular grid, e.g. dy from 0 to 0 for horizontal shifts only")
        self.y_lo, self.y_hi = spin(-64, 64, lo, " px"), spin(-64, 64, hi, " px")
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
        self.form.addRow("Shift range dx", rng)
        y_rng = QHBoxLayout()
        y_rng.addWidget(self.y_lo)
        y_rng.addWidget(QLabel("to"))
        y_rng.addWidget(self.y_hi)
        self.form.addRow("Shift range dy", y_rng)
        self.form.addRow(self.y_same)
        self.y_same.toggled.connect(self._sync_y)
        self.lo.valueChanged.connect(self._sync_y)
        self.hi.valueChanged.connect(self._sync_y)
        self.form.addRow("Step", self.step)
        self.form.addRow("Images (stratified)", self.count)
        self.form.addRow("Shift mode", self.mode)
        self.form.addRow("Precision", self.precision)

    def _sync_y(self, *_) -> None:
        same = self.y_same.isChecked()
        for box in (self.y_lo, self.y_hi):
            box.setEnabled(not same)
        if same:
            self.y_lo.setValue(self.lo.value())
            self.y_hi.setValue(self.hi.value())

    @property
    def value_widgets(self) -> tuple:
        """Widgets whose change means another grid (the tabs look the new one up in the cache)."""
        return self.lo, self.hi, self.y_lo, self.y_hi, self.step, self.count

    def spec(self) -> GridSpec:
        x = sorted((self.lo.value(), self.hi.value()))
        y = sorted((self.y_lo.value(), self.y_hi.value()))
        return GridSpec(x[0], x[1], y[0], y[1], self.step.value())

    def save(self, s, prefix: str) -> None:
        for key, val in (("lo", self.lo.value()), ("hi", self.hi.value()), ("y_same", self.y_same.isChecked()),
                         ("y_lo", self.y_lo.value()), ("y_hi", self.y_hi.value()), ("step", self.step.value()),
                         ("count", self.count.value()), ("mode", self.mode.currentText()),
                         ("precision", self.precision.currentText())):
            s.setValue(f"{prefix}_{key}", val)

    def restore(self, s, prefix: str) -> None:
        d = self.defaults
        self.lo.setValue(int(s.value(f"{prefix}_lo", d["lo"])))
        self.hi.setValue(int(s.value(f"{prefix}_hi", d["hi"])))
        self.y_lo.setValue(int(s.value(f"{prefix}_y_lo", self.lo.value())))
        self.y_hi.setValue(int(s.value(f"{prefix}_y_hi", self.hi.value())))
        self.y_same.setChecked(str(s.value(f"{prefix}_y_same", True)).lower() in ("true", "1"))
        self._sync_y()
        self.step.setValue(int(s.value(f"{prefix}_step", d["step"])))
        self.count.setValue(int(s.value(f"{prefix}_count", d["count"])))
        self.mode.setCurrentText(str(s.value(f"{prefix}_mode", "affine")))
        self.precision.setCurrentText(str(s.value(f"{prefix}_precision", "auto")))
