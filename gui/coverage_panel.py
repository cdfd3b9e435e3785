"""Coverage (foveation) maps of the loaded model's architecture with every padding mode, at the app's input
size and at its 2^n / 2^n + 1 partner, side by side, with the padding arithmetic's uneven layers.

The maps need no weights and no images: a few milliseconds each on one channel (core.coverage), but the
padding arithmetic runs the model once per size, so they are computed in a worker and kept per model and
input size."""
from __future__ import annotations

from pathlib import Path

import pyqtgraph as pg
from PyQt6.QtCore import QSettings, Qt, QTimer
from PyQt6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from padlens.core.coverage import COVERAGE_HELP, CoverageMap, comparison_size, padding_coverage_job, save_coverage
from padlens.core.padding import PADDING_MODES
from padlens.core.session import LoadedModel
from padlens.gui.analyses_tab import ask_folder, job_copy
from padlens.gui.comparison import map_rect
from padlens.gui.export import FIGURE_FILTERS, ask_save_path, run_export, write_figure, write_offscreen
from padlens.gui.job_bar import JobBar
from padlens.gui.style import PanelFigure, color_bar, figure_caption, image_panel, set_levels, set_title, value_levels
from padlens.gui.worker import JobRunner

CMAP = "viridis"
SIZES = 2   # the app's input size and its 2^n / 2^n + 1 partner (core.coverage.comparison_size)
HINT = "Hover a map for the paths of a pixel."


def size_text(m: CoverageMap) -> str:
    """'33x33 input: uneven at 1 layer' / '32x32 input: even'."""
    n = len(m.uneven)
    return f"{m.size}x{m.size} input: " + (f"uneven at {n} layer{'s' * (n != 1)}" if n else "even")


class CoverageFigure(PanelFigure):
    """Per input size a row label, a map per padding mode (a column each) and a colour bar (one scale per size: the
    modes compare). Made by stepping `building()` (the panel steps it one plot per event-loop turn: a dozen
    plots take a third of a second, which would freeze the window), then filled by `draw`."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.plots: list[list[pg.PlotItem]] = []
        self.images: list[list[pg.ImageItem]] = []
        self.row_labels, self.bars = [], []

    def building(self):
        """Make the plots, yielding after each (the mode boxes only show and hide columns)."""
        n = len(PADDING_MODES)
        self.title = self.addLabel("", row=0, col=0, colspan=n + 2)
        for r in range(SIZES):
            self.row_labels.append(self.addLabel("", row=r + 1, col=0, angle=-90, color="k"))
            self.plots.append([])
            self.images.append([])
            for k in range(n):
                yield
                plot, img = image_panel(self, r + 1, k + 1)
                self.plots[r].append(plot)
                self.images[r].append(img)
            yield
            bar = color_bar(CMAP, label="paths per pixel")
            bar.setImageItem(self.images[r])
            self.addItem(bar, row=r + 1, col=n + 1)
            self.bars.append(bar)
        yield   # the first drawing on a turn of its own

    def draw(self, maps: dict[str, list[CoverageMap]], checked: list[str], name: str, own: str) -> None:
        """The maps of the checked modes ({mode: [map per size]}), own: the model's own padding mode."""
        columns = [m for m in PADDING_MODES if m in checked]
        modes = [m for m in columns if m in maps]
        set_title(self.title, f"{name}: paths from each input pixel to the output" if name and maps else "",
                  ("each column: this architecture with that padding mode (the weights play no part)" if len(modes) > 1
                   else "the architecture alone: the weights play no part") if maps else "")
        first_map = next(iter(maps.values()), None)
        sizes = len(first_map) if first_map else 0   # the command line may ask for one size
        for r in range(SIZES):
            shown = r < sizes
            self.row_labels[r].setText(size_text(first_map[r]) if shown else "", color="k")
            self.row_labels[r].setVisible(shown)
            self.bars[r].setVisible(shown)
            for k, mode in enumerate(PADDING_MODES):
                plot, img = self.plots[r][k], self.images[r][k]
                plot.setVisible(shown and mode in checked)
                if not shown:
                    continue
                plot.getAxis("left").setStyle(showValues=mode == columns[0])
                head = f"{mode}" + (" (this model)" if mode == own else "") if r == 0 else ""
                m = maps[mode][r] if mode in maps else None
                if m is None:
                    img.clear()
                    set_title(plot, head, "computing...")
                    continue
                img.setImage(m.counts, autoLevels=False)
                img.setRect(map_rect(m.counts))
                plot.vb.setRange(map_rect(m.counts), padding=0)
                s = m.summary
                set_title(plot, head, "constant" if s["constant"] else f"corner / centre {s['corner_to_centre']:.3f}")
            if shown:
                set_levels(self.bars[r], value_levels([maps[mode][r].counts for mode in modes]))
        self.set_panels([p for row in self.plots for p in row if p.isVisible()], max(len(checked), 1), max(sizes, 1),
                        1.0)
        self.caption = coverage_caption(name, own, maps, modes)


