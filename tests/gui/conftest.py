"""Fixtures of the GUI tests: file dialogs answered the way a user would."""
import pytest
from PyQt6.QtWidgets import QFileDialog, QMessageBox


@pytest.fixture
def save_as(monkeypatch):
    """save_as(path, ...): the save dialogs answer these paths in turn, and "replace it?" is answered yes;
    save_as.folder(path): the folder dialog's answer."""
    def answer(*paths):
        it = iter(paths)
        monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(next(it)), ""))
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    answer.folder = lambda path: monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(path))
    return answer
