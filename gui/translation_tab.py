"""Translation robustness tab: grid settings, a background run that fills the heatmaps as it goes,
hover read-out, shifted examples on click, on-disk cache and export."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from PyQt6.QtCore import QSettings, Qt
from PyQt6.QtWidgets import (QComboBox, QDoubleSpinBox, QGridLayout, QGroupBox, QHBoxLayout, QLabel, QMessageBox,
                             QPushButton, QSplitter, QVBoxLayout, QWidget)

from padlens.core.activations import resize_input
from padlens.core.data import Dataset, stratified_subset
from padlens.core.device import autocast, hardware
from padlens.core.files import atomic_write
from padlens.core.session import LoadedModel
from padlens.core.shifts import SHIFT_MODES, shift, visible_fraction
from padlens.core.grid_cache import GridRequest
from padlens.core.timing import fewer_images, fmt_duration, known_rate
from padlens.core.translation import GridResult, GridSpec, grid_cost, pitfalls, shift_period
from padlens.core.worst_case import RADII, format_worst_case, worst_case
from padlens.gui.export import FIGURE_FILTERS, ask_save_path, confirm_overwrite, run_export, write_figure
from padlens.gui.figures import HeatmapFigure, grid_caption
from padlens.gui.grid_settings import GridSettings, scroll_column, spin
from padlens.gui.job_bar import JobBar
from padlens.gui.input_panel import pixmap_of
from padlens.gui.style import RANGES
from padlens.gui.worker import JobRunner
from padlens.gui.worst_case_figure import WorstCaseFigure, summary_line, write_worst_case_figure

N_EXAMPLES = 6


def example_indices(labels: torch.Tensor, seed: int) -> torch.Tensor:
    """N_EXAMPLES images of different classes, which classes chosen by the seed: the stratified order
    alone is round-robin from class 0, so the last classes would never show."""
    order, classes = stratified_subset(labels, None, seed), len(labels.unique())
    first_round = order[:classes][torch.randperm(classes, generator=torch.Generator().manual_seed(seed))]
    return torch.cat([first_round, order[classes:]])[:N_EXAMPLES]


NEEDS_DATA = "Needs the CIFAR-10 test split: open a data folder (Ctrl+D) or download it on the Feature maps tab."
NOT_COMPUTED = "Not computed for these settings yet: Start (Ctrl+Return) computes it."
RUNNING = "Running: a first heatmap from a few images (up to one per class), refined as more are done."
READOUT_HINT = "Hover a cell for its numbers; click it for shifted examples."
WORST_CASE_LATER = "Worst case over shifts: shown with the grid's heatmaps."


@dataclass(frozen=True)
class TabState:
    """What the Translation tab's status lines describe; each line is a function of it."""
    has_data: bool
    running: bool                 # a grid job is under way
    current: bool                 # ... and it computes what the tab is set to now
    shown: bool                   # a grid is on screen
    event: str = ""               # the last thing that happened to the grid of these settings, in words
    notes: tuple[str, ...] = ()   # what happened to cache files


def translation_status(s: TabState) -> str:
    """The line under the progress bar."""
    if not s.has_data:
        return NEEDS_DATA
    if s.running and not s.current:
        return "Running for earlier settings (Cancel stops it); the grid for these is not computed yet."
    if s.event:
        return s.event
    if s.running:
        return RUNNING
    return "" if s.shown else NOT_COMPUTED


def figure_message(s: TabState) -> str:
    """What the heatmaps say while they show no grid."""
    if not s.has_data:
        return NEEDS_DATA
    if s.running:
        return ("Computing: the first heatmap shows once the first images (one per class) are done." if s.current
                else "Running for earlier settings; the grid for these is not computed yet.")
    return " ".join([*(n[0].upper() + n[1:] + "." for n in s.notes), NOT_COMPUTED])


def worst_case_path(path: Path) -> Path:
    """Where an export of the heatmaps at path puts the worst case over shifts: <name>_worst_case.<ext>."""
    return path.with_name(f"{path.stem}_worst_case{path.suffix}")