def coverage_caption(name: str, padding: str, maps: dict[str, list[CoverageMap]], modes: list[str]) -> str:
    """What an exported figure says under it: the model, the sizes and their evenness, the modes shown."""
    if not name or not maps:
        return ""
    first = next(iter(maps.values()))
    sizes = " and ".join(f"{m.size}x{m.size}" for m in first)
    uneven = "; ".join(size_text(m) for m in first if m.uneven)
    return figure_caption(model=name, padding=padding,
                          input=f"network input {sizes} (no images: the architecture alone)",
                          extra=f"paths from each input pixel to the output (coverage), columns: padding modes "
                                f"{', '.join(modes)}; one colour scale per input size" + (f"; {uneven}" if uneven else ""))


EXPORT_SIZE = (1500, 700)   # a figure file's size in screen pixels: five modes across, two sizes down


def write_coverage_figures(maps: dict[str, list[CoverageMap]], out, name: str, padding: str, stem: str = "coverage",
                           exts=(".png", ".svg")) -> list[Path]:
    """The panel's figure of maps ({mode: [map per size]}) as stem.png/.svg in folder out, drawn offscreen (the
    command line and the report); padding: the model's own mode."""
    def show(fig: CoverageFigure) -> None:
        for _ in fig.building():
            pass
        fig.draw(maps, list(maps), name, padding)

    width = min(EXPORT_SIZE[0], 300 + 300 * len(maps))
    return write_offscreen(CoverageFigure, (width, EXPORT_SIZE[1]), show, [Path(out) / f"{stem}{e}" for e in exts],
                           "PadLens coverage")


