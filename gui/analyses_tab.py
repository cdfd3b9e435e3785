"""The Analyses tab: one sub-tab per further analysis of the loaded model (coverage, shift equivariance per
layer, ...), each a panel the main window feeds through this tab.

A panel is made when its sub-tab is first shown (the four figures cost a third of a second that the window's
start would otherwise wait for) and gets the latest model, input size and data then. Every panel is a QWidget
with this interface, which the tab forwards to all panels made:

    Panel(settings: QSettings | None, device: torch.device, parent=None)   # where the window's models run
    set_model(loaded: LoadedModel, input_size: int) -> None   # a model and the input size it runs at, in one step
    set_data(test: Dataset | None) -> None                    # the test split, or None when there is none
    set_input_size(size: int) -> None                         # View > Input size moved
    cancel() -> None                                          # stop its jobs, without waiting

A panel runs its long work through gui/worker.py JobRunners made as its children (JobRunner(self)): the
tab's stop() cancels every panel and waits a bounded time for those runners, as the window's close does
for every tab. Adding a panel is a line in PANELS.
"""
from __future__ import annotations

import copy
import time
from pathlib import Path

from PyQt6.QtCore import QSettings
from PyQt6.QtWidgets import QFileDialog, QMessageBox, QTabWidget, QVBoxLayout, QWidget

from padlens.gui.worker import JobRunner


def _coverage():
    from padlens.gui.coverage_panel import CoveragePanel
    return CoveragePanel


def _equivariance():
    from padlens.gui.equivariance_panel import EquivariancePanel
    return EquivariancePanel


def _blindspots():
    from padlens.gui.blindspot_panel import BlindspotPanel
    return BlindspotPanel


def _channels():
    from padlens.gui.channels_panel import ChannelsPanel
    return ChannelsPanel


PANELS = (("Coverage", _coverage), ("Shift equivariance", _equivariance), ("Blind spots", _blindspots),
          ("Padding-aware channels", _channels))   # (tab title, what imports the panel's class when first shown)


class _Page(QWidget):
    """A sub-tab's page: empty until first shown, then it holds its panel (made then, so that the window's
    start pays for none of the four panels' figures)."""

    def __init__(self, panel_class, parent=None):
        super().__init__(parent)
        self.panel_class, self.panel = panel_class, None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)


class AnalysesTab(QTabWidget):
    """Holds only what the main window pushes to it; forwards each call to every panel made so far, and hands
    the latest model, input size and data to a panel when it is made."""

    def __init__(self, settings: QSettings | None = None, device=None, parent=None):
        super().__init__(parent)
        from padlens.core.device import pick_device
        self.settings = settings
        self.device = device or pick_device()   # where load_model put the window's model when it was given none
        self.loaded, self.input_size, self.data = None, 32, None
        for title, panel_class in PANELS:
            self.addTab(_Page(panel_class, self), title)
        self.currentChanged.connect(lambda _: self._make_current())

    @property
    def panels(self) -> list[QWidget]:
        """The panels made so far, in tab order."""
        return [page.panel for page in map(self.widget, range(self.count())) if page.panel is not None]

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._make_current()

    def _make_current(self) -> None:
        page = self.currentWidget()
        if page is None or page.panel is not None or not self.isVisible():
            return
        panel = page.panel_class()(self.settings, self.device, page)
        if self.loaded is not None:
            panel.set_model(self.loaded, self.input_size)
        if self.data is not None:
            panel.set_data(self.data)
        page.layout().addWidget(panel)
        page.panel = panel

    def set_model(self, loaded, input_size: int) -> None:
        self.loaded, self.input_size = loaded, input_size
        for p in self.panels:
            p.set_model(loaded, input_size)

    def set_data(self, test) -> None:
        self.data = test
        for p in self.panels:
            p.set_data(test)

    def set_input_size(self, size: int) -> None:
        self.input_size = size
        for p in self.panels:
            p.set_input_size(size)

    def cancel(self) -> None:
        for p in self.panels:
            p.cancel()

    def stop(self, timeout_ms: int = 5000) -> bool:
        """Cancel every panel's jobs and wait up to timeout_ms in all; True when all have ended."""
        self.cancel()
        end = time.monotonic() + timeout_ms / 1000
        ended = True
        for runner in [r for p in self.panels for r in p.findChildren(JobRunner)]:
            ended &= runner.stop(max(0, int((end - time.monotonic()) * 1000)))
        return ended


class AnalysisPanel(QWidget):
    """What a panel holds of the interface above: only what its host pushes (settings and device at
    construction, then model, data and input size; it never reads its parent), a JobRunner of its own, and
    the last job's event, message and seconds, which its status line derives from. Subclasses show the state
    in `_refresh()`."""

    def __init__(self, settings: QSettings | None, device, parent=None):
        super().__init__(parent)
        self.settings, self.device = settings, device
        self.runner = JobRunner(self)
        self.loaded = None   # core.session.LoadedModel
        self.input_size = 32
        self.data = None     # core.data.Dataset, the test split
        self.event, self.message, self.seconds = "", "", None

    def set_data(self, test) -> None:
        self.data = test
        self._refresh()

    def cancel(self) -> None:
        self.runner.cancel()

    def _refresh(self) -> None:
        raise NotImplementedError


def job_copy(model):
    """The model for a job: its modules copied here, on the GUI thread, whose forward hooks come and go (a job
    then never meets them), sharing the weights, which no job changes (a deep copy of the flagship's took
    longer than a frame)."""
    return copy.deepcopy(model, {id(t): t for t in [*model.parameters(), *model.buffers()]})


def ask_folder(parent: QWidget, settings: QSettings | None, title: str, files: list[str]) -> Path | None:
    """A folder for an analysis's data files (named `files`), starting in the last export folder; asks before
    replacing any of them. None when the user backs out."""
    start = str(settings.value("export_dir") or Path.home()) if settings is not None else str(Path.home())
    folder = QFileDialog.getExistingDirectory(parent, title, start)
    if not folder:
        return None
    folder = Path(folder)
    clash = [f for f in files if (folder / f).exists()]
    if clash and QMessageBox.question(
            parent, "Replace files?", f"{len(clash)} of {len(files)} files exist in {folder} ({', '.join(clash[:3])}"
            f"{' ...' if len(clash) > 3 else ''}). Replace them?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No) != QMessageBox.StandardButton.Yes:
        return None
    if settings is not None:
        settings.setValue("export_dir", str(folder))
    return folder
