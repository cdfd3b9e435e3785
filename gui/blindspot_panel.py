"""Blind spots panel: a test image scaled down to a patch at every position of the canvas, the true-class
probability and accuracy over the patch's position, side by side for the current model and, optionally, the
shipped padding variants. The work is core.blindspots, run through the JobRunner; finished maps are kept in
memory per model and settings, so going back to earlier settings shows them at once."""
from __future__ import annotations

import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QSettings, Qt, pyqtSignal
from PyQt6.QtWidgets import (QCheckBox, QComboBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QMessageBox,
                             QPushButton, QSplitter, QVBoxLayout, QWidget)

from padlens.core.blindspots import (BACKGROUNDS, DEFAULT_BACKGROUND, DEFAULT_IMAGES, DEFAULT_PATCH, DEFAULT_STRIDE,
                                     BlindspotResult, BlindspotSpec, blindspot_job, save_data)
from padlens.core.checkpoint import padding_variants
from padlens.core.data import stratified_subset
from padlens.core.device import PRECISION_CHOICES, describe_precision, resolve_precision
from padlens.core.files import file_identity
from padlens.core.inference import fast_model
from padlens.core.jobs import Partial, Progress
from padlens.core.session import LoadedModel, load_model
from padlens.core.timing import fmt_duration
from padlens.gui.analyses_tab import AnalysisPanel
from padlens.gui.export import FIGURE_FILTERS, ask_save_path, run_export, write_figure, write_offscreen
from padlens.gui.figures import grid_cell, grid_rect
from padlens.gui.grid_settings import scroll_column, spin
from padlens.gui.job_bar import JobBar
from padlens.gui.style import (DATA_RANGE, RANGES, PanelFigure, color_bar, figure_caption, image_panel, jpeg_note,
                               set_label, set_levels, set_title, value_levels)
from padlens.gui.translation_tab import NEEDS_DATA

METRICS = (("probability", "true-class probability"), ("accuracy", "accuracy"))   # the figure's rows
NOT_COMPUTED = "Not computed for these settings yet: Start computes it."
READOUT_HINT = "Hover a map for the numbers at that position of the patch."


@dataclass(frozen=True)
class Entry:
    """One model of the comparison: its name, padding mode, checkpoint (None: the app's current model) and the
    in-memory cache key of its maps under the panel's settings."""
    name: str
    padding: str
    path: Path | None
    key: tuple


@dataclass(frozen=True)
class PanelState:
    """What the status line describes; the line is a function of it."""
    has_data: bool
    has_model: bool
    running: bool
    current: bool                          # the running (or last) job computes what the panel is set to
    asked: int                             # images per model
    finished: tuple[tuple[str, int], ...]  # (model, images finished) for every model shown
    event: str = ""                        # what the last job of these settings did: done, cancelled, failed: ...
    message: str = ""                      # the running job's last progress message
    seconds: float | None = None


def panel_status(s: PanelState) -> str:
    if not s.has_data:
        return NEEDS_DATA
    if not s.has_model:
        return "No model is open."
    if s.running and not s.current:
        return "Computing for earlier settings (Cancel stops it); these are not computed yet."
    if s.running:
        return f"Computing: {s.message or 'starting'}."
    if s.event.startswith("Failed"):
        return s.event
    if s.finished and all(k >= s.asked for _, k in s.finished):
        took = f" in {fmt_duration(s.seconds)}" if s.current and s.event == "done" and s.seconds else ""
        return f"Done{took}: {s.asked} images per model" + ("" if took else " (kept from an earlier run)") + "."
    if s.current and s.event == "cancelled":
        return "Cancelled after " + ", ".join(f"{k} of {s.asked} images ({name})" for name, k in s.finished) + "."
    return NOT_COMPUTED


def axes(r: BlindspotResult):
    """The map's positions as gui.figures reads a grid's shifts (cells centred on them)."""
    return types.SimpleNamespace(dxs=r.xs, dys=r.ys)