class CoveragePanel(QWidget):
    """See gui.analyses_tab for the panel interface."""

    def __init__(self, settings: QSettings | None = None, device=None, parent=None):
        super().__init__(parent)
        self.settings = settings
        self.runner = JobRunner(self)
        self.runner.idle.connect(self.refresh)
        self.loaded: LoadedModel | None = None
        self.input_size = 32
        self.maps: dict[str, list[CoverageMap]] = {}   # what the figure shows: {mode: [map per size]}
        self.shown_key = None
        self._cache: dict[tuple, dict] = {}            # (model, sizes) -> maps of every mode
        self._error = ""
        self._running_key = None
        self._quiet = False   # set by cancel(): start no job on its own
        self._built = False
        self._building = None   # the plots being made (`_build`)
        self._build_timer = QTimer(self)
        self._build_timer.setSingleShot(True)
        self._build_timer.timeout.connect(self._build_step)

        self.boxes: dict[str, QCheckBox] = {}
        top = QHBoxLayout()
        top.addWidget(QLabel("Padding modes:"))
        for mode in PADDING_MODES:
            box = QCheckBox(mode)
            box.setChecked(True)
            box.setToolTip(f"The map of this model's architecture with every convolution padding {mode}")
            box.toggled.connect(lambda *_: self.show_maps())
            self.boxes[mode] = box
            top.addWidget(box)
        top.addStretch(1)
        self.export_btn, self.save_btn = QPushButton("Export figure..."), QPushButton("Save data...")
        self.export_btn.setToolTip("The maps on screen as PNG (300 dpi), SVG or PDF, with their caption")
        self.save_btn.setToolTip("Per padding mode: coverage_<mode>.npz (counts per size) and .csv (one row per "
                                 "pixel), into a folder")
        self.bar = JobBar()   # in the row of the modes: a row of its own would take the maps' height at 1280x720
        self.bar.setMinimumWidth(160)
        self.compute_btn, self.cancel_btn = QPushButton("Compute"), QPushButton("Cancel")
        self.compute_btn.setToolTip("Count the paths again after a Cancel (they are counted on their own when "
                                    "the panel is shown or the model or input size changes)")
        self.compute_btn.setEnabled(False)
        self.cancel_btn.setEnabled(False)
        for w in (self.bar, self.compute_btn, self.cancel_btn, self.export_btn, self.save_btn):
            top.addWidget(w)
        self.figure = CoverageFigure()
        self.figure.setMinimumHeight(240)
        self.figure.setToolTip(COVERAGE_HELP)
        self.readout = QLabel(HINT)
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.uneven = QLabel()
        self.uneven.setWordWrap(True)
        self.uneven.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status = QLabel()
        self.status.setWordWrap(True)
        help_label = QLabel(COVERAGE_HELP)
        help_label.setWordWrap(True)
        v = QVBoxLayout(self)
        v.addLayout(top)
        v.addWidget(self.figure, 1)
        v.addWidget(self.readout)
        v.addWidget(self.uneven)
        v.addWidget(self.status)
        v.addWidget(help_label)

        self.compute_btn.clicked.connect(self.compute)
        self.cancel_btn.clicked.connect(self.cancel)
        self.export_btn.clicked.connect(self.export_figure)
        self.save_btn.clicked.connect(self.save_data)
        self.figure.scene().sigMouseMoved.connect(self._hover)
        self.refresh()

    # ---- the panel interface ---------------------------------------------------------------------
    def set_model(self, loaded: LoadedModel, input_size: int) -> None:
        self.loaded, self.input_size, self._quiet = loaded, input_size, False
        self.refresh()

    def set_data(self, test) -> None:
        """Coverage reads no images."""

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.refresh()

    def set_input_size(self, size: int) -> None:
        if size != self.input_size:
            self.input_size, self._quiet = size, False
            self.refresh()

    def cancel(self) -> None:
        """Stop the job; none starts again on its own until the panel gets a model or an input size (a closing
        window cancels, then waits for the runner)."""
        self._quiet = True
        self.runner.cancel()

    def compute(self) -> None:
        """Compute button: count the paths a Cancel left out."""
        self._quiet = False
        self.refresh()

    # ---- computing -------------------------------------------------------------------------------
    def sizes(self) -> list[int]:
        return [self.input_size, comparison_size(self.input_size)]

    def key(self) -> tuple | None:
        if self.loaded is None:
            return None
        return self.loaded.cache_id or id(self.loaded.model), tuple(self.sizes())

    def refresh(self) -> None:
        """Show the maps of the current model and sizes: from memory, else computed (after a job of other
        ones, which is cancelled, has ended: `runner.idle` comes back here)."""
        key = self.key()
        if key is None:
            self._show(None, "No model.")
            return
        if key in self._cache:
            self._show(key, "")
            return
        if self._quiet:
            self._show(None, "Cancelled.")
            return
        if not self.isVisible():   # computed when first shown: the window's start does not wait for it
            self._show(None, "")
            return
        if self.runner.running:
            if self._running_key != key:
                self.runner.cancel()   # idle brings us back here
                self._show(None, "Computing...")
            return
        sizes, model = self.sizes(), job_copy(self.loaded.model)
        self._error = ""

        def job(stop):
            return (yield from padding_coverage_job(model, list(PADDING_MODES), sizes, should_stop=stop))

        def partial(maps):
            if self.key() == key:
                self.maps, self.shown_key = maps, key
                self.show_maps()

        def done(maps):
            self._cache[key] = maps
            self.bar.finish()
            if self.key() == key:
                self._show(key, "")

        def failed(msg):
            self._error = msg
            self.bar.idle()
            if self.key() == key:
                self._show(None, f"Cannot count the paths of this model: {msg}")

        self._running_key = key
        self.bar.start()
        self.runner.start(job, on_progress=lambda done, total, _: self.bar.progress(done, total), on_partial=partial,
                          on_result=done, on_error=failed, on_cancelled=lambda _: self.bar.cancelled())
        self._show(None, f"Computing the maps at {sizes[0]}x{sizes[0]} and {sizes[1]}x{sizes[1]}...")

    def _show(self, key, status: str) -> None:
        self.cancel_btn.setEnabled(self.runner.running)
        self.compute_btn.setEnabled(not self.runner.running and self._quiet and self.key() is not None
                                    and self.key() not in self._cache)
        if key is not None:
            self.maps, self.shown_key = self._cache[key], key
        elif not (self.runner.running and self.shown_key == self.key()):
            self.maps, self.shown_key = {}, None
        self.status.setText(status or self._error)
        self.show_maps()

    # ---- showing ---------------------------------------------------------------------------------
    def shown_modes(self) -> list[str]:
        return [m for m in PADDING_MODES if self.boxes[m].isChecked() and m in self.maps]

    def _build_step(self) -> None:
        try:
            next(self._building)
            self._build_timer.start(0)
        except StopIteration:
            self._built = True
            self.show_maps()

    @property
    def plots(self) -> list:
        return self.figure.plots

    @property
    def bars(self) -> list:
        return self.figure.bars

    def show_maps(self) -> None:
        if not self._built:   # made when first shown, then drawn
            if self.isVisible() and self._building is None:
                self._building = self.figure.building()
                self._build_step()
            return
        checked = [m for m in PADDING_MODES if self.boxes[m].isChecked()]
        lm = self.loaded
        self.figure.draw(self.maps, checked, lm.name if lm else "", lm.padding_mode if lm else "")
        self.uneven.setText(self._uneven_text())
        has = bool(self.maps and self.shown_modes())
        self.export_btn.setEnabled(has)
        self.save_btn.setEnabled(has)
        if not has or not self.readout.text():
            self.readout.setText(HINT if has else "")

    def _uneven_text(self) -> str:
        if not self.maps:
            return ""
        first = next(iter(self.maps.values()))
        return "<br>".join(f"<b>Uneven at {m.size}x{m.size}:</b> " + ("; ".join(m.uneven) if m.uneven else
                                                                      "none, every layer uses the size evenly")
                           for m in first)

    def _hover(self, pos) -> None:
        for r, row in enumerate(self.figure.plots if self._built else []):
            for mode, plot in zip(PADDING_MODES, row):
                if not plot.isVisible() or mode not in self.maps or not plot.vb.sceneBoundingRect().contains(pos):
                    continue
                m = self.maps[mode][r]
                p = plot.vb.mapSceneToView(pos)
                x, y = int(round(p.x())), int(round(p.y()))
                if 0 <= x < m.counts.shape[1] and 0 <= y < m.counts.shape[0]:
                    self.readout.setText(pixel_text(mode, m, x, y))
                return

    # ---- export ----------------------------------------------------------------------------------
    def export_figure(self):
        if not self.maps:
            return None
        path = ask_save_path(self, self.settings, "Export coverage maps", "coverage.png", FIGURE_FILTERS)
        if path and run_export(self, path, lambda: write_figure(self.figure.scene(), path, "PadLens coverage",
                                                                self.figure.caption)):
            self.status.setText(f"Wrote {path}")
            return path
        return None

    def save_data(self) -> list:
        modes = self.shown_modes()
        if not modes:
            return []
        names = [f"coverage_{m}{ext}" for m in modes for ext in (".npz", ".csv")]
        folder = ask_folder(self, self.settings, "Save coverage data into folder", names)
        if folder is None:
            return []
        written: list = []
        ok = run_export(self, folder, lambda: written.extend(
            p for m in modes for p in save_coverage(self.maps[m], folder, f"coverage_{m}")))
        if ok:
            self.status.setText(f"Wrote {len(written)} files to {folder}")
        return written


def pixel_text(mode: str, m: CoverageMap, x: int, y: int) -> str:
    """The read-out of one pixel: its paths, and their share of the centre's."""
    v, centre = float(m.counts[y, x]), m.summary["centre"]
    share = f" ({v / centre:.3f} of the centre's)" if centre else ""
    paths = f"{v:,.0f}" if v.is_integer() else f"{v:,.2f}"
    return f"{mode} padding, {m.size}x{m.size} input: pixel x={x}, y={y}: {paths} paths{share}"
