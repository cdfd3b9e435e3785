"""The PadLens main window: feature-map explorer and translation tab over one loaded model."""
from __future__ import annotations

import copy
from pathlib import Path

import torch
from PyQt6.QtCore import QEvent, QEventLoop, QSettings, Qt, QTimer
from PyQt6.QtGui import QAction, QKeySequence, QShortcut
from PyQt6.QtWidgets import (QFileDialog, QInputDialog, QLabel, QMainWindow, QMessageBox, QProgressDialog, QSplitter,
                             QTabWidget)

from padlens.core.activations import mean_activations
from padlens.core.checkpoint import CheckpointError, default_checkpoint
from padlens.core.custom_model import NORMALIZATIONS
from padlens.core.data import (Dataset, DatasetError, download_job, how_to_get, load_splits_job, read_image_file,
                       resolve_data_root, stratified_subset)
from padlens.core.device import pick_device
from padlens.core.layers import path_name
from padlens.core.session import Explorer, LoadedModel, Result, load_custom_job, load_model
from padlens.core.spatial_bias import BORDER_BIAS_HELP, border_bias, mean_map
from padlens.gui.app import APP, ORG
from padlens.gui.elided_label import ElidedLabel
from padlens.gui.export import FIGURE_FILTERS, ask_save_path, run_export, write_figure, write_npy, write_table_csv
from padlens.gui.feature_grid import DEFAULT_SCALE, FeatureGrid
from padlens.gui.grid_settings import auto_precision
from padlens.gui.input_panel import InputChoice, InputPanel
from padlens.gui.layer_tree import LayerTree
from padlens.gui.style import configure_pyqtgraph, figure_caption
from padlens.gui.worker import JobRunner

CLOSE_WAIT_MS = 3000
MODEL_TIMEOUT_S = 60   # an own model's import, build and checking forward pass together; then it is abandoned


def data_status(datasets: dict[str, Dataset]) -> str:
    """The status bar's data label: the splits loaded and where the test split was read from (an absolute
    path, core.data.resolve_data_root)."""
    if "test" not in datasets:
        return "no data set"
    counts = " + ".join(f"{len(ds):,} {split}" for split, ds in datasets.items())
    source = datasets["test"].source   # "CIFAR-10 JPEG test (ImageFolder /path/test)": the folder is what counts
    jpeg = " (lossy JPEG copy)" if "JPEG" in source else ""
    where = source[source.find("(") + 1:-1] if source.endswith(")") else source
    return f"{counts} images{jpeg}: {where}"


