"""Shift equivariance per layer (core.equivariance) of the loaded model or of the shipped padding variants: a
layer x shift heatmap per model, side by side on one colour scale, computed in a worker with partial results
as it goes, and kept in memory per model and settings, so coming back to them shows them at once."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyqtgraph as pg
import torch
from PyQt6.QtCore import QRectF, QSettings, Qt
from PyQt6.QtWidgets import (QComboBox, QGroupBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout,
                             QWidget)

from padlens.core.checkpoint import checkpoint_labels, padding_variants
from padlens.core.data import Dataset, stratified_subset
from padlens.core.equivariance import (DEFAULT_GRID, DEFAULT_IMAGES, DEFAULT_MODE, EQUIVARIANCE_HELP, OUTPUT,
                                       EquivarianceResult, equivariance_title, models_job, save_equivariance)
from padlens.core.files import file_identity
from padlens.core.session import LoadedModel
from padlens.core.timing import fmt_duration, known_rate, measure_rate, rate_key
from padlens.core.translation import GridSpec
from padlens.gui.analyses_tab import ask_folder, job_copy
from padlens.gui.export import FIGURE_FILTERS, ask_save_path, run_export, write_figure, write_offscreen
from padlens.gui.grid_settings import GridSettings, scroll_column
from padlens.gui.style import (PanelFigure, color_bar, figure_caption, image_panel, jpeg_note, set_label, set_levels,
                               set_title, value_levels)
from padlens.gui.job_bar import JobBar
from padlens.gui.translation_tab import NEEDS_DATA
from padlens.gui.worker import JobRunner

CMAP = "viridis"
THIS, VARIANTS = "this model", "shipped padding variants"
CHUNK = 5            # images per pass of the job: a cancelled run keeps every shift for the images it finished
COMPARE_COST = 1.5   # run time / forward passes alone: the per-layer comparisons (vgg_zeros, 2-core CPU)
NA_GREY = (200, 200, 200, 255)
HINT = "Hover a cell for its layer, shift and similarity."
LEGEND = ("Rows: layers in the order they run (output last); columns: shifts, grouped by dy (white lines between "
          "the groups), dx from lowest to highest within each group. <span style='background:#c8c8c8'>&nbsp;Grey"
          "&nbsp;</span>: n/a, the shift is not a whole number of that layer's pixels (not a multiple of its "
          "stride) or moves its map out of frame. White: not computed yet.")


@dataclass(frozen=True)
class Request:
    """Everything that decides a result: the models (name, content identity), shifts, mode, images, input
    size and data set."""
    models: tuple[tuple[str, str], ...]
    spec: GridSpec
    mode: str
    images: int
    input_size: int
    data: tuple[str, int]

    @property
    def shifts(self) -> int:
        return len(self.spec.dxs) * len(self.spec.dys)


@dataclass
class Entry:
    """What a run of a request left: the results per model name, whether it ran to the end, how long."""
    results: dict[str, EquivarianceResult]
    complete: bool
    seconds: float


def status_text(has_data: bool, has_model: bool, req: Request | None, entry: Entry | None, running: bool,
                current: bool, estimate: float | None, timing: bool = False) -> str:
    """The status line, from the state it describes (timing: the model is being timed for the estimate)."""
    if not has_model:
        return "No model."
    if not has_data:
        return NEEDS_DATA
    if running and current:
        return "Computing: the heatmaps fill in as the images are done."
    other = " A run for other settings is under way (Cancel stops it)." if running else ""
    if entry is None:
        about = (f" (about {fmt_duration(estimate)})" if estimate is not None else
                 " (timing this model for an estimate...)" if timing else "")
        return f"Not computed for these settings: Start computes it{about}.{other}"
    if entry.complete:
        return f"{req.images} images per cell, computed in {fmt_duration(entry.seconds)}.{other}"
    done = {name: r.images for name, r in entry.results.items()}
    if len(req.models) == 1:
        k = next(iter(done.values()), 0)
        text = f"Cancelled after {k} of {req.images} images"
    else:
        parts = [f"{name} {done[name]}" for name, _ in req.models if name in done]
        rest = [name for name, _ in req.models if name not in done]
        text = (f"Cancelled: {', '.join(parts)} of {req.images} images"
                + (f"; {', '.join(rest)} not started" if rest else ""))
    return f"{text}; Start computes them all again.{other}"


def layer_label(result: EquivarianceResult, i: int) -> str:
    name, (h, w) = result.layers[i], result.sizes[i]
    return OUTPUT if name == OUTPUT else f"{name.removeprefix('model')} {result.types[i]} {h}x{w}"


def cell_text(name: str, result: EquivarianceResult, i: int, k: int) -> str:
    """The hover read-out of one cell: model, layer, shift, cosine and its images, or why there is none."""
    dx, dy = (int(v) for v in result.shifts[k])
    head = f"{name}, {layer_label(result, i)}, dx={dx:+d}, dy={dy:+d}: "
    if not result.aligned[i, k]:
        stride = result.stride(i)
        why = f"not a multiple of its stride ({stride:g} px)" if stride and (dx % stride or dy % stride) else \
            "its map moves out of frame"
        return head + f"n/a ({why})"
    if not result.counts[i, k]:
        return head + "not computed yet"
    return head + f"cosine {result.similarity[i, k]:.4f} over {int(result.counts[i, k])} images"


class EquivarianceFigure(PanelFigure):
    """A layer x shift heatmap per model (an n/a layer of grey under it), side by side on one colour bar."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.built = -1   # models the panels are made for
        self.plots, self.images, self.greys, self.gaps = [], [], [], []

    def build(self, n: int) -> None:
        if n == self.built:
            return
        self.built = n
        self._retired = list(self.ci.items)   # alive until the next rebuild (see ComparisonTab._build)
        self.clear()
        self.title = self.addLabel("", row=0, col=0, colspan=max(n, 1) + 1)
        self.plots, self.images, self.greys, self.gaps = [], [], [], []
        for k in range(n):
            plot, img = image_panel(self, 1, k)
            grey = pg.ImageItem()
            grey.setZValue(-1)
            plot.addItem(grey)
            gaps = pg.PlotCurveItem(pen=pg.mkPen("w", width=1.5), connect="pairs")   # between dy groups
            plot.addItem(gaps)
            self.gaps.append(gaps)
            set_label(plot, "bottom", "dy (px)")
            if k:
                plot.getAxis("left").setStyle(showValues=False)
            self.plots.append(plot)
            self.images.append(img)
            self.greys.append(grey)
        self.bar_item = color_bar(CMAP, label="cosine similarity")
        self.bar_item.setImageItem(self.images)
        self.addItem(self.bar_item, row=1, col=max(n, 1))

    def draw(self, names: list[str], shown: dict[str, EquivarianceResult], title: str, note: str,
             images: int) -> None:
        """A panel per name, the results of shown; images: what each result is to reach (fewer: partial)."""
        self.build(len(names))
        set_title(self.title, title, note)
        first = next(iter(shown.values()), None)
        sims = [r.similarity for r in shown.values()]
        for item in [*self.plots, self.bar_item]:   # empty axes until a first result: the title says why
            item.setVisible(bool(shown))
        for name, plot, img, grey in zip(names, self.plots, self.images, self.greys):
            r = shown.get(name)
            if r is None:
                img.clear()
                grey.clear()
                set_title(plot, name, "not computed")
                continue
            rect = QRectF(-0.5, -0.5, len(r.shifts), len(r.layers))
            img.setImage(r.similarity, autoLevels=False)   # NaN (n/a, not computed yet) stays transparent
            img.setRect(rect)
            na = np.zeros((*r.aligned.shape, 4), np.uint8)
            na[~r.aligned] = NA_GREY
            grey.setImage(na)
            grey.setRect(rect)
            plot.vb.setRange(rect, padding=0)
            partial = ("" if r.images >= images else f", so far {r.images} of {images} images" if r.images
                       else ", first images under way")
            set_title(plot, name, f"{r.info.get('padding', '')} padding{partial}")
        if first is not None:
            self.plots[0].getAxis("left").setTicks([[(i, layer_label(first, i)) for i in range(len(first.layers))]])
            dys = first.shifts[:, 1]
            groups = [(float(np.flatnonzero(dys == dy).mean()), f"{int(dy):+d}") for dy in np.unique(dys)]
            ends = {0, len(groups) - 1, int(np.argmin(np.abs(np.unique(dys))))}   # always labelled; the others
            major = [t for j, t in enumerate(groups) if j in ends]             # only where there is room
            minor = [t for j, t in enumerate(groups) if j not in ends]
            edges = np.repeat(np.flatnonzero(np.diff(dys)) + 0.5, 2)
            rows = np.tile([-0.5, len(first.layers) - 0.5], len(edges) // 2)
            for plot, gaps in zip(self.plots, self.gaps):
                plot.getAxis("bottom").setTicks([major, minor])
                gaps.setData(edges, rows)
        set_levels(self.bar_item, value_levels(sims) if sims else (0.0, 1.0))
        self.set_panels(self.plots, max(len(self.plots), 1), 1, None)
        self.caption = equivariance_caption(shown)


def equivariance_caption(shown: dict[str, EquivarianceResult]) -> str:
    """What an exported figure says under it, from the results themselves: shifts, input, data, models."""
    if not shown:
        return ""
    r = next(iter(shown.values()))
    dxs, dys = np.unique(r.shifts[:, 0]), np.unique(r.shifts[:, 1])
    step = int(np.diff(dxs).min()) if len(dxs) > 1 else int(np.diff(dys).min()) if len(dys) > 1 else 0
    size = int(r.info.get("input_size", 32))
    models = ", ".join(f"{name} ({x.info.get('padding', '?')} padding)" for name, x in shown.items())
    return figure_caption(
        input=f"{r.info.get('mode')} shifts dx {int(dxs[0]):+d} to {int(dxs[-1]):+d}, dy {int(dys[0]):+d} to "
              f"{int(dys[-1]):+d}" + (f", step {step} px" if step else "") + f"; input {size}x{size}",
        data=str(r.info.get("data", "")), images=min(x.images for x in shown.values()),
        extra=f"models {models}; rows: layers (output last), columns: shifts grouped by dy, dx growing within "
              "each; colour: cosine similarity of the shifted image's features with the shifted features "
              "(one scale for all); grey: n/a (not a multiple of the layer's stride, or out of frame)")


EXPORT_SIZE = (1100, 620)   # a figure file's size in screen pixels, for one model; wider for more


def write_equivariance_figures(results: dict[str, EquivarianceResult], out, stem: str = "equivariance",
                               exts=(".png", ".svg")) -> list[Path]:
    """The panel's figure of results ({model name: result}) as stem.png/.svg in folder out, drawn offscreen (the
    command line and the report); the title from the results (core.equivariance.equivariance_title's words)."""
    r = next(iter(results.values()))
    name = next(iter(results)) if len(results) == 1 else "Shift equivariance per layer"
    title = equivariance_title(name, r)

    def show(fig: EquivarianceFigure) -> None:
        fig.draw(list(results), results, title, "one colour scale for all", max(x.images for x in results.values()))

    size = (EXPORT_SIZE[0] + 500 * (len(results) - 1), EXPORT_SIZE[1])
    return write_offscreen(EquivarianceFigure, size, show, [Path(out) / f"{stem}{e}" for e in exts],
                           "PadLens equivariance")


class EquivariancePanel(QWidget):
    """See gui.analyses_tab for the panel interface."""

    def __init__(self, settings: QSettings | None = None, device=None, parent=None):
        super().__init__(parent)
        self.settings, self.device = settings, device
        self.runner, self.timer = JobRunner(self), JobRunner(self)
        self.loaded: LoadedModel | None = None
        self.input_size = 32
        self.data: Dataset | None = None
        self.cache: dict[Request, Entry] = {}
        self.run_req: Request | None = None      # the request of the job started last
        self.shown: dict[str, EquivarianceResult] = {}
        self.hovered: tuple[int, int, int] | None = None   # (panel, layer, shift) the read-out describes
        self._rates: dict[tuple, float] = {}     # rows per second, comparisons included, learned from runs
        self._ids: dict[tuple, str] = {}
        self._quiet = False   # set by cancel(): start no job on its own

        g = self.grid = GridSettings(DEFAULT_GRID.x_min, DEFAULT_GRID.x_max, DEFAULT_GRID.step, DEFAULT_IMAGES)
        g.count.setToolTip("Test images, balanced over the classes (the first of every class, then the second, ...)")
        g.form.setRowVisible(g.precision, False)   # always fp32: the cosines near 1 are what is read
        g.mode.setCurrentText(DEFAULT_MODE)
        if settings is not None:
            g.restore(settings, "eq")
            if settings.value("eq_mode") is None:
                g.mode.setCurrentText(DEFAULT_MODE)
        self.models_box = QComboBox()
        self.models_box.addItem(THIS)
        self.models_box.addItem(VARIANTS)
        self.models_box.setItemData(0, "The model open in the window", Qt.ItemDataRole.ToolTipRole)
        found = padding_variants()
        self.models_box.setItemData(1, ", ".join(p.stem for p in found) if found else
                                    "No shipped padding variant found", Qt.ItemDataRole.ToolTipRole)
        self.models_box.model().item(1).setEnabled(bool(found))
        if settings is not None and settings.value("eq_models") == VARIANTS and found:
            self.models_box.setCurrentIndex(1)
        g.form.insertRow(0, "Models", self.models_box)
        self.start_btn, self.cancel_btn = QPushButton("Start"), QPushButton("Cancel")
        self.start_btn.setToolTip("Compute the heatmaps for these settings (kept for this session)")
        self.cancel_btn.setEnabled(False)
        self.bar = JobBar()
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.export_btn, self.save_btn = QPushButton("Export figure..."), QPushButton("Save data...")
        self.export_btn.setToolTip("The heatmaps on screen as PNG (300 dpi), SVG or PDF, with their caption")
        self.save_btn.setToolTip("Per model: equivariance_<model>.npz and .csv (the layer x shift table), "
                                 "into a folder")
        box = QGroupBox("Shift equivariance per layer")
        bv = QVBoxLayout(box)
        bv.addLayout(g.form)
        row = QHBoxLayout()
        row.addWidget(self.start_btn)
        row.addWidget(self.cancel_btn)
        bv.addLayout(row)
        bv.addWidget(self.bar)
        bv.addWidget(self.status)
        row = QHBoxLayout()
        row.addWidget(self.export_btn)
        row.addWidget(self.save_btn)
        bv.addLayout(row)
        help_label = QLabel(EQUIVARIANCE_HELP)
        help_label.setWordWrap(True)
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.addWidget(box)
        lv.addWidget(help_label)
        lv.addStretch(1)

        self.figure = EquivarianceFigure()
        self.figure.setMinimumHeight(260)
        self.readout = QLabel(HINT)
        self.readout.setWordWrap(True)
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.legend = QLabel(LEGEND)
        self.legend.setWordWrap(True)
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.addWidget(self.figure, 1)
        rv.addWidget(self.readout)
        rv.addWidget(self.legend)
        outer = QHBoxLayout(self)
        outer.addWidget(scroll_column(left, 340))
        outer.addWidget(right, 1)

        self.start_btn.clicked.connect(self.start)
        self.cancel_btn.clicked.connect(self.cancel)
        self.export_btn.clicked.connect(self.export_figure)
        self.save_btn.clicked.connect(self.save_data)
        self.figure.scene().sigMouseMoved.connect(self._hover)
        self.runner.idle.connect(self.refresh)
        self.timer.idle.connect(self.refresh)
        for w in g.value_widgets:
            w.valueChanged.connect(self.refresh)
        g.mode.currentTextChanged.connect(self.refresh)
        self.models_box.currentTextChanged.connect(self.refresh)
        self.refresh()

    # ---- the panel interface ---------------------------------------------------------------------
    def set_model(self, loaded: LoadedModel, input_size: int) -> None:
        self.loaded, self.input_size, self._quiet = loaded, input_size, False
        self._changed()

    def set_data(self, test: Dataset | None) -> None:
        self.data = test
        self._changed()

    def set_input_size(self, size: int) -> None:
        if size != self.input_size:
            self.input_size = size
            self._changed()

    def cancel(self) -> None:
        """Stop both jobs; no timing starts again on its own until the panel shows or gets a model (a closing
        window cancels, then waits for the runners)."""
        self._quiet = True
        self.runner.cancel()
        self.timer.cancel()

    def _changed(self) -> None:
        """Model, data or input size changed: a run for what is no longer asked is cancelled (its results
        still go to the cache), the screen follows."""
        if self.runner.running and self.run_req != self.request():
            self.runner.cancel()
        self.refresh()

    # ---- the request and the state ---------------------------------------------------------------
    def _identity(self, path: Path) -> str:
        st = path.stat()
        key = (str(path), st.st_mtime_ns, st.st_size)
        if key not in self._ids:
            self._ids[key] = file_identity(path)
        return self._ids[key]

    def model_entries(self) -> list[tuple[str, object, str]]:
        """(name, LoadedModel or checkpoint path, identity) of the models asked for."""
        if self.models_box.currentText() == VARIANTS:
            paths = padding_variants()
            return [(name, str(p), self._identity(p)) for name, p in zip(checkpoint_labels(paths), paths)]
        if self.loaded is None:
            return []
        return [(self.loaded.name, self.loaded, self.loaded.cache_id or f"id {id(self.loaded)}")]

    def request(self) -> Request | None:
        entries = self.model_entries()
        if not entries or self.data is None:
            return None
        return Request(tuple((name, ident) for name, _, ident in entries), self.grid.spec(),
                       self.grid.mode.currentText(),
                       min(self.grid.count.value(), len(self.data)), self.input_size,
                       (self.data.source, len(self.data)))

    def _device(self) -> torch.device:
        model = self.loaded.model if self.loaded is not None else None
        return next((p.device for p in model.parameters()), torch.device("cpu")) if model is not None else \
            torch.device("cpu")

    def _rate_key(self, ident: str, size: int) -> tuple:
        return rate_key(ident, self._device(), "fp32", size)

    def estimate(self, req: Request | None) -> float | None:
        """Seconds the request takes: each model at its rate learned from a run here, else at the open
        model's forward passes per second (timed in the background) with the comparisons' cost."""
        if req is None or self.loaded is None:
            return None
        forward = known_rate(self._rate_key(self.loaded.cache_id or f"id {id(self.loaded)}", req.input_size))
        total = 0.0
        for _, ident in req.models:
            rate = self._rates.get(self._rate_key(ident, req.input_size)) or (forward and forward / COMPARE_COST)
            if not rate:
                return None
            total += req.images * (req.shifts + 1) / rate
        return total

    def _time_model(self) -> None:
        """Time the open model (once per model, device and input size) for the estimate, while shown."""
        if (self.loaded is None or self._quiet or not self.isVisible() or self.runner.running
                or self.timer.running):
            return
        key = self._rate_key(self.loaded.cache_id or f"id {id(self.loaded)}", self.input_size)
        if known_rate(key) is not None:
            return
        model = job_copy(self.loaded.model)
        norm, device, size = self.loaded.norm, self._device(), self.input_size
        self.timer.start(lambda stop: measure_rate(model, norm, device, "fp32", size, 64, key, should_stop=stop))

    def current(self) -> bool:
        """Whether the running (or last) job computes what the panel is set to now."""
        return self.run_req is not None and self.run_req == self.request()

    def refresh(self, *_) -> None:
        """The heatmaps and the status line for the current settings: what is kept for them, or the partial
        results of their run, or nothing."""
        self._time_model()
        req = self.request()
        entry = self.cache.get(req) if req is not None else None
        running = self.runner.running
        if entry is not None:
            self.show_results(entry.results, req)
        elif not (running and self.current()):
            self.show_results({}, req)
        self.status.setText(status_text(self.data is not None, self.loaded is not None or
                                        self.models_box.currentText() == VARIANTS, req, entry, running,
                                        self.current(), self.estimate(req), self.timer.running))
        self.start_btn.setEnabled(req is not None and not running)
        self.cancel_btn.setEnabled(running)
        if not running:
            if entry is not None and entry.complete:
                self.bar.finish()
            else:
                self.bar.idle()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._quiet = False
        self.refresh()

    # ---- running ---------------------------------------------------------------------------------
    def start(self) -> bool:
        req = self.request()
        if req is None or self.runner.running:
            return False
        self.timer.cancel()
        if self.settings is not None:
            self.grid.save(self.settings, "eq")
            self.settings.setValue("eq_models", self.models_box.currentText())
        models = [(name, dataclasses.replace(m, model=job_copy(m.model)) if isinstance(m, LoadedModel) else m)
                  for name, m, _ in self.model_entries()]
        data = self.data
        images = data.images[stratified_subset(data.labels, req.images, 0)]
        device = self._device()
        info = {"data": data.source, "seed": 0}

        def job(stop):
            return (yield from models_job(models, images, req.spec, req.mode, device, req.input_size, CHUNK,
                                          fill_color=data.mean_color, info=info, should_stop=stop))

        self.run_req = req
        self.bar.start()
        self.runner.start(job, on_progress=self._progress, on_partial=self._partial, on_result=self._done,
                          on_cancelled=self._cancelled, on_error=self._failed)
        self.show_results({}, req)
        self.refresh()
        return True

    def _progress(self, done: int, total: int, msg: str) -> None:
        self.bar.progress(done, total)
        if self.current():
            self.status.setText(f"Computing: {msg}.")

    def _partial(self, results: dict) -> None:
        if self.current():
            self.show_results(results, self.run_req)

    def _keep(self, results: dict, complete: bool) -> None:
        req, seconds = self.run_req, self.bar.elapsed
        if complete:
            rows = req.images * (req.shifts + 1) * len(req.models)
            for _, ident in req.models:
                self._rates[self._rate_key(ident, req.input_size)] = rows / max(seconds, 1e-9)
        if results and any(r.counts.any() for r in results.values()):
            self.cache[req] = Entry(dict(results), complete, seconds)

    def _done(self, results: dict) -> None:
        self._keep(results, True)

    def _cancelled(self, results) -> None:
        self._keep(results or {}, False)

    def _failed(self, msg: str) -> None:
        self.status.setText(f"Failed: {msg}")

    # ---- showing ---------------------------------------------------------------------------------
    def show_results(self, results: dict[str, EquivarianceResult], req: Request | None) -> None:
        names = [name for name, _ in req.models] if req is not None else []
        self.shown = {name: results[name] for name in names if name in results}
        if not self.isVisible() and self.figure.built < 0:
            return   # drawn when first shown (showEvent)
        if req is None:
            title = note = ""
        else:
            sized = f", input resized to {req.input_size}x{req.input_size}" if req.input_size != 32 else ""
            title = (f"Shift equivariance per layer: {req.mode} shifts, {req.images} test images of "
                     f"CIFAR-10{jpeg_note(req.data[0])}{sized}")
            note = "one colour scale for all" if self.shown else "not computed for these settings"
        self.figure.draw(names, self.shown, title, note, req.images if req is not None else 0)
        has = bool(self.shown)
        self.export_btn.setEnabled(has)
        self.save_btn.setEnabled(has)
        if self.hovered is not None and has:
            self._readout(*self.hovered)
        elif not has:
            self.readout.setText(HINT)

    @property
    def plots(self) -> list:
        return self.figure.plots

    def _hover(self, pos) -> None:
        for p, plot in enumerate(self.figure.plots):
            if not plot.vb.sceneBoundingRect().contains(pos):
                continue
            names = list(self.shown)
            r = self.shown.get(names[p]) if p < len(names) else None
            if r is None:
                return
            v = plot.vb.mapSceneToView(pos)
            i, k = int(round(v.y())), int(round(v.x()))
            if 0 <= i < len(r.layers) and 0 <= k < len(r.shifts):
                self.hovered = (p, i, k)
                self._readout(p, i, k)
            return

    def _readout(self, p: int, i: int, k: int) -> None:
        names = list(self.shown)
        if p < len(names):
            self.readout.setText(cell_text(names[p], self.shown[names[p]], i, k))

    # ---- export ----------------------------------------------------------------------------------
    def export_figure(self):
        if not self.shown:
            return None
        path = ask_save_path(self, self.settings, "Export equivariance heatmaps", "equivariance.png", FIGURE_FILTERS)
        if path and run_export(self, path, lambda: write_figure(self.figure.scene(), path, "PadLens equivariance",
                                                                self.figure.caption)):
            self.status.setText(f"Wrote {path}")
            return path
        return None

    def save_data(self) -> list:
        if not self.shown:
            return []
        stems = {name: "equivariance_" + name.replace("/", "_") for name in self.shown}
        folder = ask_folder(self, self.settings, "Save equivariance data into folder",
                            [f"{s}{ext}" for s in stems.values() for ext in (".npz", ".csv")])
        if folder is None:
            return []
        written: list = []
        ok = run_export(self, folder, lambda: written.extend(
            p for name, r in self.shown.items()
            for p in save_equivariance(r, folder, stems[name])))
        if ok:
            self.status.setText(f"Wrote {len(written)} files to {folder}")
        return written
