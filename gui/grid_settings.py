"""The translation-grid controls (range, step, images, shift mode, precision) shared by the tabs."""
from __future__ import annotations

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import (QCheckBox, QComboBox, QFormLayout, QFrame, QHBoxLayout, QLabel, QScrollArea, QSpinBox,
                             QWidget)

from padlens.core.device import PRECISION_CHOICES, PRECISIONS, describe_precision, pick_device, resolve_precision
from padlens.core.shifts import SHIFT_MODES
from padlens.core.translation import GridSpec


def auto_precision(device) -> str:
    """What precision auto runs the grids in on this device, and why (the status bar and tooltips say it)."""
    return describe_precision(resolve_precision("auto", device), device)


def scroll_column(panel: QWidget, width: int | None = None) -> QScrollArea:
    """A tab's settings column that scrolls when the window is too short for it (1280x720), instead of
    squeezing its spin boxes into one another; width fixes the column's width (the scroll bar included)."""
    area = QScrollArea()
    area.setWidget(panel)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    if width is not None:
        area.setFixedWidth(width)
    else:
        area.setMinimumWidth(panel.minimumSizeHint().width() + area.verticalScrollBar().sizeHint().width())
    return area


def spin(lo, hi, value, suffix="") -> QSpinBox:
    s = QSpinBox()
    s.setRange(lo, hi)
    s.setValue(value)
    s.setSuffix(suffix)
    return s


class GridSettings:
    """Builds the controls and a form holding them, and saves / restores them under a key prefix; the
    owning tab keeps references to each."""

    def __init__(self, lo: int, hi: int, step: int, count: int, precision_tip: str = "", device=None):
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
        self.precision.addItems(PRECISION_CHOICES)
        self.precision_tip = precision_tip
        self.set_device(device or pick_device())
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

    def set_device(self, device) -> None:
        """The precision tooltip says what auto picks on this device, and what each choice means."""
        lines = [f"auto: here {auto_precision(device)}", *(f"{p}: {text}" for p, text in PRECISIONS.items()),
                 self.precision_tip]
        self.precision.setToolTip("\n".join(line for line in lines if line))
        for i, p in enumerate(PRECISION_CHOICES):
            self.precision.setItemData(i, lines[0] if p == "auto" else PRECISIONS[p], Qt.ItemDataRole.ToolTipRole)

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
