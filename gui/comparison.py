"""Compare 2 to 4 checkpoints side by side: translation heatmaps on one color scale and the difference
of two of them, the channel-mean map of one layer for the blank and the dataset-mean input, and a table.

One background job computes everything, checkpoint after checkpoint (grid from the translation tab's
on-disk cache when there is one, else computed and cached; blank-input and dataset-mean activations of
every layer), and shows each checkpoint as soon as it is done. The layer picker only redraws: the
channel-mean maps of every layer are kept.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import time
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QRectF, Qt
from PyQt6.QtWidgets import (QAbstractItemView, QComboBox, QFileDialog, QGroupBox, QHBoxLayout, QHeaderView,
                             QLabel, QListWidget, QListWidgetItem, QMessageBox, QProgressBar, QPushButton,
                             QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from padlens.core.checkpoint import CheckpointError, checkpoint_labels, padding_variants
from padlens.core.data import Dataset
from padlens.core.layers import LayerInfo, describe_layers
from padlens.core.session import LoadedModel, load_model
from padlens.core.spatial_bias import BORDER_BIAS_HELP, check_input_size
from padlens.core.translation import GridSpec
from padlens.core.comparison import SEED, CheckpointEntry, common_layers, comparison_job
from padlens.gui.figures import augment_box, grid_cell, grid_rect, has_origin, origin_marker
from padlens.gui.grid_settings import GridSettings
from padlens.gui.worker import JobRunner

pg.setConfigOptions(imageAxisOrder="row-major")

MIN_CHECKPOINTS, MAX_CHECKPOINTS = 2, 4
ACC_CMAP, DIFF_CMAP, MAP_CMAP = "viridis", "CET-D1", "viridis"
ROWS = (("blank", "blank input", "Input all zeros after normalization: every pixel at the normalization's mean color (the data set's, for our models)"),
        ("mean", "dataset mean", "Each layer's response averaged over the grid's test images (not the response "
                                 "to the mean image)"))
COLUMNS = (
    ("checkpoint", "File name of the checkpoint (full path in the tooltip)"),
    ("padding", "Padding mode of the convolutions"),
    ("test accuracy", "Test accuracy stored in the checkpoint's metrics"),
    ("grid accuracy", "Accuracy averaged over every (dx, dy) cell of the grid"),
    ("grid consistency", "Share of predictions equal to the unshifted prediction, averaged over the grid"),
    ("layer bias, blank", "Border bias of the chosen layer's channel-mean map for the blank input.\n\n"
     + BORDER_BIAS_HELP),
    ("layer bias, mean", "Border bias of the chosen layer's channel-mean map for the dataset-mean input "
     "(responses averaged over the grid's images).\n\n" + BORDER_BIAS_HELP),
    ("all layers, blank", "Border bias averaged over every layer whose maps are at least 3x3, blank input.\n\n"
     + BORDER_BIAS_HELP),
    ("all layers, mean", "Border bias averaged over every layer whose maps are at least 3x3, dataset-mean "
     "input.\n\n" + BORDER_BIAS_HELP),
)


def _fmt_pct(v: float | None) -> str:
    return "—" if v is None or not math.isfinite(v) else f"{100 * v:.1f}%"


def _fmt_bias(v: float | None, computed: bool) -> str:
    if not computed:
        return "—"
    return "n/a" if v is None or not math.isfinite(v) else f"{v:.3f}"


def _levels(arrays, symmetric: bool = False, floor: float = 1e-6) -> tuple[float, float]:
    vals = [a[np.isfinite(a)] for a in arrays if a is not None]
    vals = [v for v in vals if v.size]
    if not vals:
        return (-floor, floor) if symmetric else (0.0, 1.0)
    allv = np.concatenate([v.ravel() for v in vals])
    if symmetric:
        m = max(float(np.abs(allv).max()), floor)
        return -m, m
    lo, hi = float(allv.min()), float(allv.max())
    return lo, (hi if hi > lo else lo + floor)


def _plot(layout: pg.GraphicsLayoutWidget, row: int, col: int, title: str = "") -> tuple[pg.PlotItem, pg.ImageItem]:
    plot = layout.addPlot(row=row, col=col, title=title)
    plot.invertY(True)
    plot.setAspectLocked(True)
    plot.hideButtons()
    plot.setMenuEnabled(False)
    for axis in ("left", "bottom"):
        plot.getAxis(axis).enableAutoSIPrefix(False)
    img = pg.ImageItem()
    plot.addItem(img)
    return plot, img


# ---- the tab -----------------------------------------------------------------------------------

class ComparisonTab(QWidget):
    def __init__(self, window=None):
        super().__init__(window)
        self.window_ = window
        self.runner = JobRunner(self)
        self._size_changed_while_running = False
        self.data: Dataset | None = None
        self.paths: list[str] = []
        self.models: dict[str, LoadedModel] = {}
        self._infos: dict[tuple[str, int], list[LayerInfo]] = {}
        self.layers: list[LayerInfo] = []
        self.result: dict | None = None
        self.planned: list[CheckpointEntry] = []
        self.t0 = 0.0
        self._n_built = -1

        # checkpoints
        self.list = QListWidget()
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.list.setMaximumHeight(110)
        self.add_btn, self.remove_btn = QPushButton("Add..."), QPushButton("Remove")
        self.add_btn.setToolTip(f"Add a checkpoint file (at most {MAX_CHECKPOINTS})")
        self.remove_btn.setToolTip("Remove the selected checkpoints from the comparison")
        self.message = QLabel()
        self.message.setWordWrap(True)
        ck_box = QGroupBox(f"Checkpoints ({MIN_CHECKPOINTS} to {MAX_CHECKPOINTS})")
        cv = QVBoxLayout(ck_box)
        cv.addWidget(self.list)
        row = QHBoxLayout()
        row.addWidget(self.add_btn)
        row.addWidget(self.remove_btn)
        cv.addLayout(row)
        cv.addWidget(self.message)

        # grid settings
        self.grid = GridSettings(-16, 16, 4, 200, "Precision of the grid: auto is bf16 where the hardware has "
                                 "it. The maps and border biases are always computed in fp32.")
        g = self.grid
        self.lo, self.hi, self.step, self.count, self.mode, self.precision = (g.lo, g.hi, g.step, g.count, g.mode,
                                                                             g.precision)
        self.count.setToolTip("Test images, balanced over the classes; the dataset-mean maps average the same images")
        form = g.form
        self.start_btn, self.cancel_btn = QPushButton("Compute"), QPushButton("Cancel")
        self.start_btn.setToolTip("Compute grids and maps for every checkpoint; cached grids are reused")
        self.cancel_btn.setEnabled(False)
        self.bar = QProgressBar()
        self.status = QLabel("Choose checkpoints and press Compute.")
        self.status.setWordWrap(True)
        grid_box = QGroupBox("Translation grid")
        gv = QVBoxLayout(grid_box)
        gv.addLayout(form)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_btn)
        buttons.addWidget(self.cancel_btn)
        gv.addLayout(buttons)
        gv.addWidget(self.bar)
        gv.addWidget(self.status)

        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(ck_box)
        lv.addWidget(grid_box)
        help_box = QGroupBox("Border bias")
        help_label = QLabel(BORDER_BIAS_HELP + " The blank input shows what the padding alone does; the dataset "
                            "mean, what remains of it on real images.")
        help_label.setWordWrap(True)
        QVBoxLayout(help_box).addWidget(help_label)
        lv.addWidget(help_box)
        lv.addStretch(1)
        left.setFixedWidth(300)

        # heatmaps
        self.diff_a, self.diff_b = QComboBox(), QComboBox()
        for box in (self.diff_a, self.diff_b):
            box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
            box.setToolTip("The difference heatmap shows A minus B (red: A is more accurate)")
        self.readout = QLabel("Hover a heatmap cell for every checkpoint's accuracy there.")
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        diff_row = QHBoxLayout()
        diff_row.addWidget(QLabel("Difference:"))
        diff_row.addWidget(self.diff_a)
        diff_row.addWidget(QLabel("minus"))
        diff_row.addWidget(self.diff_b)
        diff_row.addSpacing(16)
        diff_row.addWidget(self.readout, 1)
        self.heat = pg.GraphicsLayoutWidget()
        self.heat.setBackground("w")
        self.heat.setMinimumHeight(220)
        self.heat_plots: list[pg.PlotItem] = []
        self.heat_images: list[pg.ImageItem] = []
        self.heat_boxes: list = []
        self.heat_bar: pg.ColorBarItem | None = None
        self.diff_plot = self.diff_image = self.diff_bar = self.diff_marker = None
        heat_w = QWidget()
        hv = QVBoxLayout(heat_w)
        hv.setContentsMargins(0, 0, 0, 0)
        hv.addLayout(diff_row)
        hv.addWidget(self.heat, 1)
        self.heat.scene().sigMouseMoved.connect(self._hover)

        # channel-mean maps of one layer
        self.layer_box = QComboBox()
        self.layer_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.layer_box.setToolTip("Layers every checkpoint has at the same path with the same output shape")
        self.layer_info = QLabel()
        layer_row = QHBoxLayout()
        layer_row.addWidget(QLabel("Layer:"))
        layer_row.addWidget(self.layer_box)
        layer_row.addWidget(self.layer_info, 1)
        self.maps = pg.GraphicsLayoutWidget()
        self.maps.setBackground("w")
        self.maps.setMinimumHeight(220)
        self.maps.setToolTip("Channel-mean maps of the chosen layer; each row on one color scale.\n\n"
                             + BORDER_BIAS_HELP)
        self.map_plots: dict[str, list[pg.PlotItem]] = {k: [] for k, *_ in ROWS}
        self.map_images: dict[str, list[pg.ImageItem]] = {k: [] for k, *_ in ROWS}
        self.map_bars: dict[str, pg.ColorBarItem] = {}
        maps_w = QWidget()
        mv = QVBoxLayout(maps_w)
        mv.setContentsMargins(0, 0, 0, 0)
        mv.addLayout(layer_row)
        mv.addWidget(self.maps, 1)

        # table
        self.table = QTableWidget(0, len(COLUMNS))
        for c, (name, tip) in enumerate(COLUMNS):
            item = QTableWidgetItem(name)
            item.setToolTip(tip)
            self.table.setHorizontalHeaderItem(c, item)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        for c in (0, 1):
            header.setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)

        self.split = QSplitter(Qt.Orientation.Vertical)
        for w in (heat_w, maps_w):
            self.split.addWidget(w)
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        rv.addWidget(self.split, 1)
        rv.addWidget(self.table)
        outer = QHBoxLayout(self)
        outer.addWidget(left)
        outer.addWidget(right, 1)

        self.add_btn.clicked.connect(self.choose_checkpoint)
        self.remove_btn.clicked.connect(self.remove_selected)
        self.start_btn.clicked.connect(self.run)
        self.cancel_btn.clicked.connect(self.cancel)
        self.layer_box.currentIndexChanged.connect(lambda *_: self.show_layer())
        self.diff_a.currentIndexChanged.connect(lambda *_: self.show_difference())
        self.diff_b.currentIndexChanged.connect(lambda *_: self.show_difference())

        saved_layer = None
        if window is not None:
            saved_layer = self._restore(window.settings)
            test = (getattr(window, "datasets", None) or {}).get("test")
            self.set_data(test)
        else:
            self._set_paths([str(p) for p in padding_variants()[:MAX_CHECKPOINTS]], quiet=True)
            self.set_data(None)
        if saved_layer:
            self.set_layer(saved_layer)

    # ---- inputs --------------------------------------------------------------------------------
    @property
    def device(self):
        return getattr(self.window_, "device", None) if self.window_ is not None else None

    def input_size(self) -> int:
        explorer = getattr(self.window_, "explorer", None) if self.window_ is not None else None
        return int(explorer.input_size) if explorer is not None else 32

    def set_data(self, data: Dataset | None) -> None:
        self.data = data
        if data is None:
            self.status.setText("Needs the CIFAR-10 test split: open a data folder (Ctrl+D) or download it on "
                                "the Feature maps tab.")
        elif not self.runner.running:
            self.status.setText(f"{len(data)} test images ({data.source}). Press Compute.")
        self._update_buttons()

    def _load(self, path: str, quiet: bool) -> LoadedModel | None:
        try:
            return load_model(path, self.device)
        except CheckpointError as e:
            if not quiet:
                QMessageBox.warning(self, "Cannot add checkpoint", f"{path}:\n\n{e}")
            return None

    def _set_paths(self, paths, quiet: bool = False) -> list[str]:
        """Load the checkpoints (a bad one is skipped with a warning); returns the ones refused."""
        self.paths, refused = [], []
        self.models = {}
        for p in paths:
            p = str(p)
            if self._key(p) in {self._key(q) for q in self.paths}:
                continue
            lm = self._load(p, quiet)
            if lm is None:
                refused.append(p)
                continue
            self.paths.append(p)
            self.models[p] = lm
        self._checkpoints_changed()
        return refused

    @staticmethod
    def _key(path: str) -> str:
        try:
            return str(Path(path).resolve())
        except OSError:
            return str(path)

    def set_checkpoints(self, paths) -> list[str]:
        """Compare these checkpoint files (2 to 4); returns the paths that could not be loaded."""
        return self._set_paths(list(paths))

    def add_checkpoint(self, path) -> bool:
        path = str(path)
        if self._key(path) in {self._key(q) for q in self.paths}:
            self.status.setText(f"{Path(path).name} is already in the comparison.")
            return False
        lm = self._load(path, quiet=False)
        if lm is None:
            return False
        self.paths.append(path)
        self.models[path] = lm
        self._checkpoints_changed()
        return True

    def remove_checkpoint(self, path) -> bool:
        key = self._key(str(path))
        for p in self.paths:
            if self._key(p) == key:
                self.paths.remove(p)
                self.models.pop(p, None)
                self._checkpoints_changed()
                return True
        return False

    def choose_checkpoint(self) -> None:
        start = str(Path(self.paths[-1]).parent) if self.paths else ""
        path, _ = QFileDialog.getOpenFileName(self, "Add checkpoint", start,
                                              "PadLens checkpoints (*.pt *.pth);;All files (*)")
        if path:
            self.add_checkpoint(path)

    def remove_selected(self) -> None:
        for item in self.list.selectedItems():
            self.remove_checkpoint(item.data(Qt.ItemDataRole.UserRole))

    def _checkpoints_changed(self) -> None:
        self.list.clear()
        for p, name in zip(self.paths, checkpoint_labels(self.paths)):
            lm = self.models[p]
            item = QListWidgetItem(f"{name}  ({lm.padding_mode})")
            item.setData(Qt.ItemDataRole.UserRole, p)
            item.setToolTip(f"{p}\n{lm.accuracy_text}")
            self.list.addItem(item)
        n = len(self.paths)
        if n < MIN_CHECKPOINTS:
            self.message.setText(f"<span style='color:#b00'>Choose {MIN_CHECKPOINTS} to {MAX_CHECKPOINTS} "
                                 f"checkpoints to compare (now {n}): add one with Add...</span>")
        elif n > MAX_CHECKPOINTS:
            self.message.setText(f"<span style='color:#b00'>At most {MAX_CHECKPOINTS} checkpoints can be compared "
                                 f"(now {n}): remove {n - MAX_CHECKPOINTS}.</span>")
        else:
            self.message.setText(f"{n} checkpoints.")
        if self.runner.running:
            self.runner.cancel()     # its results come back as cancelled, then _finished re-maps them
            self.status.setText("Checkpoints changed: cancelling the computation under way.")
        else:
            self._remap_result()
        self._refresh_layers()
        if not self.runner.running:
            self._show_result()
        self._update_buttons()

    def _remap_result(self) -> None:
        """Keep what was computed for the checkpoints still listed; the new ones wait for Compute."""
        if self.result is None or [e.path for e in self.result["entries"]] == self.paths:
            return
        done = {e.path: e for e in self.result["entries"]}
        self.result = dict(self.result, entries=[done.get(e.path, e) for e in self._planned()])

    def input_size_changed(self) -> None:
        """View > Input size moved: the layer list follows, a result of the old size says so (after a
        running job, which keeps its size)."""
        if self.runner.running:
            self._size_changed_while_running = True
            return
        self._refresh_layers()
        if self.result is not None:
            self._show_result()

    def _refresh_layers(self) -> None:
        size = self.input_size()
        infos = []
        for p in self.paths:
            key = (p, size)
            if key not in self._infos:
                try:
                    self._infos[key] = describe_layers(self.models[p].model, (3, size, size))
                except RuntimeError:
                    self._infos[key] = []
            infos.append(self._infos[key])
        keep = self.layer_name()
        self.layers = common_layers(infos)
        self.layer_box.blockSignals(True)
        self.layer_box.clear()
        for info in self.layers:
            self.layer_box.addItem(info.name)
            c, h, w = info.output_shape
            self.layer_box.setItemData(self.layer_box.count() - 1, f"{info.type}, {info.params}; {c} channels "
                                       f"of {h}x{w}", Qt.ItemDataRole.ToolTipRole)
        self.layer_box.blockSignals(False)
        if keep and self.layer_box.findText(keep) >= 0:
            self.layer_box.setCurrentIndex(self.layer_box.findText(keep))
        elif self.layers:
            self.layer_box.setCurrentIndex(self._default_layer())
        self.show_layer()

    def _default_layer(self) -> int:
        """The second convolution: the first whose input is a feature map, where padding shows."""
        convs = [k for k, i in enumerate(self.layers) if i.type.endswith("Conv2d")]
        return convs[1] if len(convs) > 1 else (convs[0] if convs else 0)

    def layer_name(self) -> str:
        return self.layer_box.currentText()

    def set_layer(self, name: str) -> bool:
        k = self.layer_box.findText(name)
        if k >= 0:
            self.layer_box.setCurrentIndex(k)
        return k >= 0

    def layer_path(self) -> tuple | None:
        k = self.layer_box.currentIndex()
        return self.layers[k].path if 0 <= k < len(self.layers) else None

    def spec(self) -> GridSpec:
        return self.grid.spec()

    def _problem(self) -> str | None:
        n = len(self.paths)
        if not MIN_CHECKPOINTS <= n <= MAX_CHECKPOINTS:
            return f"Choose {MIN_CHECKPOINTS} to {MAX_CHECKPOINTS} checkpoints (now {n})."
        if self.data is None:
            return "Needs the CIFAR-10 test split: open a data folder (Ctrl+D)."
        return None

    def _update_buttons(self, running: bool | None = None) -> None:
        running = self.runner.running if running is None else running
        self.start_btn.setEnabled(not running and self._problem() is None)
        self.cancel_btn.setEnabled(running)
        self.add_btn.setEnabled(not running and len(self.paths) < MAX_CHECKPOINTS)
        self.remove_btn.setEnabled(not running and bool(self.paths))

    # ---- running -------------------------------------------------------------------------------
    def _planned(self) -> list[CheckpointEntry]:
        return [CheckpointEntry.of(p, name, self.models[p]) for p, name in zip(self.paths, checkpoint_labels(self.paths))]

    def run(self) -> bool:
        """Start computing; False (and the reason in the status line) when it cannot start."""
        if self.runner.running:
            return False
        problem = self._problem()
        if problem:
            self.status.setText(problem)
            return False
        self._refresh_layers()
        names = checkpoint_labels(self.paths)
        size = self.input_size()
        for p, name in zip(self.paths, names):   # before any work, not as a torch error half-way through
            try:
                check_input_size(self.models[p].model, size)
            except ValueError as e:
                self.status.setText(f"{name} cannot be compared at this input size: {e}. Change View > Input "
                                    "size or remove it.")
                return False
        # private copies, made here on the GUI thread: the job's hooks and this thread's never meet, and
        # no copy is taken while a hook of this thread is registered
        models = [(p, name, dataclasses.replace(self.models[p], model=copy.deepcopy(self.models[p].model)))
                  for p, name in zip(self.paths, names)]
        data, spec, mode = self.data, self.spec(), self.mode.currentText()
        n, precision = min(self.count.value(), len(self.data)), self.precision.currentText()
        self.planned = self._planned()
        self.result = {"spec": spec, "mode": mode, "images": n, "input_size": size, "data": data.source,
                       "precision": precision, "entries": list(self.planned), "complete": False}
        self._show_result()

        def job(stop):
            return (yield from comparison_job(models, data, spec, mode, n, SEED, precision, size, should_stop=stop))

        self.t0 = time.perf_counter()
        self.bar.setValue(0)
        self.status.setText("Running: each checkpoint is shown as soon as it is done.")
        self.runner.start(job, on_progress=self._progress, on_partial=self._partial, on_result=self._done,
                          on_cancelled=self._cancelled, on_error=self._failed, on_finished=self._finished)
        self._update_buttons()
        return True

    def cancel(self) -> None:
        self.runner.cancel()

    def _merge(self, value: dict) -> dict:
        entries = list(value["entries"]) + list(self.planned[len(value["entries"]):])
        return dict(value, entries=entries)

    def _progress(self, done: int, total: int, msg: str) -> None:
        self.bar.setMaximum(max(total, 1))
        self.bar.setValue(done)
        elapsed = time.perf_counter() - self.t0
        left = elapsed / max(done, 1) * (total - done)
        self.bar.setFormat(f"%p%  about {int(left // 60)}:{int(left % 60):02d} left")
        self.status.setText(msg)

    def _partial(self, value: dict) -> None:
        self.result = self._merge(value)
        self._show_result()

    def _done(self, value: dict) -> None:
        self.result = self._merge(value)
        self._show_result()
        cached = sum(e.from_cache for e in value["entries"])
        self.bar.setValue(self.bar.maximum())
        self.bar.setFormat("%p%")
        self.status.setText(f"Done in {time.perf_counter() - self.t0:.1f} s"
                            + (f"; {cached} grid{'s' * (cached != 1)} from the cache." if cached else
                               "; grids cached for next time (shared with the Translation tab)."))

    def _cancelled(self, value) -> None:
        if value is not None:
            self.result = self._merge(value)
            self._show_result()
        full = sum(e.mean_maps is not None for e in (value or {}).get("entries", []))
        self.status.setText(f"Cancelled: showing what was done ({full} of {len(self.planned)} checkpoints "
                            "complete; a partial grid is not cached).")

    def _failed(self, msg: str) -> None:
        self.status.setText(f"Failed: {msg}")
        QMessageBox.warning(self, "Comparison failed", msg)

    def _finished(self) -> None:
        self._update_buttons(running=False)     # the runner counts as running until this handler returns
        if self._size_changed_while_running:
            self._size_changed_while_running = False
            self._refresh_layers()
            if self.result is not None:
                self._show_result()
        if self.result is not None and [e.path for e in self.result["entries"]] != self.paths:
            self._remap_result()                 # the list changed while the job ran
            self._show_result()

    # ---- showing -------------------------------------------------------------------------------
    def entries(self) -> list[CheckpointEntry]:
        """What is shown: the last run's checkpoints (computed or not), else the listed ones."""
        return list(self.result["entries"]) if self.result else self._planned()

    def _build(self, n: int) -> None:
        """(Re)create the plots for n checkpoints: a row of heatmaps and the difference; two rows of maps."""
        if n == self._n_built:
            return
        self._n_built = n
        self.heat.clear()
        self.heat_plots, self.heat_images, self.heat_boxes, self.heat_markers = [], [], [], []
        self.heat_title = self.heat.addLabel("", row=0, col=0, colspan=max(n, 1) + 3, color="k")
        for k in range(n):
            plot, img = _plot(self.heat, 1, k)
            plot.setLabel("bottom", "dx (px, + = right)")
            if k == 0:
                plot.setLabel("left", "dy (px, + = down)")
            box = pg.QtWidgets.QGraphicsRectItem()
            box.setPen(pg.mkPen((255, 80, 80), width=1.5, style=Qt.PenStyle.DashLine))
            box.setVisible(False)
            plot.addItem(box)
            marker = origin_marker(12)
            plot.addItem(marker)
            self.heat_plots.append(plot)
            self.heat_markers.append(marker)
            self.heat_images.append(img)
            self.heat_boxes.append(box)
        self.heat_bar = pg.ColorBarItem(values=(0, 1), colorMap=pg.colormap.get(ACC_CMAP), interactive=False,
                                        width=12, label="accuracy (all checkpoints)")
        self.heat_bar.setImageItem(self.heat_images)
        self.heat.addItem(self.heat_bar, row=1, col=n)
        self.diff_plot, self.diff_image = _plot(self.heat, 1, n + 1, "A - B")
        self.diff_plot.setLabel("bottom", "dx (px)")
        self.diff_marker = origin_marker(12)
        self.diff_plot.addItem(self.diff_marker)
        self.diff_bar = pg.ColorBarItem(values=(-0.01, 0.01), colorMap=pg.colormap.get(DIFF_CMAP), interactive=False,
                                        width=12, label="accuracy difference")
        self.diff_bar.setImageItem(self.diff_image)
        self.heat.addItem(self.diff_bar, row=1, col=n + 2)

        self.maps.clear()
        self.maps_title = self.maps.addLabel("", row=0, col=0, colspan=n + 2, color="k")
        for r, (key, label, tip) in enumerate(ROWS, start=1):
            self.maps.addLabel(label, row=r, col=0, angle=-90, color="k").setToolTip(tip)
            self.map_plots[key], self.map_images[key] = [], []
            for k in range(n):
                plot, img = _plot(self.maps, r, k + 1)
                self.map_plots[key].append(plot)
                self.map_images[key].append(img)
            bar = pg.ColorBarItem(values=(0, 1), colorMap=pg.colormap.get(MAP_CMAP), interactive=False, width=12)
            bar.setImageItem(self.map_images[key])
            self.maps.addItem(bar, row=r, col=n + 1)
            self.map_bars[key] = bar
            self.maps.ci.layout.setRowStretchFactor(r, 1)     # both rows get the same height

    def _show_result(self) -> None:
        entries = self.entries()
        self._build(len(entries))
        r = self.result
        size, now = (r["input_size"], self.input_size()) if r else (32, 32)
        sized = f", input resized to {size}x{size}" if size != 32 else ""
        stale = (f"<b>Computed at {size}x{size}; the app's input size is now {now}x{now}: Compute again.</b> "
                 if size != now else "")   # first: a long data-set name must not push it out of view
        self.heat_title.setText(f"{stale}Accuracy over shifts, one color scale for all: {r['mode']} shifts, "
                                f"{r['images']} images ({r['data']}){sized}" if r else
                                "Accuracy over shifts: press Compute")
        grids = [e.grid.accuracy if e.grid_done else None for e in entries]
        lo, hi = _levels(grids)
        for e, plot, img, box, marker in zip(entries, self.heat_plots, self.heat_images, self.heat_boxes,
                                             self.heat_markers):
            marker.setVisible(e.grid_done and has_origin(e.grid))
            if not e.grid_done:
                img.clear()
                plot.setTitle(f"{e.name}<br><small>not computed</small>")
                box.setVisible(False)
                continue
            g = e.grid
            img.setImage(g.accuracy, autoLevels=False)
            img.setRect(grid_rect(g))
            partial = "" if r is None or g.images >= r["images"] else f", {g.images} images"
            plot.setTitle(f"{e.name}<br><small>mean {100 * e.grid_mean('accuracy'):.1f}%"
                          f"{' (cached)' if e.from_cache else ''}{partial}</small>")
            if e.crop_pad:
                box.setRect(augment_box(g, e.crop_pad))
                box.setToolTip(f"training augmentation: random crops up to {e.crop_pad} px")
            box.setVisible(bool(e.crop_pad))
        self.heat_bar.setLevels((lo, hi))
        self._fill_diff_boxes(entries)
        self.show_difference()
        self.show_layer()

    def _fill_diff_boxes(self, entries) -> None:
        names = [e.name for e in entries]
        for box, default in ((self.diff_a, 0), (self.diff_b, 1)):
            if [box.itemText(i) for i in range(box.count())] == names:
                continue
            keep = box.currentText()
            box.blockSignals(True)
            box.clear()
            box.addItems(names)
            k = box.findText(keep)
            box.setCurrentIndex(k if k >= 0 else min(default, len(names) - 1))
            box.blockSignals(False)

    def difference(self) -> np.ndarray | None:
        entries = self.entries()
        a, b = self.diff_a.currentIndex(), self.diff_b.currentIndex()
        if not (0 <= a < len(entries) and 0 <= b < len(entries)):
            return None
        ea, eb = entries[a], entries[b]
        if not (ea.grid_done and eb.grid_done) or ea.grid.accuracy.shape != eb.grid.accuracy.shape:
            return None
        return ea.grid.accuracy - eb.grid.accuracy

    def show_difference(self) -> None:
        if self.diff_image is None:
            return
        d = self.difference()
        a, b = self.diff_a.currentText(), self.diff_b.currentText()
        if d is None:
            self.diff_image.clear()
            self.diff_marker.setVisible(False)
            self.diff_plot.setTitle(f"{a} - {b}<br><small>not computed</small>")
            return
        grid = self.entries()[self.diff_a.currentIndex()].grid
        self.diff_image.setImage(d, autoLevels=False)
        self.diff_image.setRect(grid_rect(grid))
        self.diff_marker.setVisible(has_origin(grid))
        self.diff_bar.setLevels(_levels([d], symmetric=True, floor=0.01))
        mean = np.nanmean(d) if np.isfinite(d).any() else math.nan
        self.diff_plot.setTitle(f"{a} - {b}<br><small>mean {100 * mean:+.1f} points</small>")

    def show_layer(self) -> None:
        """Channel-mean maps of the chosen layer, the table's layer columns."""
        entries = self.entries()
        path = self.layer_path()
        info = self.layers[self.layer_box.currentIndex()] if path is not None else None
        if info is not None:
            c, h, w = info.output_shape
            self.layer_info.setText(f"{info.type}, {c} channels of {h}x{w}; channel-mean maps, one color scale "
                                    "per row")
        else:
            self.layer_info.setText("no layer that every checkpoint has at the same path and shape"
                                    if self.paths else "")
        self._build(len(entries))
        self.maps_title.setText(f"{info.name} {info.type}: channel mean" if info else "")
        for key, *_ in ROWS:
            maps = [(e.blank_maps if key == "blank" else e.mean_maps) for e in entries]
            shown = [m.get(path) if m is not None and path is not None else None for m in maps]
            for e, all_maps, m, plot, img in zip(entries, maps, shown, self.map_plots[key], self.map_images[key]):
                if m is None:
                    img.clear()
                    why = "not computed" if all_maps is None else "no layer in common"
                    plot.setTitle(f"{e.name}<br><small>{why}</small>")
                    continue
                img.setImage(m, autoLevels=False)
                img.setRect(QRectF(0, 0, m.shape[1], m.shape[0]))
                bias = (e.blank_bias if key == "blank" else e.mean_bias).get(path, math.nan)
                extra = f", {e.mean_images} images" if key == "mean" else ""
                plot.setTitle(f"{e.name}<br><small>border bias {_fmt_bias(bias, True)}{extra}</small>")
            self.map_bars[key].setLevels(_levels(shown))
        self._fill_table(entries)

    def _fill_table(self, entries: list[CheckpointEntry]) -> None:
        path = self.layer_path()
        self.table.setRowCount(len(entries))
        rows = min(max(len(entries), MIN_CHECKPOINTS), MAX_CHECKPOINTS)
        height = (self.table.horizontalHeader().sizeHint().height() + 2 * self.table.frameWidth()
                  + rows * self.table.verticalHeader().defaultSectionSize() + 2)
        self.table.setFixedHeight(height)
        for r, e in enumerate(entries):
            values = [
                (e.name, e.path),
                (e.padding, None),
                (_fmt_pct(e.accuracy), e.accuracy_text),
                (_fmt_pct(e.grid_mean("accuracy")), None),
                (_fmt_pct(e.grid_mean("consistency")), None),
                (_fmt_bias(e.blank_bias.get(path), e.blank_maps is not None and path is not None), None),
                (_fmt_bias(e.mean_bias.get(path), e.mean_maps is not None and path is not None), None),
                (_fmt_bias(e.bias_all("blank"), e.blank_maps is not None), None),
                (_fmt_bias(e.bias_all("mean"), e.mean_maps is not None), None),
            ]
            for c, (text, tip) in enumerate(values):
                item = QTableWidgetItem(text)
                item.setToolTip(tip or COLUMNS[c][1])
                if c >= 2:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, c, item)

    def _hover(self, pos) -> None:
        entries = self.entries()
        for plot in self.heat_plots + ([self.diff_plot] if self.diff_plot else []):
            if not plot.vb.sceneBoundingRect().contains(pos):
                continue
            ref = next((e.grid for e in entries if e.grid_done), None)
            if ref is None:
                return
            cell = grid_cell(ref, plot.vb.mapSceneToView(pos))
            if cell is None:
                return
            ix, iy = cell
            parts = [f"{e.name} {_fmt_pct(e.grid.accuracy[iy, ix])}" for e in entries if e.grid_done]
            d = self.difference()
            if d is not None and np.isfinite(d[iy, ix]):
                parts.append(f"A - B {100 * d[iy, ix]:+.1f} points")
            self.readout.setText(f"dx={int(ref.dxs[ix]):+d}, dy={int(ref.dys[iy]):+d}: " + ", ".join(parts))
            return

    # ---- settings ------------------------------------------------------------------------------
    def _restore(self, s) -> str | None:
        self.grid.restore(s, "cmp")
        saved = s.value("cmp_checkpoints")
        if isinstance(saved, str):
            saved = [saved] if saved else []
        paths = [str(p) for p in (saved or []) if Path(str(p)).is_file()]
        if not paths:
            paths = [str(p) for p in padding_variants()[:MAX_CHECKPOINTS]]
        self._set_paths(paths, quiet=True)
        layer = s.value("cmp_layer")
        return str(layer) if layer else None

    def save_settings(self, s) -> None:
        self.grid.save(s, "cmp")
        s.setValue("cmp_checkpoints", list(self.paths))
        s.setValue("cmp_layer", self.layer_name())