class MainWindow(QMainWindow):
    def __init__(self, checkpoint: str | None = None, data_root: str | None = None, device=None):
        super().__init__()
        configure_pyqtgraph()   # before the first plot: each ImageItem reads the axis order when made
        self.setWindowTitle("PadLens")
        self.settings = QSettings(ORG, APP)
        self.device = device
        self.explorer: Explorer | None = None
        self.result: Result | None = None
        self.datasets: dict[str, Dataset] = {}
        self.data_root = resolve_data_root(data_root or self.settings.value("data_root") or None)
        self.mean_runner, self.data_runner = JobRunner(self), JobRunner(self)
        self.model_runner = JobRunner(self)   # an own model's loading (its code may never return)
        self.model_dialog: QProgressDialog | None = None
        self._end_model_load = None   # while an own model loads: ends the wait for it

        self.inputs = InputPanel()
        self.tree = LayerTree()
        self.grid = FeatureGrid()
        left = QSplitter(Qt.Orientation.Vertical)
        left.addWidget(self.inputs)
        left.addWidget(self.tree)
        self.feature_split = QSplitter()
        self.feature_split.addWidget(left)
        self.feature_split.addWidget(self.grid)
        self.feature_split.setStretchFactor(1, 3)
        self.feature_split.setSizes([470, 1030])
        self.left_split = left
        self.tabs = QTabWidget()
        self.tabs.addTab(self.feature_split, "Feature maps")
        from padlens.gui.translation_tab import TranslationTab
        self.translation = TranslationTab(self.settings, self)
        self.tabs.addTab(self.translation, "Translation")
        from padlens.gui.bias_tab import SpatialBiasTab
        self.bias = SpatialBiasTab(self)
        self.tabs.addTab(self.bias, "Spatial bias")
        from padlens.gui.comparison import ComparisonTab
        self.comparison = ComparisonTab(self.settings, self.device, self)
        self.tabs.addTab(self.comparison, "Compare")
        from padlens.gui.analyses_tab import AnalysesTab
        self.analyses = AnalysesTab(self.settings, self.device, self)
        self.tabs.addTab(self.analyses, "Analyses")
        self.setCentralWidget(self.tabs)
        self.model_label, self.data_label = ElidedLabel(), ElidedLabel()
        device = self.device or pick_device()   # where load_model puts the models when none was given
        self.translation.grid.set_device(device)
        self.precision_label = QLabel(f"{device} | grids: {auto_precision(device)}")
        self.statusBar().addPermanentWidget(self.model_label)
        self.statusBar().addPermanentWidget(self.data_label)
        self.statusBar().addPermanentWidget(self.precision_label)
        self._menus()

        self.inputs.inputChosen.connect(self.run_input)
        self.inputs.meanRequested.connect(self.compute_mean)
        self.inputs.meanCancelRequested.connect(self.mean_runner.cancel)
        self.inputs.openFileRequested.connect(self.open_image)
        self.inputs.downloadRequested.connect(self.download_data)
        self.tree.layerSelected.connect(self.show_layer)
        self._restore_settings()
        self.inputs.set_loading(f"Loading CIFAR-10 from {self.data_root}...")   # it starts at the first paint
        self._first_checkpoint: list | None = [checkpoint or self.settings.value("checkpoint") or None]
        self._painted = False
        self._bias_later = False                 # set while the window's first model opens
        self._bias_for: Explorer | None = None   # whose spatial biases wait for the maps' first paint
        self.tabs.installEventFilter(self)
        self.grid.grid_widget.viewport().installEventFilter(self)
        QTimer.singleShot(0, self._start_loads)

    def eventFilter(self, obj, event) -> bool:
        if obj is self.tabs and event.type() == QEvent.Type.Paint and not self._painted:
            self._painted = True
            QTimer.singleShot(0, self._start_loads)   # after this paint: the window is on screen
        elif (self._bias_for is not None and event.type() == QEvent.Type.Paint
              and obj is self.grid.grid_widget.viewport()):
            ex, self._bias_for = self._bias_for, None   # the first maps are on screen: now the biases
            QTimer.singleShot(0, lambda: self.explorer is ex and self._update_bias())
        return super().eventFilter(obj, event)

    def _start_loads(self) -> None:
        """The data set (in a worker) and the model, once the window is on screen, so that it shows at once (the
        flagship's layers and border biases take a second or two); at once for a window never shown. The model
        is skipped when the caller set one first."""
        if self._first_checkpoint is None or (self.isVisible() and not self._painted):
            return
        (first,), self._first_checkpoint = self._first_checkpoint, None
        self.load_data(self.data_root, quiet=True)
        if self.explorer is None:
            # on the Feature maps tab the maps come first, the spatial biases (about a second more) after them
            self._bias_later = self.isVisible() and self.tabs.currentWidget() is self.feature_split
            try:
                self.open_checkpoint(first, fallback=True)
            finally:
                self._bias_later = False

    # ---- menus ---------------------------------------------------------------------------------
    def _action(self, menu, text, slot, shortcut=None, tip=None) -> QAction:
        """A menu entry that calls slot() with no arguments: QAction.triggered carries a `checked` flag, which
        would land in the slot's first parameter (Export all layers took it for its folder)."""
        act = QAction(text, self)
        if shortcut:
            act.setShortcut(QKeySequence(shortcut))
        if tip:
            act.setStatusTip(tip)
        act.triggered.connect(lambda _checked=False: slot())
        menu.addAction(act)
        return act

    def _menus(self) -> None:
        f = self.menuBar().addMenu("&File")
        self._action(f, "Open &checkpoint...", self.choose_checkpoint, QKeySequence.StandardKey.Open)
        self._action(f, "Open c&ustom model...", self.choose_custom_model, "Ctrl+Shift+O",
                     "A Python file with a function that returns your nn.Module, plus its state dict")
        self._action(f, "Open &data folder...", self.choose_data, "Ctrl+D")
        self._action(f, "Open &image...", self.open_image, "Ctrl+I")
        f.addSeparator()
        self._action(f, "&Export feature grid (PNG/SVG/PDF)...", lambda: self.export_scene(self.grid.grid_widget, "grid"), "Ctrl+E")
        self._action(f, "Export enlarged &map (PNG/SVG/PDF)...", lambda: self.export_scene(self.grid.side_widget, "map"), "Ctrl+Shift+M")
        self._action(f, "Export &activations (.npy)...", self.export_npy, "Ctrl+Shift+N")
        self._action(f, "Export a&ll layers...", self.export_all_layers, "Ctrl+Shift+E")
        f.addSeparator()
        self._action(f, "Export t&ranslation heatmaps (PNG/SVG/PDF)...",
                     lambda: self.export_translation(self.translation.export_figure,
                                                     self.translation.figures_written))
        self._action(f, "Export translation &numbers (CSV/NPZ)...",
                     lambda: self.export_translation(self.translation.export_numbers))
        self._action(f, "Export spatial-&bias table (CSV)...", lambda: self.export_table(self.bias.table, "spatial_bias"))
        self._action(f, "Export mean &filters (PNG/SVG/PDF)...",
                     lambda: self.export_figure(self.bias.filters.grid_widget, "mean_filters"))
        self._action(f, "Export comparison &heatmaps (PNG/SVG/PDF)...",
                     lambda: self.export_figure(self.comparison.heat, "comparison_heatmaps"))
        self._action(f, "Export comparison ma&ps (PNG/SVG/PDF)...",
                     lambda: self.export_figure(self.comparison.maps, "comparison_maps"))
        self._action(f, "Export comparison &table (CSV)...",
                     lambda: self.export_table(self.comparison.table, "comparison"))
        f.addSeparator()
        self._action(f, "&Quit", self.close, "Ctrl+Q")   # the standard Quit key is empty on some desktops
        v = self.menuBar().addMenu("&View")
        self._action(v, "&Feature maps", lambda: self.tabs.setCurrentIndex(0), "Ctrl+1")
        self._action(v, "&Translation", lambda: self.tabs.setCurrentIndex(1), "Ctrl+2")
        self._action(v, "&Spatial bias", lambda: self.tabs.setCurrentIndex(2), "Ctrl+3")
        self._action(v, "&Compare checkpoints", lambda: self.tabs.setCurrentIndex(3), "Ctrl+4")
        self._action(v, "&Analyses", lambda: self.tabs.setCurrentWidget(self.analyses), "Ctrl+5",
                     "Coverage, shift equivariance per layer, blind spots, padding-aware channels")
        self._action(v, "Input &size...", self.choose_input_size, "Ctrl+Shift+S",
                     "Resize the 32x32 input before the network (the input-resizing remedy)")
        self._action(v, "&Reset layout", self.reset_layout)
        h = self.menuBar().addMenu("&Help")
        self._action(h, "&About PadLens", self.about, QKeySequence.StandardKey.HelpContents)
        QShortcut(QKeySequence("PgDown"), self, lambda: self.inputs.step(1))
        QShortcut(QKeySequence("PgUp"), self, lambda: self.inputs.step(-1))
        QShortcut(QKeySequence("Ctrl+R"), self, self.inputs.random)

    def about(self) -> None:
        QMessageBox.about(self, "About PadLens",
                          "<b>PadLens</b><br>See how padding breaks the translation robustness of a CNN.<br><br>"
                          "Feature maps after Alsallakh et al., <i>Mind the Pad - CNNs can develop blind spots</i>, "
                          "ICLR 2021.<br>Shortcuts: Ctrl+O checkpoint, Ctrl+I image, PgUp/PgDown previous/next image, "
                          f"Ctrl+R random image, Ctrl+E export grid, Ctrl+1..{self.tabs.count()} tabs, "
                          "Ctrl+Return Start in the Translation tab.")

    # ---- model and data ------------------------------------------------------------------------
    def choose_checkpoint(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open checkpoint", str(self.settings.value("checkpoint") or ""),
                                              "PadLens checkpoints (*.pt *.pth);;All files (*)")
        if path:
            self.open_checkpoint(path)

    def open_checkpoint(self, path, fallback: bool = False) -> bool:
        """Open a checkpoint (None: the flagship); True once it is shown. With fallback (at start-up: the
        --checkpoint or the last one), a file that cannot be opened gives way to the flagship, and a message
        names the file, why it was refused and which model is shown instead."""
        try:
            loaded = load_model(path or default_checkpoint(), self.device)
        except CheckpointError as e:
            if not (fallback and path):
                QMessageBox.warning(self, "Cannot open checkpoint", str(e))
                return False
            if self.open_checkpoint(None):
                shown = self.explorer.loaded.name
                self.statusBar().showMessage(f"{Path(path).name} was refused; showing {shown}", 15000)
                QMessageBox.warning(self, "Checkpoint refused", f"{e}\n\nShowing {shown} (the shipped default) "
                                    "instead; File > Open checkpoint opens another.")
            return False
        self.set_model(loaded)
        self.settings.setValue("checkpoint", loaded.meta.get("path", str(path)))
        return True

    def choose_custom_model(self) -> None:
        py, _ = QFileDialog.getOpenFileName(self, "Python file that builds the model", "", "Python (*.py)")
        if not py:
            return
        fn, ok = QInputDialog.getText(self, "Model function", "Name of the function that returns the nn.Module:",
                                      text=str(self.settings.value("custom_function", "build_model")))
        if not ok or not fn:
            return
        weights, _ = QFileDialog.getOpenFileName(self, "State dict (Cancel: keep the function's own weights)",
                                                 str(Path(py).parent), "PyTorch weights (*.pt *.pth);;All files (*)")
        names = list(NORMALIZATIONS)
        labels = [NORMALIZATIONS[n][0] for n in names]
        last = str(self.settings.value("custom_normalization", "cifar10"))
        label, ok = QInputDialog.getItem(self, "Input normalization", "The model was trained on inputs scaled as:",
                                         labels, names.index(last) if last in names else 0, False)
        if ok:
            self.open_custom_model(py, fn, weights or None, names[labels.index(label)])

    def open_custom_model(self, py: str, function: str, weights: str | None, normalization: str = "cifar10") -> bool:
        """Open an own model; True once it is shown. Its import, build and a checking forward pass run on a
        worker, as any of them may take long or never end: a progress dialog names the step, and Cancel,
        closing the window or MODEL_TIMEOUT_S abandon it (Python cannot stop running code; it is left to
        end on its own, never waited for). The window stays usable meanwhile."""
        name = Path(py).name
        if self.model_runner.running:   # an earlier load still stuck in its step
            self.model_runner.abandon()
        outcome: dict = {}
        step = [f"importing {name}"]
        wait = QEventLoop(self)
        dialog = self.model_dialog = QProgressDialog(f"Opening {name}: {step[0]}...", "Cancel", 0, 0, self)
        dialog.setWindowTitle("Opening your model")
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.setMinimumDuration(300)   # a quick load shows no dialog
        dialog.setAutoReset(False)
        dialog.setAutoClose(False)

        def end(kind: str, value=None) -> None:
            if not outcome:   # the first of result, error, Cancel, timeout or close counts
                outcome[kind] = value
            wait.quit()

        def progress(done: int, total: int, msg: str) -> None:
            step[0] = msg
            dialog.setMaximum(total)
            dialog.setValue(done)
            dialog.setLabelText(f"Opening {name}: {msg}...")

        def job(stop):
            try:
                return (yield from load_custom_job(py, function, weights, self.device, normalization, stop))
            except ValueError as e:   # CustomModelError: a message for the user, not a crash
                return e

        timer = QTimer(self)
        timer.setSingleShot(True)
        timer.timeout.connect(lambda: end("timeout"))
        timer.start(int(MODEL_TIMEOUT_S * 1000))
        dialog.canceled.connect(lambda: end("cancel"))
        self._end_model_load = lambda: end("closed")
        self.model_runner.start(job, on_progress=progress, on_result=lambda v: end("done", v),
                                on_error=lambda msg: end("done", RuntimeError(msg)))
        if not outcome:
            wait.exec()
        timer.stop()
        dialog.close()
        timer.deleteLater()
        dialog.deleteLater()
        self.model_dialog = self._end_model_load = None
        (kind, loaded), = outcome.items()
        if kind != "done" or not self.model_runner.stop(CLOSE_WAIT_MS):
            self.model_runner.abandon()
        if kind in ("timeout", "cancel"):
            what = (f"Opening {name} took longer than {MODEL_TIMEOUT_S} s" if kind == "timeout" else
                    f"Opening {name} was cancelled")
            text = (f"{what}, while {step[0]}. The load is abandoned: Python cannot stop code that is running, so it "
                    "is left to end on its own (it may keep a CPU core busy until PadLens quits). "
                    + (f"Look in {name} for an endless loop, a sleep or a wait for input in that step. "
                       if kind == "timeout" else "")
                    + ("The model shown stays open." if self.explorer is not None else ""))
            self.statusBar().showMessage(text, 15000)
            if kind == "timeout":
                QMessageBox.warning(self, "Your model takes too long", text)
            return False
        if not isinstance(loaded, LoadedModel):   # closed, stopped, or an error to show
            if isinstance(loaded, Exception):
                QMessageBox.warning(self, "Cannot open this model", str(loaded))
            return False
        self.settings.setValue("custom_function", function)
        self.settings.setValue("custom_normalization", normalization)
        self.set_model(loaded)
        if not self.explorer.layers:
            QMessageBox.information(self, "No layers to show", loaded.meta.get("summary", ""))
        return True

    def set_model(self, loaded: LoadedModel) -> None:
        self.mean_runner.cancel()   # not waited for: compute_mean's finish drops maps of another model
        self.explorer = Explorer(loaded, precision="fp32")
        try:
            self.explorer.set_input_size(int(self.settings.value("input_size", 32)))
        except ValueError as e:
            self.statusBar().showMessage(f"{e} Input size 32x32 for this model.", 10000)
        self.model_label.setText(f"{loaded.name} | padding {loaded.padding_mode} | {loaded.accuracy_text}")
        self.translation.set_model(loaded, self.explorer.input_size)
        self.analyses.set_model(loaded, self.explorer.input_size)
        self._layers_changed()
        self.inputs.emit_choice()

    def _layers_changed(self) -> None:
        """Model or input size changed: rebuild the tree, the spatial-bias measures and the Compare tab's
        layer list, and drop the maps on show (they are the old model's or size's; the input panel's
        choice runs again after, but a dataset mean has to be computed again)."""
        ex = self.explorer
        self.result = None
        again = "Not computed for this model and input size: press Compute."
        if self.inputs.mean_outcome:   # a mean of the old model or size was shown
            self.inputs.set_mean_outcome(again)
        self.inputs.show_input(None, "")
        shown = f"Dataset mean: {again}" if self.inputs.kind == "mean" else ""
        self.grid.clear(shown)
        self.tree.set_layers(ex.layers)
        if self._bias_later:
            self._bias_for = ex
        else:
            self._update_bias()
        self.comparison.set_input_size(ex.input_size)   # a model can refuse the saved size and fall back to 32
        self.analyses.set_input_size(ex.input_size)

    def _update_bias(self) -> None:
        """The spatial-bias tab's measures of the explorer's model at its input size (blank inputs; a dataset
        mean only once computed again)."""
        ex = self.explorer
        blank = {k: ex.run_blank(k).acts for k in ("normalized", "pixel")}
        self.bias.set_mean_biases({})
        self.bias.set_model(ex.loaded.model, ex.layers, blank, ex.input_size, ex.loaded.padding_mode)
        from padlens.gui.bias_tab import filters_caption
        self.bias.filters.grid_widget.caption = filters_caption(ex.loaded.name, ex.loaded.padding_mode)

    def choose_data(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open CIFAR-10 folder", str(self.data_root))
        if path:
            self.load_data(Path(path))

    def load_data(self, root: Path, quiet: bool = False) -> None:
        if self.data_runner.running:
            return
        self.data_label.setText(f"loading data from {root}...")
        self.inputs.set_loading(f"Loading CIFAR-10 from {root}...")

        def done(datasets):
            self.data_root = resolve_data_root(root)   # absolute: read back from wherever the app starts next
            self.settings.setValue("data_root", str(self.data_root))
            self.set_datasets(datasets)

        def failed(msg):
            self.set_datasets({})
            if not quiet:
                QMessageBox.warning(self, "No data set", msg)
        def progress(done_, total, msg):
            self.data_label.setText(f"{msg}: {done_:,} of {total:,}")
            self.inputs.set_loading(f"Loading CIFAR-10 from {root}: {msg}, {done_:,} of {total:,}")

        def cancelled(_):
            self.set_datasets({})
            self.data_label.setText("loading the data set was cancelled")
        self.data_runner.start(lambda stop: load_splits_job(root, stop), on_progress=progress,
                               on_result=done, on_error=failed, on_cancelled=cancelled)

    def set_datasets(self, datasets: dict[str, Dataset]) -> None:
        self.datasets = datasets
        test = datasets.get("test")
        self.data_label.setText(data_status(datasets))
        self.data_label.setToolTip(test.source if test else "")
        self.inputs.set_datasets(datasets, "No CIFAR-10 found. " + how_to_get(self.data_root))
        self.translation.set_data(test)
        self.comparison.set_data(test)
        self.analyses.set_data(test)

    def download_data(self) -> None:
        bar = self.inputs.download_bar
        bar.show()
        self.inputs.download_btn.setEnabled(False)

        def failed(msg):
            self.inputs.download_btn.setEnabled(True)
            QMessageBox.warning(self, "Download failed", msg)
        self.data_runner.start(lambda stop: download_job(self.data_root, stop),
                               on_progress=lambda d, t, m: (bar.setMaximum(t), bar.setValue(d), bar.setFormat(m)),
                               on_result=lambda _: self.load_data(self.data_root), on_error=failed)

    def choose_input_size(self) -> None:
        if self.explorer is None:
            return
        size, ok = QInputDialog.getInt(self, "Input size", "Resize the 32x32 input to (pixels):",
                                       self.explorer.input_size, 8, 256)
        if ok:
            self.set_input_size(size)

    def set_input_size(self, size: int) -> None:
        try:
            self.explorer.set_input_size(size)
        except ValueError as e:
            QMessageBox.warning(self, "Cannot resize the input", str(e))
            return
        self.settings.setValue("input_size", size)
        note = ""
        if self.mean_runner.running:   # its maps have the old size; compute_mean's finish drops them
            self.mean_runner.cancel()
            note = "; the dataset mean running at the old size was cancelled"
        self._layers_changed()
        self.translation.set_input_size(size)
        self.statusBar().showMessage(f"input resized to {size}x{size} before the network{note}", 5000)
        self.inputs.emit_choice()

    # ---- inputs --------------------------------------------------------------------------------
    def open_image(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open image", "", "Images (*.png *.jpg *.jpeg *.bmp *.webp)")
        if path:
            self.inputs.file_path = path
            self.inputs.set_kind("file")
            self.inputs.emit_choice()

    def run_input(self, choice: InputChoice) -> None:
        if self.explorer is None:
            return
        ex = self.explorer
        pixels, caption = None, ""
        try:
            if choice.kind == "dataset":
                ds = self.datasets[choice.split]
                pixels = ds.images[choice.index]
                caption = f"true: <b>{ex.loaded.class_name(ds.labels[choice.index])}</b>"
                result = ex.run_pixels(pixels, choice.label)
            elif choice.kind == "blank":
                result = ex.run_blank(choice.blank)
                pixels = ex.loaded.norm.to_pixels(result.input_image)
                caption = result.label
            elif choice.kind == "file":
                pixels = read_image_file(choice.path)
                result = ex.run_pixels(pixels, Path(choice.path).name)
                caption = f"{Path(choice.path).name}, converted to 32x32 RGB"
            else:
                return
        except (DatasetError, KeyError) as e:
            QMessageBox.warning(self, "Cannot use this input", str(e))
            return
        preds = ", ".join(f"{n} {100 * p:.1f}%" for n, p in ex.top_predictions(result.logits))
        self.inputs.show_input(pixels, f"{caption}<br>predicted: {preds}")
        self.set_result(result)

    def compute_mean(self, split: str, count: int) -> None:
        if self.explorer is None or split not in self.datasets or self.mean_runner.running:
            return
        ex, ds, size = self.explorer, self.datasets[split], self.explorer.input_size
        images = ds.images[stratified_subset(ds.labels, count)]   # ImageFolder splits are sorted by class
        model = copy.deepcopy(ex.loaded.model).eval()   # the GUI keeps running its own forward passes
        bar = self.inputs.mean_bar
        self.inputs.set_mean_running(True)

        def job(stop):
            return (yield from mean_activations(model, images, ex.loaded.norm, ex.device,
                                                ex.precision, size=size, should_stop=stop))

        def finish(value, cancelled=False):
            if self.explorer is not ex or ex.input_size != size:   # changed meanwhile: a cancel can come too late
                self.inputs.set_mean_outcome(f"Discarded: the mean at {size}x{size} no longer fits the model "
                                             "or the input size; compute it again.")
                return
            acts, n = value
            self.inputs.set_mean_outcome(("Cancelled: showing the mean over the first " if cancelled else
                                          "Mean over ") + f"{n} {split} images.")
            if n:
                mean_pixels = images[:n].float().mean(0).round().to(torch.uint8)
                self.inputs.show_input(mean_pixels, f"dataset mean: responses averaged over {n} images "
                                                    "(thumbnail: the average image)")
                self.set_result(Result(acts, None, ex.prepare(mean_pixels)[0], f"mean over {n} {split} images"))
                self.bias.set_mean_biases(acts)

        self.mean_runner.start(
            job, on_progress=lambda d, t, m: (bar.setMaximum(t), bar.setValue(d)),
            on_result=finish, on_cancelled=lambda v: finish(v, True),
            on_error=lambda m: QMessageBox.warning(self, "Dataset mean failed", m),
            on_finished=lambda: self.inputs.set_mean_running(False))

    def set_result(self, result: Result) -> None:
        self.result = result
        self.show_layer(self.tree.selected_path())

    def show_layer(self, path) -> None:
        if self.result is None or path is None:
            return
        act = self.result.acts.get(tuple(path))
        if act is None:
            self.grid.clear("This layer produced no output for this input.")
            return
        info = next((i for i in self.explorer.layers if i.path == tuple(path)), None)
        self.settings.setValue("layer", path_name(path))
        self.grid.set_maps(act, f"{info.name} {info.type}  [{self.result.label}]" if info else str(path))
        self.grid.grid_widget.caption = self.grid.side_widget.caption = self._maps_caption(info)
        if act.dim() == 3:
            bias = border_bias(mean_map(act))
            self.grid.info.setText(self.grid.info.text() + (f", border bias {bias:.3f}" if bias == bias else ""))
            self.grid.info.setToolTip(BORDER_BIAS_HELP)

    # ---- export --------------------------------------------------------------------------------
    def _layer_name(self) -> str:
        path = self.tree.selected_path() or ()
        return path_name(path)

    def _maps_caption(self, info) -> str:
        """What an exported feature-map figure shows: model, padding, layer, input, and the data set when the
        input came from it."""
        ex, test = self.explorer, self.datasets.get("test")
        size = f", resized to {ex.input_size}x{ex.input_size}" if ex.input_size != 32 else ""
        from_data = self.inputs.kind in ("dataset", "mean") and test is not None
        return figure_caption(model=ex.loaded.name, padding=ex.loaded.padding_mode,
                              layer=f"{info.name} {info.type}" if info else "", input=self.result.label + size,
                              data=test.source if from_data else "")

    def export_scene(self, widget, what: str) -> None:
        if self.grid.maps is not None:
            self.export_figure(widget, f"{self._layer_name()}_{what}")

    def export_figure(self, widget, name: str) -> Path | None:
        """Any plot of the window (a pyqtgraph widget) as PNG or SVG."""
        path = ask_save_path(self, self.settings, "Export figure", f"{name}.png", FIGURE_FILTERS)
        if path and run_export(self, path, lambda: write_figure(widget.scene(), path, f"PadLens {name}",
                                                                getattr(widget, "caption", ""))):
            self.statusBar().showMessage(f"wrote {path}", 5000)
            return path
        return None

    def export_table(self, table, name: str) -> Path | None:
        if not table.rowCount():
            self.statusBar().showMessage("Nothing to export yet: the table is empty.", 5000)
            return None
        path = ask_save_path(self, self.settings, "Export table", f"{name}.csv", "CSV (*.csv)")
        if path and run_export(self, path, lambda: write_table_csv(table, path)):
            self.statusBar().showMessage(f"wrote {path}", 5000)
            return path
        return None

    def export_translation(self, export, written=lambda path: f"wrote {path}") -> Path | None:
        """File > Export translation ...: the grid on the Translation tab through its export, or a message
        that there is none yet; `written` says what the export wrote."""
        if self.translation.result is None:
            self.statusBar().showMessage("Nothing to export yet: compute a grid on the Translation tab (Ctrl+2).", 5000)
            return None
        path = export()
        if path:
            self.statusBar().showMessage(written(path), 5000)
        return path

    def export_npy(self) -> None:
        path = self.tree.selected_path()
        if self.result is None or path is None:
            return
        out = ask_save_path(self, self.settings, "Export activations", f"{self._layer_name()}.npy",
                            "NumPy array (*.npy)")
        if out and run_export(self, out, lambda: write_npy(self.result.acts[tuple(path)].numpy(), out)):
            self.statusBar().showMessage(f"wrote {out}", 5000)

    def export_all_layers(self, folder: str | None = None, suffix: str = ".png") -> list[Path]:
        if self.result is None:
            return []
        if folder is None:
            folder = QFileDialog.getExistingDirectory(self, "Export all layers into folder",
                                                      str(self.settings.value("export_dir") or Path.home()))
            if not folder:
                return []
        folder = Path(folder)
        infos = [i for i in self.explorer.layers if i.path in self.result.acts]
        targets = [folder / f"{i.name}_{i.type}{suffix}" for i in infos]
        clash = [t for t in targets if t.exists()]
        if clash and QMessageBox.question(
                self, "Replace files?", f"{len(clash)} of {len(targets)} files exist in {folder}. Replace them?",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                QMessageBox.StandardButton.No) != QMessageBox.StandardButton.Yes:
            return []
        keep = self.tree.selected_path()
        written = []
        try:
            for info, target in zip(infos, targets):
                self.grid.set_maps(self.result.acts[info.path], f"{info.name} {info.type}  [{self.result.label}]")
                written.append(write_figure(self.grid.grid_widget.scene(), target, f"PadLens {info.name}",
                                            self._maps_caption(info)))
        except OSError as e:
            QMessageBox.warning(self, "Export failed", f"{e}")
        finally:
            self.show_layer(keep)
        self.statusBar().showMessage(f"wrote {len(written)} figures to {folder}", 5000)
        return written

    # ---- settings and closing ------------------------------------------------------------------
    def _restore_settings(self) -> None:
        s = self.settings
        if s.value("geometry"):
            self.restoreGeometry(s.value("geometry"))
        else:
            self.resize(1400, 900)
        for key, split in (("feature_split", self.feature_split), ("left_split", self.left_split)):
            if s.value(key):
                split.restoreState(s.value(key))
        self.grid.cmap_box.setCurrentText(s.value("colormap", "viridis"))
        self.grid.scale_box.setCurrentText(s.value("scale", DEFAULT_SCALE))
        self.inputs.kind_box.setCurrentIndex(int(s.value("input_kind", 0)))
        self.inputs.index_spin.setValue(int(s.value("index", 0)))
        self.tabs.setCurrentIndex(int(s.value("tab", 0)))
        layer = s.value("layer")
        if isinstance(layer, str):   # by name: a path may hold attribute names as well as indices
            QTimer.singleShot(0, lambda: self.tree.select_name(layer))

    def save_settings(self) -> None:
        s = self.settings
        s.setValue("geometry", self.saveGeometry())
        s.setValue("feature_split", self.feature_split.saveState())
        s.setValue("left_split", self.left_split.saveState())
        s.setValue("colormap", self.grid.cmap_box.currentText())
        s.setValue("scale", self.grid.scale_box.currentText())
        s.setValue("input_kind", self.inputs.wanted_kind_index)
        s.setValue("index", self.inputs.index_spin.value())
        s.setValue("tab", self.tabs.currentIndex())
        self.translation.save_settings(s)
        self.comparison.save_settings(s)

    def reset_layout(self) -> None:
        self.resize(1400, 900)
        self.feature_split.setSizes([450, 950])
        self.left_split.setSizes([400, 500])

    def closeEvent(self, event) -> None:
        self.save_settings()
        if self._end_model_load is not None:   # an own model still loading: abandoned, never waited for
            self._end_model_load()
        for runner in (self.mean_runner, self.data_runner, self.translation.runner, self.translation.timer,
                       self.comparison.runner, self.comparison.timer, self.analyses):
            runner.stop(CLOSE_WAIT_MS)
        super().closeEvent(event)

