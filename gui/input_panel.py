"""Choose what goes into the network: a dataset image, a blank tensor, the dataset mean, or a file."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QImage, QPixmap
from PyQt6.QtWidgets import (QButtonGroup, QComboBox, QFormLayout, QHBoxLayout, QLabel, QProgressBar,
                             QPushButton, QRadioButton, QSpinBox, QStackedWidget, QVBoxLayout, QWidget)

from padlens.core.activations import BLANK_KINDS
from padlens.core.data import CLASSES, Dataset

KINDS = ("Dataset image", "Blank tensor", "Dataset mean", "Image file")
NEEDS_DATA = ("dataset", "mean")
NO_DATA = ("No data set: the blank tensors and your own image files work without it (feature maps, spatial "
           "bias); the translation grids, Compare and the dataset mean need CIFAR-10.")
MEAN_HINT = "Each layer's response averaged over N images (not the response to an average image)."


def dataset_label(split: str, index: int, class_name: str | None = None, position: int = 0, count: int = 0) -> str:
    """What the maps' title calls a data-set image: its index in the split and, under a class filter, its place
    among that class's images as the index box counts it ('test image 3999 (cat 999 / 999)')."""
    label = f"{split} image {index}"
    return label if class_name is None else f"{label} ({class_name} {position} / {count - 1})"


def index_suffix(count: int) -> str:
    """The index box's suffix: the last index it reaches, counted from 0 as the title counts ('999 / 999')."""
    return f" / {count - 1}" if count else " (no images)"


def mean_status_text(has_data: bool, loading: bool, running: bool, outcome: str, advice: str) -> str:
    """The dataset-mean page's status line, from the data set's state and the last mean's outcome."""
    if loading:
        return "Waiting for the data set to load."
    if not has_data:
        return f"Needs the data set. {advice}".strip()
    if running:
        return "Computing the mean: Cancel keeps the images done so far."
    return outcome or MEAN_HINT


@dataclass(frozen=True)
class InputChoice:
    kind: str                 # "dataset", "blank", "mean", "file"
    split: str = "test"
    index: int = 0            # index into the whole split
    blank: str = "normalized"
    count: int = 1000
    path: str = ""
    label: str = ""           # a data-set image's title (dataset_label)


def pixmap_of(pixels: torch.Tensor, size: int = 128) -> QPixmap:
    """uint8 [3,H,W] -> a nearest-neighbour enlarged pixmap (so 32x32 pixels stay visible)."""
    arr = np.ascontiguousarray(pixels.permute(1, 2, 0).numpy().astype(np.uint8))
    h, w, _ = arr.shape
    img = QImage(arr.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
    return QPixmap.fromImage(img).scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio,
                                         Qt.TransformationMode.FastTransformation)


