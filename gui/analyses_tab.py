"""The Analyses tab: one sub-tab per further analysis of the loaded model (coverage, shift equivariance per
layer, ...), each a panel the main window feeds through this tab.

Every panel is a QWidget with this interface, which the tab forwards to all of them:

    Panel(settings: QSettings | None, device: torch.device, parent=None)   # where the window's models run
    set_model(loaded: LoadedModel, input_size: int) -> None   # a model and the input size it runs at, in one step
    set_data(test: Dataset | None) -> None                    # the test split, or None when there is none
    set_input_size(size: int) -> None                         # View > Input size moved
    cancel() -> None                                          # stop its jobs, without waiting

A panel runs its long work through gui/worker.py JobRunners made as its children (JobRunner(self)): the
tab's stop() cancels every panel and waits a bounded time for those runners, as the window's close does
for every tab. Adding a panel is one line in _panels().
"""
from __future__ import annotations

import copy
import time
from pathlib import Path

from PyQt6.QtCore import QSettings
from PyQt6.QtWidgets import QFileDialog, QMessageBox, QTabWidget, QWidget

from padlens.gui.worker import JobRunner


def _panels() -> list[tuple[type, str]]:
    """(class, tab title) of every panel, in tab order."""
    from padlens.gui.coverage_panel import CoveragePanel
    from padlens.gui.blindspot_panel import BlindspotPanel
    from padlens.gui.channels_panel import ChannelsPanel
    from padlens.gui.equivariance_panel import EquivariancePanel
    return [
        (CoveragePanel, "Coverage"),
        (EquivariancePanel, "Shift equivariance"),
        (BlindspotPanel, "Blind spots"),
        (ChannelsPanel, "Padding-aware channels"),
    ]


class AnalysesTab(QTabWidget):
    """Holds only what the main window pushes to it; forwards each call to every panel."""

    def __init__(self, settings: QSettings | None = None, device=None, parent=None):
        super().__init__(parent)
        from padlens.core.device import pick_device
        device = device or pick_device()   # where load_model put the window's model when it was given none
        self.panels: list[QWidget] = []
        for cls, title in _panels():
            panel = cls(settings, device, self)
            self.panels.append(panel)
            self.addTab(panel, title)

    def set_model(self, loaded, input_size: int) -> None:
        for p in self.panels:
            p.set_model(loaded, input_size)

    def set_data(self, test) -> None:
        for p in self.panels:
            p.set_data(test)

    def set_input_size(self, size: int) -> None:
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