def readout_text(shown: list[tuple[Entry, BlindspotResult | None]], pos: tuple[int, int] | None) -> str:
    """Every model's numbers at the patch position pos = (x, y) of its top-left corner, else the hint."""
    if pos is None:
        return READOUT_HINT
    x, y = pos
    parts = []
    half = None
    for e, r in shown:
        if r is None or not r.images:
            parts.append(f"{e.name}: not computed")
            continue
        try:
            i, j = r.cell(x, y)
        except KeyError:
            parts.append(f"{e.name}: no such position")
            continue
        half = r.patch / 2
        (lo, hi) = (v[i, j] for v in r.accuracy_ci)
        parts.append(f"{e.name} ({e.padding}): p {r.probability[i, j]:.3f}, accuracy {100 * r.accuracy[i, j]:.1f}% "
                     f"(95% CI {100 * lo:.1f}-{100 * hi:.1f}%, {int(r.count[i, j])} images)")
    centre = f" (centre {x + half:g}, {y + half:g})" if half is not None else ""
    return f"Patch top-left at x={x}, y={y}{centre}: " + "; ".join(parts)


class BlindspotFigure(PanelFigure):
    """Probability (top row) and accuracy (bottom row) over the patch's top-left position, one column per model,
    one colour bar per row shared by its models; a single model's two maps side by side, each with its bar."""
    positionHovered = pyqtSignal(int, int)   # x, y of the patch's top-left corner

    def __init__(self, parent=None):
        super().__init__(parent)
        self.plots: dict[str, list[pg.PlotItem]] = {}
        self.images: dict[str, list[pg.ImageItem]] = {}
        self.bars: dict[str, pg.ColorBarItem] = {}
        self.results: list[BlindspotResult | None] = []
        self._n = -1
        self.build(1)
        self.scene().sigMouseMoved.connect(self._moved)

    def build(self, n: int) -> None:
        """(Re)create the panels for n models."""
        if n == self._n:
            return
        self._n = n
        # the old items stay referenced until the next rebuild: a paint already queued for them must not reach
        # items whose C++ side clear() deleted (see gui/comparison.py)
        self._retired = list(self.ci.items)
        self.clear()
        one = n == 1
        self.title = self.addLabel("", row=0, col=0, colspan=2 * len(METRICS) if one else n + 1)
        for m, (key, label) in enumerate(METRICS):
            row = 1 if one else 1 + m
            self.plots[key], self.images[key] = [], []
            for k in range(n):
                plot, img = image_panel(self, row, 2 * m if one else k)
                if k == 0:
                    set_label(plot, "left", "patch top edge y (px, + = down)")
                else:   # every panel shows the same positions: the first one's ticks say them
                    plot.getAxis("left").setStyle(showValues=False)
                if one or m == len(METRICS) - 1:
                    set_label(plot, "bottom", "patch left edge x (px, + = right)")
                self.plots[key].append(plot)
                self.images[key].append(img)
            bar = color_bar("viridis", label=label if one else f"{label}, every model")
            bar.setImageItem(self.images[key])
            self.addItem(bar, row=row, col=2 * m + 1 if one else n)
            self.bars[key] = bar
        self.grid = (2, 1) if one else (n, len(METRICS))   # panels across and down

    def show_results(self, shown: list[tuple[Entry, BlindspotResult | None]], title: str, mode: str) -> None:
        self.build(len(shown))
        self.results = [r if r is not None and r.images else None for _, r in shown]
        set_title(self.title, title)
        ref = next((r for r in self.results if r is not None), None)
        for key, label in METRICS:
            maps = [getattr(r, key) if r is not None else None for r in self.results]
            for (e, _), r, m, plot, img in zip(shown, self.results, maps, self.plots[key], self.images[key]):
                head = f"{e.name} ({e.padding})" if key == METRICS[0][0] or len(shown) == 1 else ""
                if r is None:
                    img.clear()
                    set_title(plot, head, "not computed")
                    continue
                img.setImage(m, autoLevels=False)
                img.setRect(grid_rect(axes(r)))
                plot.vb.setRange(grid_rect(axes(r)), padding=0)
                mean = float(np.nanmean(m))
                set_title(plot, head, f"mean {mean:.3f}" if key == "probability" else f"mean {100 * mean:.1f}%")
            set_levels(self.bars[key], value_levels(maps, mode))
        rect = grid_rect(axes(ref)) if ref is not None else None
        plots = [p for key, _ in METRICS for p in self.plots[key]]
        self.set_panels(plots, *self.grid, rect.width() / rect.height() if rect is not None else 1.0)

    def show_nothing(self, message: str) -> None:
        """No maps (no model or data yet): the title says why."""
        self.results = [None] * self._n
        set_title(self.title, message)
        for key, _ in METRICS:
            for plot, img in zip(self.plots[key], self.images[key]):
                img.clear()
                set_title(plot, "")

    def position_at(self, scene_pos) -> tuple[int, int] | None:
        """(x, y) of the position under a scene point, on any panel with a map."""
        for key, _ in METRICS:
            for plot, r in zip(self.plots[key], self.results):
                if r is not None and plot.vb.sceneBoundingRect().contains(scene_pos):
                    cell = grid_cell(axes(r), plot.vb.mapSceneToView(scene_pos))
                    if cell:
                        return int(r.xs[cell[0]]), int(r.ys[cell[1]])
        return None

    def _moved(self, pos) -> None:
        at = self.position_at(pos)
        if at:
            self.positionHovered.emit(*at)


