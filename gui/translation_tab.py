"""Translation robustness tab: grid settings, a background run that fills the heatmaps as it goes,
hover read-out, shifted examples on click, on-disk cache and export."""
from __future__ import annotations

import time
from pathlib import Path

import torch
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import (QGridLayout, QGroupBox, QHBoxLayout, QLabel, QMessageBox,
                             QProgressBar, QPushButton, QSplitter, QVBoxLayout, QWidget)

from padlens.core.activations import resize_input
from padlens.core.data import Dataset, stratified_subset
from padlens.core.device import autocast
from padlens.core.files import atomic_write
from padlens.core.session import LoadedModel
from padlens.core.shifts import SHIFT_MODES, shift, visible_fraction
from padlens.core.grid_cache import GridRequest
from padlens.core.translation import (GridResult, GridSpec, pitfalls, shift_period)
from padlens.gui.export import ask_save_path, run_export, write_figure
from padlens.gui.figures import HeatmapFigure
from padlens.gui.grid_settings import GridSettings, spin
from padlens.gui.input_panel import pixmap_of
from padlens.gui.worker import JobRunner

N_EXAMPLES = 6


def example_indices(labels: torch.Tensor, seed: int) -> torch.Tensor:
    """N_EXAMPLES images of different classes, which classes chosen by the seed: the stratified order
    alone is round-robin from class 0, so the last classes would never show."""
    order, classes = stratified_subset(labels, None, seed), len(labels.unique())
    first_round = order[:classes][torch.randperm(classes, generator=torch.Generator().manual_seed(seed))]
    return torch.cat([first_round, order[classes:]])[:N_EXAMPLES]