def images_per_cell(r: GridResult) -> str:
    """'10 images per cell', or '10 to 20 images per cell' where a stop left the cells with different counts."""
    lo, hi = int(r.count.min()), int(r.count.max())
    return f"{lo} images per cell" if lo == hi else f"{lo} to {hi} images per cell"


def heatmap_title(r: GridResult) -> str:
    """The grid's own title and, while it holds fewer images than asked for (running, cancelled), how many, in
    the status line's words."""
    title, asked = r.info.get("title", ""), r.info.get("images")
    if not asked or "precision_reached" in r.info or r.images >= int(asked):
        return title
    return f"{title}<br>so far {images_per_cell(r)} of the {int(asked)}"


def readout_text(r: GridResult | None, cell: tuple[int, int] | None, running: bool = False) -> str:
    """The hover read-out: the numbers of the cell under the mouse in the grid on screen, else the hint."""
    if r is None or cell is None:
        return READOUT_HINT
    dx, dy = cell
    try:
        i, j = r.cell(dx, dy)
    except KeyError:
        return READOUT_HINT
    if not r.count[i, j]:
        why = "the run has not reached this cell yet" if running else "the run was cancelled before this cell"
        return f"dx={dx:+d}, dy={dy:+d}: not computed ({why})"
    mode = r.info.get("mode", "affine")
    (acc_lo, acc_hi), (cons_lo, cons_hi) = r.accuracy_ci, r.consistency_ci
    return (f"dx={dx:+d}, dy={dy:+d}: accuracy {100 * r.accuracy[i, j]:.1f}% (95% CI {100 * acc_lo[i, j]:.1f}-"
            f"{100 * acc_hi[i, j]:.1f}%, {int(r.count[i, j])} images), loss {r.loss[i, j]:.3f}, "
            f"consistency {100 * r.consistency[i, j]:.1f}% "
            f"(95% CI {100 * cons_lo[i, j]:.1f}-{100 * cons_hi[i, j]:.1f}%), "
            f"{100 * visible_fraction(dx, dy, 32, mode):.0f}% of the image still in frame")


def estimate_text(spec: GridSpec, mode: str, images: int, size: int, rate: float | None, where: str,
                  bounded: bool = False) -> str:
    """The line beside Start: what the grid takes here, from a quick timing of this model on this device
    (`rate`, forward passes per second; None while it is measured); a long grid comes with an image count
    that fits in a few minutes."""
    if rate is None:
        return f"Timing this model on this {where}..."
    cost = grid_cost(spec, mode, images, size)
    bound = "At most" if bounded else "About"
    text = (f"{bound} {fmt_duration(cost.rows / rate)} on this {where}; the first heatmap after about "
            f"{fmt_duration(cost.first_rows / rate)}")
    return text + fewer_images(lambda n: grid_cost(spec, mode, n, size).rows / rate, images) + "."