def blindspot_caption(shown: list[tuple[Entry, BlindspotResult | None]], spec: BlindspotSpec, source: str) -> str:
    """What an exported figure says under it: models, patch, background, images and data set."""
    models = [(e.name, e.padding) for e, _ in shown]
    one = len(models) == 1
    done = [r for _, r in shown if r is not None]
    images = min(r.images for r in done) if done else 0
    precision = next((r.info.get("precision_text", "") for r in done), "")
    return figure_caption(
        model=models[0][0] if one else "", padding=models[0][1] if one else "",
        input=f"CIFAR-10 test images scaled to {spec.patch}x{spec.patch} px, pasted with their top-left corner "
              f"every {spec.stride} px of a 32x32 canvas, background {BACKGROUNDS[spec.background]}; maps over "
              "the patch's top-left corner (x right, y down)",
        data=source, images=images,
        extra="; ".join(t for t in ("" if one else "models " + ", ".join(f"{m} ({p} padding)" for m, p in models),
                                    precision) if t))


EXPORT_SIZE = (1100, 560)   # a figure file's size in screen pixels: two maps and their bars side by side


def write_blindspot_figures(models: list[tuple[str, str, BlindspotResult]], out, title: str,
                            stem: str = "blindspots", exts=(".png", ".svg"), mode: str = DATA_RANGE) -> list[Path]:
    """The blind-spot figure the panel exports, for (name, padding, result) of each model, as stem.png/.svg in
    folder out, drawn offscreen (the command line and the report); the settings come from the results."""
    r = models[0][2]
    spec = BlindspotSpec(r.patch, int(r.info["stride"]), str(r.info["background"]))
    shown = [(Entry(name, padding, None, ()), res) for name, padding, res in models]

    def show(fig: BlindspotFigure) -> None:
        fig.show_results(shown, title, mode)
        fig.caption = blindspot_caption(shown, spec, str(r.info.get("data", "")))

    size = (EXPORT_SIZE[0] if len(models) == 1 else 300 * len(models) + 200, EXPORT_SIZE[1] + 200 * (len(models) > 1))
    return write_offscreen(BlindspotFigure, size, show, [Path(out) / f"{stem}{ext}" for ext in exts],
                           "PadLens blind spots")