class TranslationTab(QWidget):
    def __init__(self, window=None):
        super().__init__(window)
        self.window_ = window
        self.runner = JobRunner(self)
        self.loaded: LoadedModel | None = None
        self.data: Dataset | None = None
        self.result: GridResult | None = None
        self.subset: torch.Tensor | None = None
        self.req: GridRequest | None = None   # the grid of the job started last
        self.t0 = 0.0

        self.grid = GridSettings(-32, 32, 2, 1000, "auto: bf16 where the hardware has it (within 0.5 points of "
                                 "fp32); fp32 is exact")
        g = self.grid
        self.lo, self.hi, self.step, self.count, self.mode, self.precision = (g.lo, g.hi, g.step, g.count, g.mode,
                                                                             g.precision)
        self.seed = spin(0, 10_000, 0)
        self.start_btn, self.cancel_btn = QPushButton("Start"), QPushButton("Cancel")
        self.start_btn.setShortcut("Ctrl+Return")
        self.start_btn.setToolTip("Compute the grid (Ctrl+Enter); a cached grid opens at once")
        self.cancel_btn.setEnabled(False)
        self.export_fig_btn, self.export_data_btn = QPushButton("Export figure..."), QPushButton("Export numbers...")
        self.bar = QProgressBar()
        self.status = QLabel("Set the grid and press Start.")
        self.status.setWordWrap(True)

        form = g.form
        form.addRow("Seed", self.seed)
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
        sv.addWidget(self.bar)
        sv.addWidget(self.status)
        sv.addLayout(exports)

        self.readout = QLabel("Hover a cell for its numbers; click it for shifted examples.")
        self.readout.setWordWrap(True)
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
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
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.addWidget(self.figure, 1)
        rv.addWidget(self.readout)
        rv.addWidget(self.examples_box)
        self.split = QSplitter()
        self.split.addWidget(left)
        self.split.addWidget(right)
        self.split.setStretchFactor(1, 3)
        QHBoxLayout(self).addWidget(self.split)

        self.start_btn.clicked.connect(self.start)
        self.cancel_btn.clicked.connect(self.runner.cancel)
        self.export_fig_btn.clicked.connect(self.export_figure)
        self.export_data_btn.clicked.connect(self.export_numbers)
        self.figure.cellHovered.connect(self.hover)
        self.figure.cellClicked.connect(self.show_examples)
        self.runner.idle.connect(lambda: self.result is None and self.try_cache())   # a stale job left the screen empty
        for w in (*self.grid.value_widgets, self.seed):
            w.valueChanged.connect(self.try_cache)
        for w in (self.mode, self.precision):
            w.currentTextChanged.connect(self.try_cache)
        if window is not None:
            self._restore(window.settings)

    # ---- inputs --------------------------------------------------------------------------------
    def set_model(self, loaded: LoadedModel) -> None:
        """A grid of the previous model is cancelled, not waited for: the window stays responsive, and
        what it still delivers is kept off the screen (`_current`)."""
        self.runner.cancel()
        self.loaded = loaded
        self.try_cache()

    def set_data(self, data: Dataset | None) -> None:
        self.data = data
        self.start_btn.setEnabled(data is not None and not self.runner.running)   # _finished enables it after
        if data is None:
            self.status.setText("Needs the CIFAR-10 test split: open a data folder (Ctrl+D) or download it on "
                                "the Feature maps tab.")
        self.try_cache()

    def spec(self) -> GridSpec:
        return self.grid.spec()

    @property
    def crop_pad(self) -> int | None:
        return (self.loaded.meta.get("recipe") or {}).get("crop_pad") if self.loaded else None

    def request(self) -> GridRequest:
        """The grid the tab is set to now."""
        return GridRequest(self.loaded, self.data, self.spec(), self.mode.currentText(), self.count.value(),
                           self.seed.value(), self.precision.currentText(), self.input_size())

    def try_cache(self, *_) -> bool:
        """Show the cached grid for the current model and settings at once, if there is one; otherwise
        no grid (an older one would answer another question, and a click would mix the two)."""
        if self.runner.running:
            if not self._current() and self.result is not None:
                self._show_nothing("Running for earlier settings; the grid for these is not computed yet.")
            return False
        notes = []
        if self.loaded is not None and self.data is not None:
            req = self.request()
            result, notes = req.cached(), req.notes
            if result is not None:
                self.show_result(result, final=True)
                self.status.setText(f"From cache ({req.path.name}).")
                return True
        if self.result is not None or notes:
            self._show_nothing(" ".join(n[0].upper() + n[1:] + "." for n in notes) +
                               ("" if notes else "Not computed for these settings yet: Start (Ctrl+Return) computes it."))
        return False

    def _show_nothing(self, message: str) -> None:
        self.result = None
        self.figure.show_nothing(message)
        self.pitfalls.setText("")
        self.readout.setText("")

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
        self.req = req = self.request()
        self.subset = req.subset
        job = req.make_job()   # the model copy is taken here, on the GUI thread
        self.t0 = time.perf_counter()
        self.start_btn.setEnabled(False)
        self.cancel_btn.setEnabled(True)
        self.status.setText("Running: a first heatmap from a few images (up to one per class) within seconds, "
                            "refined as more are done.")
        self.runner.start(job, on_progress=self._progress, on_partial=lambda r: self.show_result(r) if self._current() else None,
                          on_result=self._done, on_cancelled=self._cancelled, on_error=self._failed,
                          on_finished=self._finished)

    def _progress(self, done: int, total: int, msg: str) -> None:
        self.bar.setMaximum(total)
        self.bar.setValue(done)
        elapsed = time.perf_counter() - self.t0
        left = elapsed / max(done, 1) * (total - done)
        self.bar.setFormat(f"%p%  about {int(left // 60)}:{int(left % 60):02d} left")
        self.status.setText(msg)

    def _done(self, result: GridResult) -> None:
        note = f"; {result.info.get('cache', 'not cached')}."
        if not self._current():
            self.status.setText(f"A grid for earlier settings finished{note} Choose them again to see it.")
            return
        self.show_result(result, final=True)
        self.status.setText(f"Done in {time.perf_counter() - self.t0:.1f} s{note}")

    def _cancelled(self, result) -> None:
        if not self._current():
            self.status.setText("Cancelled the grid of the previous model or settings.")
            return
        if result is not None:
            self.show_result(result)
        self.status.setText(f"Cancelled; showing the {result.images if result else 0} images per cell done so far "
                            "(not cached).")

    def _failed(self, msg: str) -> None:
        self.status.setText(f"Failed: {msg}")
        QMessageBox.warning(self, "Translation grid failed", msg)

    def _finished(self) -> None:
        self.start_btn.setEnabled(self.data is not None)
        self.cancel_btn.setEnabled(False)

    # ---- showing -------------------------------------------------------------------------------
    def show_result(self, result: GridResult, final: bool = False) -> None:
        self.result = result
        self.figure.set_result(result, result.info.get("title", ""), self.crop_pad)
        self.pitfalls.setText(self.pitfall_text(result))

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
        r = self.result
        if r is None:
            return
        i, j = r.cell(dx, dy)
        mode = r.info.get("mode", "affine")
        if not r.count[i, j]:
            self.readout.setText(f"dx={dx:+d}, dy={dy:+d}: not computed (the run was cancelled before this cell)")
            return
        self.readout.setText(
            f"dx={dx:+d}, dy={dy:+d}: accuracy {100 * r.accuracy[i, j]:.2f}%, loss {r.loss[i, j]:.3f}, "
            f"consistency {100 * r.consistency[i, j]:.1f}%, {int(r.count[i, j])} images, "
            f"{100 * visible_fraction(dx, dy, 32, mode):.0f}% of the image still in frame")

    def input_size(self) -> int:
        """The explorer's input size (View > Input size): grids resize their shifted inputs to it too."""
        return self.window_.explorer.input_size if self.window_ is not None and self.window_.explorer else 32

    def show_examples(self, dx: int, dy: int) -> None:
        """A few shifted images with their predictions, made as the grid on screen was (its mode and size)."""
        if self.data is None or self.loaded is None:
            return
        lm, info = self.loaded, (self.result.info if self.result is not None else {})
        mode, size = info.get("mode", self.mode.currentText()), int(info.get("input_size", self.input_size()))
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
        return ask_save_path(self, getattr(self.window_, "settings", None), title, name, filters)

    def export_figure(self) -> None:
        if self.result is None:
            return
        path = self._ask("Export heatmaps", "translation_heatmaps.png", "PNG (*.png);;SVG (*.svg)")
        if path:
            run_export(self, path, lambda: write_figure(self.figure.scene(), path, "PadLens translation heatmaps"))

    def export_numbers(self) -> None:
        if self.result is None:
            return
        path = self._ask("Export numbers", "translation.csv", "CSV (*.csv);;NumPy archive (*.npz)")
        if path is None:
            return
        if path.suffix.lower() == ".npz":
            run_export(self, path, lambda: self.result.save_npz(path))
        else:
            path = path.with_suffix(".csv")
            run_export(self, path, lambda: atomic_write(path, self.result.write_csv))

    def _restore(self, s) -> None:
        self.grid.restore(s, "tr")
        self.seed.setValue(int(s.value("tr_seed", 0)))

    def save_settings(self, s) -> None:
        self.grid.save(s, "tr")
        s.setValue("tr_seed", self.seed.value())
