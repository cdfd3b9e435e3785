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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyqtgraph as pg
import torch
from PyQt6.QtCore import QRectF, QSettings, Qt, QTimer
from PyQt6.QtWidgets import (QAbstractItemView, QComboBox, QFileDialog, QGroupBox, QHBoxLayout, QHeaderView,
                             QLabel, QListWidget, QListWidgetItem, QMessageBox, QPushButton,
                             QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from padlens.core.checkpoint import FLAGSHIP, CheckpointError, checkpoint_labels, padding_variants, shipped_dir
from padlens.core.data import Dataset
from padlens.core.layers import LayerInfo, describe_layers
from padlens.core.session import LoadedModel, load_model
from padlens.core.spatial_bias import BORDER_BIAS_HELP, check_input_size
from padlens.core.device import hardware
from padlens.core.grid_cache import GridRequest
from padlens.core.timing import fewer_images, fmt_duration, known_rate
from padlens.core.translation import GridSpec, grid_cost
from padlens.core.comparison import SEED, CheckpointEntry, common_layers, comparison_job
from padlens.gui.figures import augment_box, grid_cell, grid_rect, origin_marker, show_origin
from padlens.gui.style import (RANGES, PanelFigure, color_bar, figure_caption, image_panel, jpeg_note,
                               set_label, set_levels, set_title, value_levels)
from padlens.gui.grid_settings import GridSettings, scroll_column
from padlens.gui.job_bar import JobBar
from padlens.gui.translation_tab import NEEDS_DATA
from padlens.gui.worker import JobRunner

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


def default_checkpoints() -> list[str]:
    """The flagship (the most accurate model, zero padding) and the padding variants, at most MAX_CHECKPOINTS."""
    found = [p for p in [shipped_dir() / FLAGSHIP, *padding_variants()] if p.is_file()]
    return [str(p) for p in found[:MAX_CHECKPOINTS]]


def compare_estimate_text(todo: list[GridRequest], rates: list[float], n_checkpoints: int) -> str:
    """The line under Compute: the grids not in the cache (`todo`) at each one's measured rate (forward passes
    per second), plus one pass per image for its dataset-mean maps; a long run comes with an image count that
    fits in a few minutes."""
    if not todo:
        return f"All {n_checkpoints} grids are in the cache: Compute opens them (the maps take seconds)."

    def seconds(images: int) -> float:
        return sum((grid_cost(r.spec, r.mode, min(images, r.images), r.input_size).rows + min(images, r.images)) / rate
                   for r, rate in zip(todo, rates))
    cached = n_checkpoints - len(todo)
    text = (f"About {fmt_duration(seconds(todo[0].images))} on this {hardware(todo[0].device)} for "
            f"{len(todo)} grid{'s' * (len(todo) != 1)}" + (f" ({cached} in the cache)" if cached else ""))
    return text + fewer_images(seconds, todo[0].images) + "."


def map_rect(m: np.ndarray) -> QRectF:
    """A channel-mean map's extent with pixel centres on whole numbers (ticks name pixels, not their edges)."""
    return QRectF(-0.5, -0.5, m.shape[1], m.shape[0])


# ---- the tab -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class CompareState:
    """What the status line describes; the line is a function of it (compare_status)."""
    data: str | None = None    # the test split's source; None: no split open
    images: int = 0            # its size
    running: bool = False
    message: str = ""          # the running job's last progress message
    stopping: str = ""         # why a running job is being cancelled
    event: str = ""            # what the last action came to: done, cancelled, failed or refused ("": nothing yet)
    detail: str = ""           # a failure's or a refusal's words
    seconds: float = 0.0       # a finished run's time
    cached: int = 0            # grids a finished run took from the cache
    notes: tuple[str, ...] = ()   # its notes (damaged cache files)
    complete: int = 0          # checkpoints complete when cancelled
    planned: int = 0           # checkpoints the run was for


def compare_status(s: CompareState) -> str:
    if s.running:
        return s.stopping or s.message or "Running: each checkpoint is shown as soon as it is done."
    if s.event in ("refused", "failed"):
        return s.detail if s.event == "refused" else f"Failed: {s.detail}"
    if s.data is None:
        return NEEDS_DATA
    if s.event == "done":
        return (f"Done in {fmt_duration(s.seconds)}"
                + (f"; {s.cached} grid{'s' * (s.cached != 1)} from the cache." if s.cached else
                   "; grids cached for next time (shared with the Translation tab).")
                + "".join(f" Note: {n}." for n in s.notes))
    if s.event == "cancelled":
        return (f"Cancelled: showing what was done ({s.complete} of {s.planned} checkpoints complete; a partial grid "
                "is not cached).")
    return f"{s.images} test images ({s.data}). Press Compute."


class ComparisonTab(QWidget):
    """Holds only what the main window pushes to it (settings and device at construction, then data and
    input size): it never reads its parent. Without settings it starts on the shipped padding variants."""
    def __init__(self, settings: QSettings | None = None, device: torch.device | None = None, parent=None):
        super().__init__(parent)
        self.device = device   # where the compared checkpoints load
        self.input_size = 32   # the explorer's (View > Input size)
        self.runner = JobRunner(self)
        self._size_changed_while_running = False
        self.data: Dataset | None = None
        self.paths: list[str] = []
        self.models: dict[str, LoadedModel] = {}
        self._infos: dict[tuple[str, int], list[LayerInfo]] = {}
        self.layers: list[LayerInfo] = []
        self.result: dict | None = None
        self.planned: list[CheckpointEntry] = []
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
        self.grid = GridSettings(-16, 16, 4, 200, "The maps and border biases are always computed in fp32.",
                                 self.device)
        g = self.grid
        self.lo, self.hi, self.step, self.count, self.mode, self.precision = (g.lo, g.hi, g.step, g.count, g.mode,
                                                                             g.precision)
        self.count.setToolTip("Test images, balanced over the classes; the dataset-mean maps average the same images")
        form = g.form
        self.start_btn, self.cancel_btn = QPushButton("Compute"), QPushButton("Cancel")
        self.start_btn.setToolTip("Compute grids and maps for every checkpoint; cached grids are reused")
        self.cancel_btn.setEnabled(False)
        self.bar = JobBar()
        self.timer = JobRunner(self)   # times each checkpoint for the estimate under Compute
        self.timer.idle.connect(lambda: self._refresh_estimate(measure=self._timed))   # a stopped timing is not redone
        self._timed = False
        self.estimate = QLabel()
        self.estimate.setWordWrap(True)
        self.state = CompareState()
        self.status = QLabel(compare_status(self.state))
        self.status.setWordWrap(True)
        grid_box = QGroupBox("Translation grid")
        gv = QVBoxLayout(grid_box)
        gv.addLayout(form)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_btn)
        buttons.addWidget(self.cancel_btn)
        gv.addLayout(buttons)
        gv.addWidget(self.estimate)
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
        left_column = scroll_column(left, 320)

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
        self.range_box = QComboBox()
        self.range_box.addItems(RANGES)
        self.range_box.setToolTip("Accuracy colour scale: the range of the values shown (default: a spread of a "
                                  "few points is not one colour) or 0 to 1")
        diff_row.insertWidget(0, self.range_box)
        diff_row.insertWidget(0, QLabel("Colour scale:"))
        diff_row.insertSpacing(2, 16)
        self.heat = PanelFigure()
        self.heat.setMinimumHeight(180)
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
        self.layer_box.setToolTip("Layers every checkpoint has at the same path, of the same type and map size "
                                  "(the channel counts may differ: the maps are channel means)")
        self.layer_info = QLabel()
        layer_row = QHBoxLayout()
        layer_row.addWidget(QLabel("Layer:"))
        layer_row.addWidget(self.layer_box)
        layer_row.addWidget(self.layer_info, 1)
        self.maps = PanelFigure()
        self.maps.setMinimumHeight(240)   # two rows of maps with their colour bars and titles
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

        # heatmaps, maps and table share the height by splitter: at 1280x720 the table below a splitter of two
        # left the heatmaps ~20 px of height; it scrolls instead, and the user's split is remembered
        self.table.setMinimumHeight(self.table.horizontalHeader().sizeHint().height() + 2 * 30)
        self.split = QSplitter(Qt.Orientation.Vertical)
        self._split_sized = False   # restored from the settings, or sized at first show
        for w, stretch in ((heat_w, 5), (maps_w, 4), (self.table, 2)):
            self.split.addWidget(w)
            self.split.setStretchFactor(self.split.count() - 1, stretch)
        self.split.setChildrenCollapsible(False)
        outer = QHBoxLayout(self)
        outer.addWidget(left_column)
        outer.addWidget(self.split, 1)

        self.add_btn.clicked.connect(self.choose_checkpoint)
        self.remove_btn.clicked.connect(self.remove_selected)
        self.start_btn.clicked.connect(self.run)
        self.cancel_btn.clicked.connect(self.cancel)
        self.layer_box.currentIndexChanged.connect(lambda *_: self.show_layer())
        self.diff_a.currentIndexChanged.connect(lambda *_: self.show_difference())
        self.diff_b.currentIndexChanged.connect(lambda *_: self.show_difference())
        self.range_box.currentTextChanged.connect(lambda *_: self.result is not None and self._show_result())

        # the checkpoints (and layer) to open when the tab first shows: loading four takes seconds, which the
        # window's start does not wait for
        self._pending: tuple[list[str], str | None] | None = (
            self._restore(settings) if settings is not None
            else (default_checkpoints(), None))
        self.set_data(None)
        for w in g.value_widgets:   # another grid: another estimate
            w.valueChanged.connect(lambda *_: self._refresh_estimate())
        for box in (self.mode, self.precision):
            box.currentTextChanged.connect(lambda *_: self._refresh_estimate())

    def showEvent(self, event) -> None:
        self.open_pending()
        super().showEvent(event)
        self._refresh_estimate()
        if not self._split_sized:   # once laid out: by the splitter's own rule the table's size hint took a third
            self._split_sized = True
            QTimer.singleShot(0, lambda: self.split.setSizes([440, 400, 160]))

    def open_pending(self) -> None:
        """Load the checkpoints chosen at construction, once (see _pending)."""
        if self._pending is None:
            return
        (paths, layer), self._pending = self._pending, None
        self._set_paths(paths, quiet=True)
        if layer:
            self.set_layer(layer)

    # ---- inputs --------------------------------------------------------------------------------
    def set_data(self, data: Dataset | None) -> None:
        self.data = data
        source = data.source if data is not None else None
        same = source == self.state.data   # the same split again keeps what was said of its grids
        self._say(data=source, images=len(data) if data is not None else 0,
                  **({} if same or self.state.running else {"event": "", "detail": ""}))
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
        self._pending = None   # these replace what was to open on first show
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
            self._say(event="refused", detail=f"{Path(path).name} is already in the comparison.")
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
        if self.state.event == "refused":
            self._say(event="", detail="")   # what was refused is no longer the question
        if self.runner.running:
            self.runner.cancel()     # its results come back as cancelled, then _finished re-maps them
            self._say(stopping="Checkpoints changed: cancelling the computation under way.")
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

    def set_input_size(self, size: int) -> None:
        """View > Input size moved: the layer list follows, a result of the old size says so (after a
        running job, which keeps its size)."""
        self.input_size = size
        if self.runner.running:
            self._size_changed_while_running = True
            return
        self._refresh_layers()
        if self.result is not None:
            self._show_result()
        self._refresh_estimate()

    def closeEvent(self, event) -> None:
        """Shown on its own (the window stops both runners when it closes)."""
        for runner in (self.runner, self.timer):
            runner.stop(5000)
        super().closeEvent(event)

    def _refresh_layers(self) -> None:
        size = self.input_size
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
            c, h, w = info.output_shape   # every checkpoint's map has this size; the channel counts may differ
            self.layer_box.addItem(f"{info.name}  {info.type}  {h}x{w}", info.name)   # settings keep the name
            self.layer_box.setItemData(self.layer_box.count() - 1, f"{info.type}, {info.params}; {c} channels "
                                       f"of {h}x{w}", Qt.ItemDataRole.ToolTipRole)
        self.layer_box.blockSignals(False)
        if keep and self.layer_box.findData(keep) >= 0:
            self.layer_box.setCurrentIndex(self.layer_box.findData(keep))
        elif self.layers:
            self.layer_box.setCurrentIndex(self._default_layer())
        self.show_layer()

    def _default_layer(self) -> int:
        """The second convolution: the first whose input is a feature map, where padding shows."""
        convs = [k for k, i in enumerate(self.layers) if i.type.endswith("Conv2d")]
        return convs[1] if len(convs) > 1 else (convs[0] if convs else 0)

    def layer_name(self) -> str:
        k = self.layer_box.currentIndex()
        return self.layers[k].name if 0 <= k < len(self.layers) else ""

    def set_layer(self, name: str) -> bool:
        k = self.layer_box.findData(name)
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
        self._refresh_estimate(running=running)

    # ---- estimate ------------------------------------------------------------------------------
    def _requests(self) -> list[GridRequest]:
        n = min(self.count.value(), len(self.data))
        return [GridRequest(self.models[p], self.data, self.spec(), self.mode.currentText(), n, SEED,
                            self.precision.currentText(), self.input_size) for p in self.paths]

    def _refresh_estimate(self, measure: bool = True, running: bool | None = None) -> None:
        """The line under Compute: what the grids not in the cache take here, from a quick timing of each
        checkpoint on this device (in the background, one checkpoint after another, once per checkpoint,
        device, precision and input size) while the tab shows."""
        running = self.runner.running if running is None else running
        if running or self._problem() is not None:
            self.estimate.setText("")
            return
        todo = [r for r in self._requests() if r.path is None or not r.path.is_file()]
        unknown = [r for r in todo if known_rate(r.rate_key) is None]
        if unknown:
            if measure and self.isVisible() and not self.timer.running:
                self._timed = False

                def timed(rate):
                    self._timed = rate is not None
                self.timer.start(unknown[0].timing_job(), on_result=timed)
            self.estimate.setText(f"Timing the checkpoints on this {hardware(todo[0].device)} "
                                  f"({len(todo) - len(unknown)} of {len(todo)})..." if self.timer.running else "")
            return
        self.estimate.setText(compare_estimate_text(todo, [known_rate(r.rate_key) for r in todo], len(self.paths)))

    # ---- running -------------------------------------------------------------------------------
    def _planned(self) -> list[CheckpointEntry]:
        return [CheckpointEntry.of(p, name, self.models[p]) for p, name in zip(self.paths, checkpoint_labels(self.paths))]

    def run(self) -> bool:
        """Start computing; False (and the reason in the status line) when it cannot start."""
        if self.runner.running:
            return False
        problem = self._problem()
        if problem:
            self._say(event="refused", detail=problem)
            return False
        self.timer.cancel()   # the grids' own progress times them from here
        self._refresh_layers()
        names = checkpoint_labels(self.paths)
        size = self.input_size
        for p, name in zip(self.paths, names):   # before any work, not as a torch error half-way through
            try:
                check_input_size(self.models[p].model, size)
            except ValueError as e:
                self._say(event="refused", detail=f"{name} cannot be compared at this input size: {e}. Change View > "
                                                  "Input size or remove it.")
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

        self.bar.start()
        self._say(running=True, message="", stopping="", event="", detail="", planned=len(self.planned))
        self.runner.start(job, on_progress=self._progress, on_partial=self._partial, on_result=self._done,
                          on_cancelled=self._cancelled, on_error=self._failed, on_finished=self._finished)
        self._update_buttons()
        return True

    def cancel(self) -> None:
        if self.runner.running:
            self._say(stopping="Cancelling: what is finished stays on screen.")
        self.runner.cancel()

    def _say(self, **changes) -> None:
        """Change what the status line describes, then say it: the line is compare_status of that state."""
        self.state = dataclasses.replace(self.state, **changes)
        self.status.setText(compare_status(self.state))

    def _merge(self, value: dict) -> dict:
        entries = list(value["entries"]) + list(self.planned[len(value["entries"]):])
        return dict(value, entries=entries)

    def _progress(self, done: int, total: int, msg: str) -> None:
        self.bar.progress(done, total)   # long times in hours, as everywhere (was "about 305:42 left")
        self._say(message=msg)

    def _partial(self, value: dict) -> None:
        self.result = self._merge(value)
        self._show_result()

    def _done(self, value: dict) -> None:
        self.result = self._merge(value)
        self._show_result()
        self.bar.finish()
        self._say(running=False, event="done", seconds=self.bar.elapsed,
                  cached=sum(e.from_cache for e in value["entries"]), notes=tuple(value.get("notes", ())))

    def _cancelled(self, value) -> None:
        if value is not None:
            self.result = self._merge(value)
            self._show_result()
        self.bar.cancelled()
        self._say(running=False, event="cancelled",
                  complete=sum(e.mean_maps is not None for e in (value or {}).get("entries", [])))

    def _failed(self, msg: str) -> None:
        self._say(running=False, event="failed", detail=msg)
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
        # keep the old plots alive until the next rebuild: a paint already queued for them must not reach
        # items whose C++ side clear() deleted (a segfault in pyqtgraph's AxisItem.paint)
        self._retired = list(self.heat.ci.items)
        self.heat.clear()
        self.heat_plots, self.heat_images, self.heat_boxes, self.heat_markers = [], [], [], []
        self.heat_title = self.heat.addLabel("", row=0, col=0, colspan=max(n, 1) + 3)
        for k in range(n):
            plot, img = image_panel(self.heat, 1, k)
            if k == 0:   # the first panel names the axes for all
                set_label(plot, "bottom", "dx (px, + = right)")
                set_label(plot, "left", "dy (px, + = down)")
            else:   # every panel shows the same dy range: the first one's ticks say it
                plot.getAxis("left").setStyle(showValues=False)
            box = pg.QtWidgets.QGraphicsRectItem()
            box.setPen(pg.mkPen((255, 80, 80), width=1.5, style=Qt.PenStyle.DashLine))
            box.setVisible(False)
            plot.addItem(box)
            marker = origin_marker()
            plot.addItem(marker)
            self.heat_plots.append(plot)
            self.heat_markers.append(marker)
            self.heat_images.append(img)
            self.heat_boxes.append(box)
        self.heat_bar = color_bar(ACC_CMAP, label="accuracy, every checkpoint")
        self.heat_bar.setImageItem(self.heat_images)
        self.heat.addItem(self.heat_bar, row=1, col=n)
        self.diff_plot, self.diff_image = image_panel(self.heat, 1, n + 1, "A - B")
        self.diff_plot.getAxis("left").setStyle(showValues=False)
        self.diff_marker = origin_marker()
        self.diff_plot.addItem(self.diff_marker)
        self.diff_bar = color_bar(DIFF_CMAP, (-0.01, 0.01), label="accuracy difference")
        self.diff_bar.setImageItem(self.diff_image)
        self.heat.addItem(self.diff_bar, row=1, col=n + 2)

        self.maps.clear()
        self.maps_title = self.maps.addLabel("", row=0, col=0, colspan=n + 2)
        for r, (key, label, tip) in enumerate(ROWS, start=1):
            self.maps.addLabel(label, row=r, col=0, angle=-90, color="k").setToolTip(tip)
            self.map_plots[key], self.map_images[key] = [], []
            for k in range(n):
                plot, img = image_panel(self.maps, r, k + 1)
                if k:   # one map size for all: pixel ticks once per row and once per column
                    plot.hideAxis("left")
                if r < len(ROWS):
                    plot.hideAxis("bottom")
                self.map_plots[key].append(plot)
                self.map_images[key].append(img)
            bar = color_bar(MAP_CMAP)
            bar.setImageItem(self.map_images[key])
            self.maps.addItem(bar, row=r, col=n + 1)
            self.map_bars[key] = bar

    def _show_result(self) -> None:
        entries = self.entries()
        self._build(len(entries))
        r = self.result
        size, now = (r["input_size"], self.input_size) if r else (32, 32)
        sized = f", input resized to {size}x{size}" if size != 32 else ""
        stale = (f"<b>Computed at {size}x{size}; the app's input size is now {now}x{now}: Compute again.</b> "
                 if size != now else "")   # first: a long data-set name must not push it out of view
        mode = self.range_box.currentText()
        set_title(self.heat_title, f"{stale}Accuracy over shifts" + (
                  f": {r['mode']} shifts, {r['images']} test images{jpeg_note(r['data'])}{sized}" if r else
                  ": press Compute"), f"one colour scale for all, {mode}" if r else "")
        grids = [e.grid.accuracy if e.grid_done else None for e in entries]
        lo, hi = value_levels(grids, mode)
        ref = None
        for e, plot, img, box, marker in zip(entries, self.heat_plots, self.heat_images, self.heat_boxes,
                                             self.heat_markers):
            show_origin(marker, e.grid if e.grid_done else None)
            if not e.grid_done:
                img.clear()
                set_title(plot, e.name, "not computed")
                box.setVisible(False)
                continue
            g = ref = e.grid
            img.setImage(g.accuracy, autoLevels=False)
            img.setRect(grid_rect(g))
            plot.vb.setRange(grid_rect(g), padding=0)
            partial = "" if r is None or g.images >= r["images"] else f", {g.images} images"
            set_title(plot, e.name, f"mean {100 * e.grid_mean('accuracy'):.1f}%{partial}")   # cache: the status
            if e.crop_pad:
                box.setRect(augment_box(g, e.crop_pad))
                box.setToolTip(f"training augmentation: random crops up to {e.crop_pad} px")
            box.setVisible(bool(e.crop_pad))
        set_levels(self.heat_bar, (lo, hi))
        rect = grid_rect(ref) if ref is not None else QRectF(0, 0, 1, 1)
        self.heat.set_panels(self.heat_plots + [self.diff_plot], len(self.heat_plots) + 1, 1,
                             rect.width() / rect.height())
        self.heat.caption = self._caption(r)
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
            show_origin(self.diff_marker, None)
            set_title(self.diff_plot, f"{a} - {b}", "not computed")
            return
        grid = self.entries()[self.diff_a.currentIndex()].grid
        self.diff_image.setImage(d, autoLevels=False)
        self.diff_image.setRect(grid_rect(grid))
        self.diff_plot.vb.setRange(grid_rect(grid), padding=0)   # the axes end with the grid
        show_origin(self.diff_marker, grid)
        set_levels(self.diff_bar, value_levels([d], symmetric=True, floor=0.01))
        mean = np.nanmean(d) if np.isfinite(d).any() else math.nan
        set_title(self.diff_plot, f"{a} - {b}", f"mean {100 * mean:+.1f} points")

    def show_layer(self) -> None:
        """Channel-mean maps of the chosen layer, the table's layer columns."""
        entries = self.entries()
        path = self.layer_path()
        info = self.layers[self.layer_box.currentIndex()] if path is not None else None
        if info is not None:
            _, h, w = info.output_shape
            self.layer_info.setText(f"{h}x{w} maps, each the mean over the layer's channels; one colour scale "
                                    "per row")
        else:
            self.layer_info.setText("no layer that every checkpoint has at the same path, of the same type and "
                                    "map size" if self.paths else "")
        self._build(len(entries))
        counts = {e.mean_images for e in entries if e.mean_maps is not None}
        one_count = len(counts) == 1   # said once in the title: per panel it widened every column past its map
        set_title(self.maps_title, f"{info.name} {info.type}: channel-mean maps" if info else "",
                  f"dataset mean over {counts.pop()} images" if info and one_count else "")
        for key, *_ in ROWS:
            maps = [(e.blank_maps if key == "blank" else e.mean_maps) for e in entries]
            shown = [m.get(path) if m is not None and path is not None else None for m in maps]
            for e, all_maps, m, plot, img in zip(entries, maps, shown, self.map_plots[key], self.map_images[key]):
                if m is None:
                    img.clear()
                    why = "not computed" if all_maps is None else "no layer in common"
                    set_title(plot, e.name if key == ROWS[0][0] else "", why)
                    continue
                img.setImage(m, autoLevels=False)
                img.setRect(map_rect(m))
                plot.vb.setRange(map_rect(m), padding=0)   # the map fills its axes
                bias = (e.blank_bias if key == "blank" else e.mean_bias).get(path, math.nan)
                extra = f" ({e.mean_images} images)" if key == "mean" and not one_count else ""
                note = f"bias {_fmt_bias(bias, True)}{extra}"   # the checkpoint's name heads the column
                set_title(plot, e.name if key == ROWS[0][0] else "", note)
            set_levels(self.map_bars[key], value_levels(shown))
        hw = info.output_shape[1:] if info is not None else (1, 1)
        plots = [p for key, *_ in ROWS for p in self.map_plots[key]]
        self.maps.set_panels(plots, len(entries), len(ROWS), hw[1] / hw[0])
        self.maps.caption = self._caption(self.result, f"layer {info.name} {info.type}" if info else "")
        self._fill_table(entries)

    def _caption(self, r: dict | None, extra: str = "") -> str:
        """An exported comparison figure's caption: which checkpoints, shifts, data and images."""
        models = ", ".join(f"{e.name} ({e.padding} padding)" for e in self.entries())
        if r is None:
            return figure_caption(extra=f"Checkpoints {models}" + (f"; {extra}" if extra else ""))
        spec = r["spec"]
        return figure_caption(
            input=f"{r['mode']} shifts dx {spec.x_min:+d} to {spec.x_max:+d}, dy {spec.y_min:+d} to {spec.y_max:+d}, "
                  f"step {spec.step} px; input {r['input_size']}x{r['input_size']}",
            data=r["data"], images=r["images"], extra=f"checkpoints {models}" + (f"; {extra}" if extra else ""))

    def _fill_table(self, entries: list[CheckpointEntry]) -> None:
        path = self.layer_path()
        self.table.setRowCount(len(entries))
        rows = min(max(len(entries), MIN_CHECKPOINTS), MAX_CHECKPOINTS)
        height = (self.table.horizontalHeader().sizeHint().height() + 2 * self.table.frameWidth()
                  + rows * self.table.verticalHeader().defaultSectionSize() + 2)
        self.table.setMaximumHeight(height)   # no taller than its rows; shorter in the splitter, scrolling
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
    def _restore(self, s) -> tuple[list[str], str | None]:
        """The grid settings now; the checkpoints and layer to open on first show, returned."""
        self.grid.restore(s, "cmp")
        saved = s.value("cmp_checkpoints")
        if isinstance(saved, str):
            saved = [saved] if saved else []
        paths = [str(p) for p in (saved or []) if Path(str(p)).is_file()]
        if not paths:
            paths = default_checkpoints()
        layer = s.value("cmp_layer")
        if s.value("cmp_split"):
            self._split_sized = self.split.restoreState(s.value("cmp_split"))
        return paths, (str(layer) if layer else None)

    def save_settings(self, s) -> None:
        self.grid.save(s, "cmp")
        paths, layer = self._pending or (self.paths, self.layer_name())   # never shown: what it would have opened
        s.setValue("cmp_checkpoints", list(paths))
        s.setValue("cmp_layer", layer or "")
        s.setValue("cmp_split", self.split.saveState())