class InputPanel(QWidget):
    inputChosen = pyqtSignal(object)       # InputChoice
    meanRequested = pyqtSignal(str, int)   # split, count
    meanCancelRequested = pyqtSignal()
    downloadRequested = pyqtSignal()
    openFileRequested = pyqtSignal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.datasets: dict[str, Dataset] = {}
        self.file_path = ""
        self.loading = False          # a data set is being loaded
        self.mean_running = False
        self.mean_outcome = ""        # what the last dataset mean came to ("" before any)
        self.advice = ""              # how to get the data set
        self.blank_for_no_data = False   # switched to the blank tensor because the data set is missing
        self.kind_box = QComboBox()
        self.kind_box.addItems(KINDS)
        self.pages = QStackedWidget()
        self.pages.addWidget(self._dataset_page())
        self.pages.addWidget(self._blank_page())
        self.pages.addWidget(self._mean_page())
        self.pages.addWidget(self._file_page())
        self.kind_box.currentIndexChanged.connect(self._kind_changed)
        self.thumb = QLabel()
        self.thumb.setFixedSize(128, 128)
        self.thumb.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.thumb.setStyleSheet("background: #222; color: #aaa;")
        self.caption = QLabel(" ")
        self.caption.setWordWrap(True)
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.no_data_hint = QLabel(NO_DATA)
        self.no_data_hint.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<b>Input</b>"))
        layout.addWidget(self.no_data_hint)
        layout.addWidget(self.kind_box)
        layout.addWidget(self.pages)
        row = QHBoxLayout()
        row.addWidget(self.thumb)
        row.addWidget(self.caption, 1)
        layout.addLayout(row)
        self.set_datasets({}, "")
        self.blank_for_no_data = False   # no data set yet, but none looked for either: the window restores the kind

    # ---- pages ---------------------------------------------------------------------------------
    def _dataset_page(self) -> QWidget:
        page = QWidget()
        self.split_box = QComboBox()
        self.split_box.addItems(["test", "train"])
        self.class_box = QComboBox()
        self.class_box.addItems(["all classes", *CLASSES])
        self.index_spin = QSpinBox()
        self.index_spin.setKeyboardTracking(False)
        self.prev_btn, self.next_btn, self.rand_btn = QPushButton("< Prev"), QPushButton("Next >"), QPushButton("Random")
        self.prev_btn.setToolTip("Previous image (Page Up)")
        self.next_btn.setToolTip("Next image (Page Down)")
        self.rand_btn.setToolTip("Random image (Ctrl+R)")
        self.no_data = QLabel()
        self.no_data.setWordWrap(True)
        self.download_btn = QPushButton("Download CIFAR-10 (170 MB)")
        self.download_bar = QProgressBar()
        self.download_bar.hide()
        self.download_btn.clicked.connect(self.downloadRequested)
        form = QFormLayout()
        form.addRow("Split", self.split_box)
        form.addRow("Class", self.class_box)
        form.addRow("Index", self.index_spin)
        nav = QHBoxLayout()
        for b in (self.prev_btn, self.next_btn, self.rand_btn):
            nav.addWidget(b)
        v = QVBoxLayout(page)
        v.setContentsMargins(0, 0, 0, 0)
        self.data_controls = QWidget()
        dc = QVBoxLayout(self.data_controls)
        dc.setContentsMargins(0, 0, 0, 0)
        dc.addLayout(form)
        dc.addLayout(nav)
        v.addWidget(self.data_controls)
        v.addWidget(self.no_data)
        v.addWidget(self.download_btn)
        v.addWidget(self.download_bar)
        self.split_box.currentTextChanged.connect(self._filter_changed)
        self.class_box.currentIndexChanged.connect(self._filter_changed)
        self.index_spin.valueChanged.connect(lambda _: self.emit_choice())
        self.prev_btn.clicked.connect(lambda: self.step(-1))
        self.next_btn.clicked.connect(lambda: self.step(1))
        self.rand_btn.clicked.connect(self.random)
        return page

    def _blank_page(self) -> QWidget:
        page = QWidget()
        self.blank_group = QButtonGroup(page)
        v = QVBoxLayout(page)
        v.setContentsMargins(0, 0, 0, 0)
        for i, (kind, text) in enumerate(BLANK_KINDS.items()):
            rb = QRadioButton("zeros after normalization" if kind == "normalized" else "zeros before normalization (black)")
            rb.setProperty("kind", kind)
            rb.setChecked(i == 0)
            self.blank_group.addButton(rb, i)
            v.addWidget(rb)
        self.blank_note = QLabel()
        self.blank_note.setWordWrap(True)
        v.addWidget(self.blank_note)
        self.blank_group.idToggled.connect(lambda *_: self.emit_choice())
        return page

    def _mean_page(self) -> QWidget:
        page = QWidget()
        self.mean_split = QComboBox()
        self.mean_split.addItems(["test", "train"])
        self.mean_count = QSpinBox()
        self.mean_count.setRange(1, 50000)
        self.mean_count.setValue(1000)
        self.mean_btn, self.mean_cancel = QPushButton("Compute"), QPushButton("Cancel")
        self.mean_cancel.setEnabled(False)
        self.mean_bar = QProgressBar()
        self.mean_status = QLabel(MEAN_HINT)
        self.mean_status.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Split", self.mean_split)
        form.addRow("Images", self.mean_count)
        row = QHBoxLayout()
        row.addWidget(self.mean_btn)
        row.addWidget(self.mean_cancel)
        v = QVBoxLayout(page)
        v.setContentsMargins(0, 0, 0, 0)
        v.addLayout(form)
        v.addLayout(row)
        v.addWidget(self.mean_bar)
        v.addWidget(self.mean_status)
        self.mean_btn.clicked.connect(lambda: self.meanRequested.emit(self.mean_split.currentText(),
                                                                      self.mean_count.value()))
        self.mean_cancel.clicked.connect(self.meanCancelRequested)
        return page

    def _file_page(self) -> QWidget:
        page = QWidget()
        self.file_btn = QPushButton("Open image...")
        self.file_label = QLabel("Any size or format; it is converted to 32x32 RGB (antialiased resize).")
        self.file_label.setWordWrap(True)
        v = QVBoxLayout(page)
        v.setContentsMargins(0, 0, 0, 0)
        v.addWidget(self.file_btn)
        v.addWidget(self.file_label)
        self.file_btn.clicked.connect(self.openFileRequested)
        return page

    # ---- state ---------------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        return ("dataset", "blank", "mean", "file")[self.kind_box.currentIndex()]

    def set_kind(self, kind: str) -> None:
        self.kind_box.setCurrentIndex(("dataset", "blank", "mean", "file").index(kind))

    def set_datasets(self, datasets: dict[str, Dataset], advice: str) -> None:
        """The data set loaded (or none). Without one, an input that needs it gives way to the blank tensor,
        which works without data; the data set's arrival brings the data-set image back."""
        self.datasets, self.advice, self.loading = datasets, advice, False
        have = bool(datasets)
        self.data_controls.setVisible(have)
        self.no_data.setVisible(not have)
        self.no_data_hint.setVisible(not have)
        self.download_btn.setVisible(not have)
        self.no_data.setText(advice)
        self.mean_btn.setEnabled(have and not self.mean_running)
        self._show_mean_status()
        self._filter_changed()
        if not have and self.kind in NEEDS_DATA:
            self.set_kind("blank")
            self.blank_for_no_data = True
        elif have and self.blank_for_no_data and self.kind == "blank":
            self.set_kind("dataset")

    def set_loading(self, text: str) -> None:
        """While the data set loads: say so, and offer no download."""
        self.loading = True
        self.data_controls.setVisible(False)
        self.download_btn.setVisible(False)
        self.no_data_hint.setVisible(False)
        self.no_data.setVisible(True)
        self.no_data.setText(text)
        self.mean_btn.setEnabled(False)
        self._show_mean_status()

    @property
    def wanted_kind_index(self) -> int:
        """The input kind to remember: the data-set image where the blank tensor only stands in for it."""
        return 0 if self.blank_for_no_data else self.kind_box.currentIndex()

    def set_mean_outcome(self, text: str) -> None:
        self.mean_outcome = text
        self._show_mean_status()

    def _show_mean_status(self) -> None:
        self.mean_status.setText(mean_status_text(bool(self.datasets), self.loading, self.mean_running,
                                                  self.mean_outcome, self.advice))

    def _indices(self) -> torch.Tensor:
        ds = self.datasets.get(self.split_box.currentText())
        if ds is None:
            return torch.empty(0, dtype=torch.long)
        c = self.class_box.currentIndex() - 1
        return torch.arange(len(ds)) if c < 0 else torch.nonzero(ds.labels == c).flatten()

    def _filter_changed(self, *_):
        n = len(self._indices())
        self.index_spin.blockSignals(True)
        self.index_spin.setRange(0, max(0, n - 1))
        self.index_spin.blockSignals(False)
        self.index_spin.setSuffix(index_suffix(n))
        if self.kind == "dataset":
            self.emit_choice()

    def step(self, delta: int) -> None:
        n = len(self._indices())
        if n:
            self.index_spin.setValue((self.index_spin.value() + delta) % n)

    def random(self) -> None:
        n = len(self._indices())
        if n:
            self.index_spin.setValue(int(torch.randint(0, n, (1,)).item()))

    def _kind_changed(self, i: int) -> None:
        self.blank_for_no_data = False   # a choice of the user's (set_datasets sets it again after its own)
        self.pages.setCurrentIndex(i)
        self.blank_note.setText(BLANK_KINDS[self.blank_kind()])
        if self.kind != "mean":
            self.emit_choice()

    def blank_kind(self) -> str:
        b = self.blank_group.checkedButton()
        return b.property("kind") if b else "normalized"

    def current_choice(self) -> InputChoice | None:
        kind = self.kind
        if kind == "dataset":
            idx, split, pos = self._indices(), self.split_box.currentText(), self.index_spin.value()
            if not len(idx):
                return None
            c = self.class_box.currentIndex() - 1
            label = dataset_label(split, int(idx[pos]), CLASSES[c] if c >= 0 else None, pos, len(idx))
            return InputChoice("dataset", split, int(idx[pos]), label=label)
        if kind == "blank":
            self.blank_note.setText(BLANK_KINDS[self.blank_kind()])
            return InputChoice("blank", blank=self.blank_kind())
        if kind == "file":
            return InputChoice("file", path=self.file_path) if self.file_path else None
        return None

    def emit_choice(self) -> None:
        choice = self.current_choice()
        if choice is not None:
            self.inputChosen.emit(choice)

    def show_input(self, pixels: torch.Tensor | None, caption: str) -> None:
        if pixels is None:
            self.thumb.clear()
            self.thumb.setText("no input")   # not a dark square that could pass for a black image
        else:
            self.thumb.setPixmap(pixmap_of(pixels))
        self.caption.setText(caption)

    def set_mean_running(self, running: bool) -> None:
        self.mean_running = running
        self.mean_btn.setEnabled(not running and bool(self.datasets))
        self.mean_cancel.setEnabled(running)
        self._show_mean_status()