class TranslationTab(QWidget):
    """Holds only what the main window pushes to it (model, data, input size, settings): it never reads
    its parent."""
    def __init__(self, settings: QSettings | None = None, parent=None):
        super().__init__(parent)
        self.settings = settings
        self.runner = JobRunner(self)
        self.loaded: LoadedModel | None = None
        self.input_size = 32   # the explorer's (View > Input size): grids resize their shifted inputs to it too
        self.data: Dataset | None = None
        self.result: GridResult | None = None
        self.subset: torch.Tensor | None = None
        self.req: GridRequest | None = None   # the grid of the job started last
        self.shown_req: GridRequest | None = None   # the grid on screen
        self.event = ""                              # translation_status's TabState.event
        self.hovered: tuple[int, int] | None = None  # the cell the read-out describes
        self.timer = JobRunner(self)                 # times the model for the estimate beside Start

        # default +-16 px step 4 over 100 images: 8,200 forward passes of the flagship, 820 before the first
        # heatmap; at the 100-120 a second measured on the 2-core AVX2 CPU, under 10 s to the first heatmap and
        # about 75 s in all. The estimate beside Start prices a finer or larger grid before it runs. The main
        # window tells it the device (set_device).
        self.grid = GridSettings(-16, 16, 4, 100)
        g = self.grid
        self.lo, self.hi, self.step, self.count, self.mode, self.precision = (g.lo, g.hi, g.step, g.count, g.mode,
                                                                             g.precision)
        self.seed = spin(0, 10_000, 0)
        self.until_ci = QDoubleSpinBox()   # 0 = off: every image
        self.until_ci.setRange(0, 20)
        self.until_ci.setSingleStep(0.5)
        self.until_ci.setDecimals(1)
        self.until_ci.setPrefix("± ")
        self.until_ci.setSuffix(" points")
        self.until_ci.setSpecialValueText("off (all images)")
        self.until_ci.setToolTip("Stop adding images once every cell's 95% confidence interval of the accuracy is "
                                 "this narrow either side (e.g. ± 2 points): cells near 50% need about 2,400 "
                                 "images for that, cells near 0% or 100% far fewer")
        self.start_btn, self.cancel_btn = QPushButton("Start"), QPushButton("Cancel")
        self.start_btn.setShortcut("Ctrl+Return")
        self.start_btn.setToolTip("Compute the grid (Ctrl+Return); a cached grid opens at once")
        self.cancel_btn.setEnabled(False)
        self.export_fig_btn, self.export_data_btn = QPushButton("Export figure..."), QPushButton("Export numbers...")
        self.bar = JobBar()
        self.status = QLabel(NEEDS_DATA)
        self.status.setWordWrap(True)
        self.estimate = QLabel()
        self.estimate.setWordWrap(True)

        form = g.form
        form.addRow("Seed", self.seed)
        form.addRow("Stop at", self.until_ci)
        buttons = QHBoxLayout()
        for b in (self.start_btn, self.cancel_btn):
            buttons.addWidget(b)
        exports = QHBoxLayout()
        for b in (self.export_fig_btn, self.export_data_btn):
            exports.addWidget(b)
        settings = QGroupBox("Grid")
        sv = QVBoxLayout(settings)
        sv.addLayout(form)
        sv.addLayout(buttons)
        sv.addWidget(self.estimate)
        sv.addWidget(self.bar)
        sv.addWidget(self.status)
        sv.addLayout(exports)

        self.readout = QLabel(READOUT_HINT)
        self.readout.setWordWrap(True)
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.worst = QLabel()   # one line on the worst case over shifts; its figure is under the heatmaps
        self.worst.setTextFormat(Qt.TextFormat.PlainText)
        self.worst.setWordWrap(True)
        self.worst.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.pitfalls = QLabel()
        self.pitfalls.setWordWrap(True)
        self.pitfalls.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        pit_box = QGroupBox("What can mislead")
        QVBoxLayout(pit_box).addWidget(self.pitfalls)
        self.examples_box = QGroupBox("Shifted examples")
        self.examples = QGridLayout(self.examples_box)
        self.example_labels = []
        for k in range(N_EXAMPLES):
            img, cap = QLabel(), QLabel()
            img.setFixedSize(72, 72)
            cap.setWordWrap(True)
            cap.setAlignment(Qt.AlignmentFlag.AlignCenter)
            self.examples.addWidget(img, 0, k)
            self.examples.addWidget(cap, 1, k)
            self.example_labels.append((img, cap))

        left = QWidget()
        lv = QVBoxLayout(left)
        lv.addWidget(settings)
        lv.addWidget(pit_box)
        lv.addStretch(1)
        self.figure = HeatmapFigure()
        self.range_box = QComboBox()
        self.range_box.addItems(RANGES)
        self.range_box.setToolTip("Accuracy and consistency colour scale: the range of the values shown (default: "
                                  "an 84-95% spread is not one colour) or 0 to 1; each panel says which")
        self.range_box.currentTextChanged.connect(self.figure.set_range_mode)
        scale_row = QHBoxLayout()
        scale_row.addWidget(QLabel("Colour scale"))
        scale_row.addWidget(self.range_box)
        scale_row.addStretch(1)
        r = max(RADII)
        self.radii_btn = QPushButton(f"Grid for every radius 1-{r} px")
        self.radii_btn.setToolTip(f"The worst case over shifts measures radius r only where the grid has a shift "
                                  f"at r: this sets a step-1 grid within \u00b1{r} px ({(2 * r + 1) ** 2} shifts; "
                                  f"the estimate beside Start says what it takes), then Start computes it")
        self.radii_btn.clicked.connect(self.grid_for_every_radius)
        scale_row.addWidget(self.radii_btn)
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.addLayout(scale_row)
        self.worst_figure = WorstCaseFigure()
        self.worst_figure.setMinimumHeight(160)   # at 1280x720 its plots keep a readable height
        self.figures = QSplitter(Qt.Orientation.Vertical)   # the heatmaps over the worst case: drag to trade room
        self.figures.addWidget(self.figure)
        self.figures.addWidget(self.worst_figure)
        self.figures.setChildrenCollapsible(False)
        self.figures.setStretchFactor(0, 3)
        self.figures.setStretchFactor(1, 2)
        rv.addWidget(self.figures, 1)
        rv.addWidget(self.readout)
        rv.addWidget(self.worst)
        rv.addWidget(self.examples_box)
        self.split = QSplitter()
        self.split.addWidget(scroll_column(left))   # scrolls rather than squeezing the form at 1280x720
        self.split.addWidget(right)
        self.split.setChildrenCollapsible(False)
        self.split.setStretchFactor(1, 3)
        QHBoxLayout(self).addWidget(self.split)

        self.start_btn.clicked.connect(self.start)
        self.cancel_btn.clicked.connect(self.runner.cancel)
        self.export_fig_btn.clicked.connect(self.export_figure)
        self.export_data_btn.clicked.connect(self.export_numbers)
        self.figure.cellHovered.connect(self.hover)
        self.figure.cellClicked.connect(self.show_examples)
        self.runner.idle.connect(self._idle)
        self.timer.idle.connect(lambda: self._refresh_estimate(measure=False))   # a stopped timing is not redone
        for w in (*self.grid.value_widgets, self.seed, self.until_ci):
            w.valueChanged.connect(self._settings_changed)
        for w in (self.mode, self.precision):
            w.currentTextChanged.connect(self._settings_changed)
        if self.settings is not None:
            self._restore(self.settings)

    # ---- inputs --------------------------------------------------------------------------------
    def set_model(self, loaded: LoadedModel, input_size: int) -> None:
        """The model with the input size it runs at (a model can refuse the saved size), in one step: one
        cache look-up, never one of the new model at the old size. A grid of the previous model is
        cancelled, not waited for: the window stays responsive, and what it still delivers is kept off
        the screen (`_current`)."""
        self.runner.cancel()
        self.loaded, self.input_size = loaded, input_size
        self._settings_changed()

    def set_input_size(self, size: int) -> None:
        """The grid for this size, or none: never one of another size."""
        self.input_size = size
        self._settings_changed()

    def set_data(self, data: Dataset | None) -> None:
        self.data = data
        self.start_btn.setEnabled(data is not None and not self.runner.running)   # _finished enables it after
        self._settings_changed()

    def _settings_changed(self, *_) -> None:
        """Another grid asked for: what was said about the last one goes, and the cache is asked for this one."""
        self.event = ""
        self.try_cache()

    def spec(self) -> GridSpec:
        return self.grid.spec()

    @property
    def crop_pad(self) -> int | None:
        return (self.loaded.meta.get("recipe") or {}).get("crop_pad") if self.loaded else None

    def request(self) -> GridRequest:
        """The grid the tab is set to now."""
        return GridRequest(self.loaded, self.data, self.spec(), self.mode.currentText(), self.count.value(),
                           self.seed.value(), self.precision.currentText(), self.input_size,
                           target_halfwidth=self.until_ci.value() / 100 or None)

    def try_cache(self, *_) -> bool:
        """Show the cached grid for the current model and settings at once, if there is one; otherwise
        no grid (an older one would answer another question, and a click would mix the two)."""
        if self.runner.running:
            if self.result is None or not self._current():
                self._show_nothing()
            self._refresh()
            return False
        self.bar.idle()
        notes = ()
        if self.loaded is not None and self.data is not None:
            req = self.request()
            result, notes = req.cached(), tuple(req.notes)
            if result is not None:
                self._note_grid(req)
                self.show_result(result, final=True)
                reached = result.info.get("precision_reached")
                self.event = f"From cache ({req.path.name})" + (f"; {reached}." if reached else ".")
                self._refresh()
                return True
        self._show_nothing(notes)
        self._refresh()
        return False

    def _state(self, notes: tuple[str, ...] = ()) -> TabState:
        return TabState(self.data is not None, self.runner.running, self._current(), self.result is not None,
                        self.event, notes)

    def _refresh(self) -> None:
        """The status line and the estimate, from the state they describe."""
        self.status.setText(translation_status(self._state()))
        self._refresh_estimate()

    def _show_nothing(self, notes: tuple[str, ...] = ()) -> None:
        """No grid on screen, and nothing read off one: the heatmaps say why (figure_message)."""
        self.result = self.shown_req = self.hovered = None
        self.figure.show_nothing(figure_message(self._state(notes)))
        self.pitfalls.setText("")
        self.worst.setText("")
        self.worst.setToolTip("")
        self.worst_figure.show_nothing(WORST_CASE_LATER)
        self.readout.setText(READOUT_HINT)
        self._clear_examples()

    def _note_grid(self, req: GridRequest) -> None:
        """The grid of req goes on screen: if it is another grid than the one shown, the cell read off that
        one and its examples go (a partial result of the same grid keeps them)."""
        if not req.same_grid(self.shown_req):
            self.hovered = None
            self._clear_examples()
        self.shown_req = req

    def _current(self) -> bool:
        """Whether the running (or just finished) job computes what the tab is set to now: the same model
        and the same settings. A job of another model or size may still deliver after a stop."""
        return self.loaded is not None and self.data is not None and self.request().same_grid(self.req)

    # ---- running -------------------------------------------------------------------------------
    def start(self) -> None:
        if self.loaded is None or self.data is None or self.runner.running:
            return
        if self.try_cache():
            return
        self.timer.cancel()   # the grid's own progress times it from here
        self.req = req = self.request()
        self.subset = req.subset
        job = req.make_job()   # the model copy is taken here, on the GUI thread
        self.bar.start()
        self.start_btn.setEnabled(False)
        self.cancel_btn.setEnabled(True)
        self.event = ""
        self.runner.start(job, on_progress=self._progress, on_partial=self._partial,
                          on_result=self._done, on_cancelled=self._cancelled, on_error=self._failed,
                          on_finished=self._finished)
        self._show_nothing()
        self._refresh()

    def _partial(self, result: GridResult) -> None:
        if self._current():
            self._note_grid(self.req)
            self.show_result(result)

    def _progress(self, done: int, total: int, msg: str) -> None:
        self.bar.progress(done, total, bounded=bool(self.req is not None and self.req.target_halfwidth))
        self.event = msg if self._current() else self.event
        self._refresh()

    def _done(self, result: GridResult) -> None:
        note = f"; {result.info.get('cache', 'not cached')}."
        if not self._current():
            self.event = f"A grid for earlier settings finished{note} Choose them again to see it."
            self._refresh()
            return
        self._note_grid(self.req)
        self.show_result(result, final=True)
        reached = result.info.get("precision_reached")
        self.bar.finish("precision reached" if reached else "done")
        self.event = (f"Done in {fmt_duration(self.bar.elapsed)}" + (f"; {reached}" if reached else "")
                      + note)
        self._refresh()

    def _cancelled(self, result) -> None:
        if not self._current():
            self.event = "Cancelled the grid of the previous model or settings."
            self._refresh()
            return
        self.bar.cancelled()
        if result is not None and result.count.max() > 0:
            self._note_grid(self.req)
            self.show_result(result)
            self.event = f"Cancelled: {images_per_cell(result)} of the {self.req.images} asked for (not cached)."
        else:
            self.event = "Cancelled before the first images were done."
        self._refresh()

    def _failed(self, msg: str) -> None:
        self.event = f"Failed: {msg}"
        self._refresh()
        QMessageBox.warning(self, "Translation grid failed", msg)

    def _finished(self) -> None:
        self.start_btn.setEnabled(self.data is not None)
        self.cancel_btn.setEnabled(False)

    def _idle(self) -> None:
        """The job's thread is gone: a stale job may have left the screen empty (its grid's cache may fill it)."""
        if self.result is None:
            self.try_cache()
        self._refresh()

    def grid_for_every_radius(self) -> None:
        """The grid settings for a worst case at every radius of core.worst_case.RADII (not started: the
        estimate beside Start prices it first)."""
        r = max(RADII)
        self.grid.y_same.setChecked(True)
        self.lo.setValue(-r)
        self.hi.setValue(r)
        self.step.setValue(1)

    # ---- estimate ------------------------------------------------------------------------------
    def _refresh_estimate(self, measure: bool = True) -> None:
        """The estimate beside Start; with measure, the model is timed (in the background, once per model,
        device, precision and input size) while the tab shows and no rate is known."""
        if self.loaded is None or self.data is None:
            self.estimate.setText("")
            return
        req = self.request()
        if self.result is not None and req.same_grid(self.shown_req) and req.complete(self.result):
            self.estimate.setText("Computed: on screen.")
            return
        rate = known_rate(req.rate_key)
        if measure and rate is None and self.isVisible() and not self.runner.running and not self.timer.running:
            self.timer.start(req.timing_job())
        if rate is None and not self.timer.running:
            self.estimate.setText("")
            return
        self.estimate.setText(estimate_text(req.spec, req.mode, req.images, self.input_size, rate,
                                            hardware(req.device), bool(req.target_halfwidth)))

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._refresh_estimate()

    # ---- showing -------------------------------------------------------------------------------
    def show_result(self, result: GridResult, final: bool = False) -> None:
        self.result = result
        self.figure.set_result(result, heatmap_title(result), self.crop_pad)
        self.figure.caption = grid_caption(result, self.loaded.padding_mode if self.loaded else "")
        self.pitfalls.setText(self.pitfall_text(result))
        w, padding = worst_case(result), self.loaded.padding_mode if self.loaded else ""
        self.worst.setText(summary_line(w))
        self.worst.setToolTip("\n".join(format_worst_case(w)))
        self.worst_figure.set_result(result, padding)
        self.readout.setText(readout_text(result, self.hovered, self.runner.running))

    def pitfall_text(self, r: GridResult) -> str:
        period = shift_period(self.loaded.model, int(r.info.get("input_size", 32))) if self.loaded else 1
        p = pitfalls(r, self.crop_pad, period or 1)
        pct = lambda v: f"{100 * v:.1f}%"  # noqa: E731
        lines = []
        if p["unshifted"] is not None:
            lines.append(f"Unshifted accuracy {pct(p['unshifted'])} over {p['unshifted_images']} images.")
        if p["mode"] != "roll":
            if p["visible"] is not None and p["hidden"] is not None:
                lines.append(f"<b>Content out of frame:</b> mean accuracy {pct(p['visible'])} where at least half the "
                             f"image is visible, {pct(p['hidden'])} where less is; compare with the roll mode, which "
                             "loses nothing.")
            else:
                lines.append(f"<b>Content out of frame:</b> at the largest shift {100 * p['min_visible']:.0f}% of the "
                             "image is still visible; compare with the roll mode, which loses nothing.")
        lines.append(f"<b>Fill value:</b> {SHIFT_MODES.get(p['mode'], p['mode'])}.")
        if p["crop_pad"] is not None:
            text = (f"<b>Training augmentation:</b> random crops shifted the training images by up to "
                    f"{p['crop_pad']} px (dashed box)")
            if p["inside"] is not None and p["outside"] is not None:
                text += f"; mean accuracy {pct(p['inside'])} inside, {pct(p['outside'])} outside"
            lines.append(text + ".")
        if period is None:
            lines.append(f"<b>Pooling phase:</b> the input is resized to {r.info['input_size']} px, so the pools "
                         "repeat at a fraction of a pixel of the 32 px shifts: no shift keeps the phase exactly.")
        elif p["phase_min"] is not None:
            lines.append(f"<b>Pooling phase:</b> the pools repeat every {period} px; mean accuracy by phase ranges "
                         f"{pct(p['phase_min'])} to {pct(p['phase_max'])} (shifts by multiples of {period} keep "
                         "the phase).")
        return "<br>".join(lines)

    def hover(self, dx: int, dy: int) -> None:
        if self.result is None:
            return
        self.hovered = (dx, dy)
        self.readout.setText(readout_text(self.result, self.hovered, self.runner.running))

    def _clear_examples(self) -> None:
        for img, cap in self.example_labels:
            img.clear()
            cap.setText("")
        self.examples_box.setTitle("Shifted examples: click a cell")

    def show_examples(self, dx: int, dy: int) -> None:
        """A few shifted images with their predictions, made as the grid on screen was (its mode and size)."""
        if self.data is None or self.loaded is None:
            return
        lm, info = self.loaded, (self.result.info if self.result is not None else {})
        mode, size = info.get("mode", self.mode.currentText()), int(info.get("input_size", self.input_size))
        idx = example_indices(self.data.labels, int(info.get("seed", self.seed.value())))
        pixels = shift(self.data.images[idx], dx, dy, mode, info.get("fill_color", self.data.mean_color))
        device = next(lm.model.parameters()).device
        with torch.inference_mode(), autocast(device, info.get("precision", "fp32")):
            logits = lm.model.eval()(resize_input(lm.norm.apply(pixels), size).to(device)).float().cpu()
        pred = logits.argmax(1)
        for k, (img, cap) in enumerate(self.example_labels):
            img.setPixmap(pixmap_of(pixels[k], 72))
            ok = pred[k] == self.data.labels[idx[k]]
            cap.setText(f"<span style='color:{'green' if ok else 'red'}'>{lm.class_name(pred[k])}</span>"
                        f"<br><small>true {lm.class_name(self.data.labels[idx[k]])}</small>")
        self.examples_box.setTitle(f"Shifted examples at dx={dx:+d}, dy={dy:+d}")

    # ---- export and settings -------------------------------------------------------------------
    def _ask(self, title, name, filters) -> Path | None:
        return ask_save_path(self, self.settings, title, name, filters)

    def export_figure(self) -> Path | None:
        """The heatmaps on screen as PNG, SVG or PDF and, beside them as a second file of its own (a paper
        places the two apart, and the square heatmaps keep their shape), the worst case over shifts at a
        page's shape (`write_worst_case_figure`, `worst_case_path`); the heatmaps' path, else None. Nothing
        is written unless both may be."""
        if self.result is None:
            return None
        path = self._ask("Export heatmaps", "translation_heatmaps.png", FIGURE_FILTERS)
        if path is None or not confirm_overwrite(self, worst_case_path(path)):
            return None

        def write():
            write_figure(self.figure.scene(), path, "PadLens translation heatmaps", self.figure.caption)
            write_worst_case_figure(self.result, worst_case_path(path),
                                    self.loaded.padding_mode if self.loaded else "")
        return path if run_export(self, path, write) else None

    @staticmethod
    def figures_written(path: Path) -> str:
        """The status message of export_figure: which two files it wrote."""
        return f"wrote {path} (heatmaps) and {worst_case_path(path).name} (worst case over shifts) beside it"

    def export_numbers(self) -> Path | None:
        """The grid's numbers as CSV or NPZ; the path written, else None."""
        if self.result is None:
            return None
        path = self._ask("Export numbers", "translation.csv", "CSV (*.csv);;NumPy archive (*.npz)")
        if path is None:
            return None
        if path.suffix.lower() == ".npz":
            ok = run_export(self, path, lambda: self.result.save_npz(path))
        else:
            path = path.with_suffix(".csv")
            ok = run_export(self, path, lambda: atomic_write(path, self.result.write_csv))
        return path if ok else None

    def _restore(self, s) -> None:
        self.grid.restore(s, "tr")
        self.seed.setValue(int(s.value("tr_seed", 0)))
        self.until_ci.setValue(float(s.value("tr_until_ci", 0.0)))

    def save_settings(self, s) -> None:
        self.grid.save(s, "tr")
        s.setValue("tr_seed", self.seed.value())
        s.setValue("tr_until_ci", self.until_ci.value())