class BlindspotPanel(AnalysisPanel):
    def __init__(self, settings: QSettings, device, parent=None):
        super().__init__(settings, device, parent)
        self.cache: dict[tuple, BlindspotResult] = {}     # complete maps, per model and settings
        self.partial: dict[tuple, BlindspotResult] = {}   # the last job's unfinished maps
        self.job_keys: tuple = ()     # the keys of every model the last job was started for
        self.hovered: tuple[int, int] | None = None
        self._identities: dict[Path, str] = {}

        self.patch = spin(1, 32, DEFAULT_PATCH, " px")
        self.patch.setToolTip("Side of the scaled-down test image (bilinear, antialiased)")
        self.stride = spin(1, 32, DEFAULT_STRIDE, " px")
        self.stride.setToolTip("Step between the patch's positions; the far edge is included when it divides "
                               "32 - patch size")
        self.background = QComboBox()
        for k, text in BACKGROUNDS.items():
            self.background.addItem(k)
            self.background.setItemData(self.background.count() - 1, text, Qt.ItemDataRole.ToolTipRole)
        self.background.setCurrentText(DEFAULT_BACKGROUND)
        self.count = spin(1, 10000, DEFAULT_IMAGES)
        self.count.setToolTip("Test images, balanced over the classes")
        self.seed = spin(0, 10_000, 0)
        self.precision = QComboBox()
        self.precision.addItems(PRECISION_CHOICES)
        self.precision.setToolTip(f"auto: here {describe_precision(resolve_precision('auto', device), device)}")
        form = QFormLayout()
        form.addRow("Patch size", self.patch)
        form.addRow("Stride", self.stride)
        form.addRow("Background", self.background)
        form.addRow("Images (stratified)", self.count)
        form.addRow("Seed", self.seed)
        form.addRow("Precision", self.precision)
        self.variants = {p: QCheckBox(f"{p.stem} ({p.stem.removeprefix('vgg_')} padding)")
                         for p in padding_variants()}
        compare = QGroupBox("Compare with")
        cv = QVBoxLayout(compare)
        cv.addWidget(QLabel("The current model, and:"))
        for p, box in self.variants.items():
            box.setToolTip(str(p))
            cv.addWidget(box)
        if not self.variants:
            cv.addWidget(QLabel("no shipped padding variants found"))
        self.start_btn, self.cancel_btn = QPushButton("Start"), QPushButton("Cancel")
        self.start_btn.setToolTip("Compute the maps of every model not yet computed for these settings")
        self.cancel_btn.setEnabled(False)
        self.export_fig_btn, self.save_btn = QPushButton("Export figure..."), QPushButton("Save data...")
        self.bar = JobBar()
        self.status = QLabel(NEEDS_DATA)
        self.status.setWordWrap(True)
        box = QGroupBox("Blind spots")
        bv = QVBoxLayout(box)
        bv.addLayout(form)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_btn)
        buttons.addWidget(self.cancel_btn)
        bv.addLayout(buttons)
        bv.addWidget(self.bar)
        bv.addWidget(self.status)
        exports = QHBoxLayout()
        exports.addWidget(self.export_fig_btn)
        exports.addWidget(self.save_btn)
        bv.addLayout(exports)
        about = QLabel("Each test image is scaled down to the patch size and pasted at every position of a 32x32 "
                       "canvas; the maps show, per position of the patch's top-left corner, the probability the "
                       "model gives the true class and its accuracy, averaged over the images.")
        about.setWordWrap(True)
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.addWidget(box)
        lv.addWidget(compare)
        lv.addWidget(about)
        lv.addStretch(1)

        self.figure = BlindspotFigure()
        self.range_box = QComboBox()
        self.range_box.addItems(RANGES)
        self.range_box.setToolTip("Colour scale of both rows: the range of the values shown, or 0 to 1")
        scale_row = QHBoxLayout()
        scale_row.addWidget(QLabel("Colour scale"))
        scale_row.addWidget(self.range_box)
        scale_row.addStretch(1)
        self.readout = QLabel(READOUT_HINT)
        self.readout.setWordWrap(True)
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.addLayout(scale_row)
        rv.addWidget(self.figure, 1)
        rv.addWidget(self.readout)
        split = QSplitter()
        split.addWidget(scroll_column(left))
        split.addWidget(right)
        split.setChildrenCollapsible(False)
        split.setStretchFactor(1, 3)
        QHBoxLayout(self).addWidget(split)

        self._restore()
        self.start_btn.clicked.connect(self.start)
        self.cancel_btn.clicked.connect(self.cancel)
        self.export_fig_btn.clicked.connect(self.export_figure)
        self.save_btn.clicked.connect(self.save_data)
        self.figure.positionHovered.connect(self.hover)
        self.runner.idle.connect(self._refresh)   # running is False again: the status says how it ended
        self.range_box.currentTextChanged.connect(self._settings_changed)
        for w in (self.patch, self.stride, self.count, self.seed):
            w.valueChanged.connect(self._settings_changed)
        for w in (self.background, self.precision):
            w.currentTextChanged.connect(self._settings_changed)
        for b in self.variants.values():
            b.toggled.connect(self._settings_changed)
        self._refresh()

    # ---- inputs --------------------------------------------------------------------------------
    def set_model(self, loaded: LoadedModel, input_size: int) -> None:
        """The model and the input size it runs at; a job of the previous model is cancelled (its finished maps
        stay in memory)."""
        self.runner.cancel()
        self.loaded, self.input_size = loaded, input_size
        for p, box in self.variants.items():   # the current model is always computed: no second copy of it
            same = self._identity(p) == loaded.cache_id
            box.setEnabled(not same)
            box.setToolTip(f"{p}: the current model" if same else str(p))
        self._refresh()

    def set_input_size(self, size: int) -> None:
        self.input_size = size
        self._refresh()

    # ---- what the settings ask for -------------------------------------------------------------
    def spec(self) -> BlindspotSpec:
        return BlindspotSpec(self.patch.value(), self.stride.value(), self.background.currentText())

    def _identity(self, path: Path) -> str:
        if path not in self._identities:
            self._identities[path] = file_identity(path)
        return self._identities[path]

    def entries(self) -> list[Entry]:
        """The current model, then every ticked padding variant that is not that same checkpoint."""
        if self.loaded is None or self.data is None:
            return []
        settings = (self.spec(), self.count.value(), self.seed.value(), self.precision.currentText(),
                    self.input_size, self.data.fingerprint, str(self.device))
        own = self.loaded.cache_id or f"model {id(self.loaded.model)}"
        out = [Entry(self.loaded.name, self.loaded.padding_mode, None, (own, *settings))]
        for p, box in self.variants.items():
            if box.isChecked() and self._identity(p) != own:
                out.append(Entry(p.stem, p.stem.removeprefix("vgg_"), p, (self._identity(p), *settings)))
        return out

    def shown(self) -> list[tuple[Entry, BlindspotResult | None]]:
        return [(e, self.cache.get(e.key) or self.partial.get(e.key)) for e in self.entries()]

    def asked(self) -> int:
        """Images per model: the count set, or every test image when there are fewer."""
        return min(self.count.value(), len(self.data)) if self.data is not None else self.count.value()

    def _state(self) -> PanelState:
        shown = self.shown()
        return PanelState(self.data is not None, self.loaded is not None, self.runner.running,
                          self.job_keys == tuple(e.key for e, _ in shown), self.asked(),
                          tuple((e.name, r.images if r is not None else 0) for e, r in shown),
                          self.event, self.message, self.seconds)

    # ---- running -------------------------------------------------------------------------------
    def start(self) -> None:
        if self.loaded is None or self.data is None or self.runner.running:
            return
        entries = self.entries()
        todo = [e for e in entries if e.key not in self.cache]
        self.job_keys, self.event, self.message, self.seconds = tuple(e.key for e in entries), "", "", None
        if not todo:
            self._refresh()
            return
        try:
            precision = resolve_precision(self.precision.currentText(), self.device)
        except ValueError as e:
            self.event = f"Failed: {e}"
            self._refresh()
            return
        for e in todo:
            self.partial.pop(e.key, None)
        spec, data, n, seed, size, device = (self.spec(), self.data, self.count.value(), self.seed.value(),
                                             self.input_size, self.device)
        idx = stratified_subset(data.labels, n, seed)
        images, labels = data.images[idx], data.labels[idx]
        asked = len(idx)
        per_model = asked * (len(spec.offsets(32)) ** 2 + 1)
        # the current model's copy is taken here, on the GUI thread: one taken on the worker could catch a hook
        # the explorer has on the model at that moment
        own = fast_model(self.loaded.model, device, precision) if todo[0].path is None else None
        norm = self.loaded.norm

        def job(should_stop):
            for k, e in enumerate(todo):
                if e.path is None:
                    model, model_norm = own, norm
                else:   # a shipped checkpoint, opened here: nothing else holds it
                    lm = load_model(e.path, device)
                    model, model_norm = lm.model, lm.norm
                work = blindspot_job(model, images, labels, model_norm, spec, device, precision, size, data.mean_color,
                                     {"data": data.source, "seed": seed, "model": e.name, "padding": e.padding},
                                     should_stop)
                for ev in work:
                    if isinstance(ev, Progress):
                        yield Progress(k * per_model + ev.done, len(todo) * per_model,
                                       f"{e.name} ({k + 1} of {len(todo)}), {ev.message}")
                    elif isinstance(ev, Partial):
                        yield Partial((e.key, ev.value, asked))
                if should_stop():
                    return

        self.bar.start()
        self.start_btn.setEnabled(False)
        self.cancel_btn.setEnabled(True)
        self.runner.start(job, on_progress=self._progress, on_partial=self._partial, on_result=self._done,
                          on_cancelled=self._cancelled, on_error=self._failed, on_finished=self._finished)
        self._refresh()

    def _progress(self, done: int, total: int, msg: str) -> None:
        self.bar.progress(done, total)
        self.message = msg
        self._refresh(figure=False)

    def _partial(self, value) -> None:
        key, result, asked = value
        if result.images >= asked:
            self.cache[key] = result
            self.partial.pop(key, None)
        else:
            self.partial[key] = result
        self._refresh()

    def _done(self, _) -> None:
        self.event, self.seconds = "done", self.bar.elapsed
        self.bar.finish()

    def _cancelled(self, _) -> None:
        self.event = "cancelled"
        self.bar.cancelled()

    def _failed(self, msg: str) -> None:
        self.event = f"Failed: {msg}"
        QMessageBox.warning(self, "Blind spots failed", msg)

    def _finished(self) -> None:
        self.cancel_btn.setEnabled(False)
        self.message = ""

    # ---- showing -------------------------------------------------------------------------------
    def _settings_changed(self, *_) -> None:
        self._save()
        self._refresh()

    def _refresh(self, figure: bool = True) -> None:
        """The status line, and (figure) the maps of the current settings, from the state they describe."""
        self.status.setText(panel_status(self._state()))
        self.start_btn.setEnabled(not self.runner.running and self.loaded is not None and self.data is not None)
        if not figure:
            return
        shown = self.shown()
        has = [r for _, r in shown if r is not None]
        self.export_fig_btn.setEnabled(bool(has))
        self.save_btn.setEnabled(bool(has))
        if not shown:
            self.figure.show_nothing(self.status.text())
            self.figure.caption = ""
            self.readout.setText(READOUT_HINT)
            return
        title = self.title(shown)
        self.figure.show_results(shown, title, self.range_box.currentText())
        self.figure.caption = self.caption(shown)
        self.readout.setText(readout_text(shown, self.hovered) if has else READOUT_HINT)

    def title(self, shown) -> str:
        spec, n = self.spec(), self.asked()
        source = self.data.source if self.data is not None else ""
        lo = min((r.images if r is not None else 0) for _, r in shown)
        head = (f"Blind spots: {spec.patch}x{spec.patch} patch every {spec.stride} px, {spec.background} background, "
                f"{n} test images{jpeg_note(source)}")
        return head + (f"<br>so far {lo} of the {n} images in every map" if 0 < lo < n else "")

    def caption(self, shown) -> str:
        return blindspot_caption(shown, self.spec(), self.data.source if self.data is not None else "")

    def hover(self, x: int, y: int) -> None:
        self.hovered = (x, y)
        self.readout.setText(readout_text(self.shown(), self.hovered))

    # ---- export and settings -------------------------------------------------------------------
    def export_figure(self) -> Path | None:
        """The maps on screen as PNG (300 dpi), SVG or PDF; the path written, else None."""
        if not any(r is not None for _, r in self.shown()):
            return None
        path = ask_save_path(self, self.settings, "Export blind-spot maps", "blindspots.png", FIGURE_FILTERS)
        if path and run_export(self, path, lambda: write_figure(self.figure.scene(), path, "PadLens blind spots",
                                                                self.figure.caption)):
            return path
        return None

    def save_data(self) -> Path | None:
        """Every shown model's maps as CSV (a row per model and position) or NPZ; the path written, else None."""
        results = {e.name: r for e, r in self.shown() if r is not None}
        if not results:
            return None
        path = ask_save_path(self, self.settings, "Save blind-spot data", "blindspots.csv",
                             "CSV (*.csv);;NumPy archive (*.npz)")
        if path and run_export(self, path, lambda: save_data(path, results)):
            return path
        return None

    def _save(self) -> None:
        s = self.settings
        if s is None:
            return
        for key, val in (("patch", self.patch.value()), ("stride", self.stride.value()),
                         ("background", self.background.currentText()), ("images", self.count.value()),
                         ("seed", self.seed.value()), ("precision", self.precision.currentText()),
                         ("range", self.range_box.currentText()),
                         ("compare", [p.stem for p, b in self.variants.items() if b.isChecked()])):
            s.setValue(f"bs_{key}", val)

    def _restore(self) -> None:
        s = self.settings
        if s is None:
            return
        self.patch.setValue(int(s.value("bs_patch", DEFAULT_PATCH)))
        self.stride.setValue(int(s.value("bs_stride", DEFAULT_STRIDE)))
        self.background.setCurrentText(str(s.value("bs_background", DEFAULT_BACKGROUND)))
        self.count.setValue(int(s.value("bs_images", DEFAULT_IMAGES)))
        self.seed.setValue(int(s.value("bs_seed", 0)))
        self.precision.setCurrentText(str(s.value("bs_precision", "auto")))
        self.range_box.setCurrentText(str(s.value("bs_range", DATA_RANGE)))
        compare = s.value("bs_compare") or []
        compare = [compare] if isinstance(compare, str) else list(compare)
        for p, b in self.variants.items():
            b.setChecked(p.stem in compare)
