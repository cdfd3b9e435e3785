"""The model taken apart by its layer paths: one node per model[i] and model[i][j] (or model.block.conv)."""
from __future__ import annotations

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import QTreeWidget, QTreeWidgetItem

from padlens.core.layers import LayerInfo, path_name

PATH_ROLE = Qt.ItemDataRole.UserRole


class LayerTree(QTreeWidget):
    layerSelected = pyqtSignal(tuple)

    def __init__(self, parent=None):
        super().__init__(parent)
        # the output shape before the parameters: it is short and what a reader looks for, and the long
        # parameter text, last, is the one a narrow panel cuts (its tooltip keeps it whole)
        self.setHeaderLabels(["Layer", "Type", "Output", "Parameters"])
        self.setUniformRowHeights(True)
        self.setAlternatingRowColors(True)
        self.items: dict[tuple, QTreeWidgetItem] = {}
        self.currentItemChanged.connect(self._changed)

    def set_layers(self, infos: list[LayerInfo]) -> None:
        keep = self.selected_path()
        self.blockSignals(True)
        self.clear()
        self.items = {}
        for info in infos:
            parent = self.items.get(info.path[:-1], self.invisibleRootItem())
            item = QTreeWidgetItem(parent, [info.name, info.type, "x".join(map(str, info.output_shape)),
                                            info.params])
            item.setData(0, PATH_ROLE, info.path)
            item.setToolTip(3, info.params)
            self.items[info.path] = item
        self.expandAll()
        for col in range(4):
            self.resizeColumnToContents(col)
        self.blockSignals(False)
        self.select(keep if keep in self.items else next(iter(self.items), None))

    def selected_path(self) -> tuple | None:
        item = self.currentItem()
        return tuple(item.data(0, PATH_ROLE)) if item is not None else None

    def select(self, path) -> None:
        item = self.items.get(tuple(path)) if path is not None else None
        if item is not None:
            self.setCurrentItem(item)
            self.scrollToItem(item)

    def select_name(self, name: str) -> None:
        """Select the layer called e.g. "model[2][3]", if this model has it."""
        self.select(next((p for p in self.items if path_name(p) == name), None))

    def _changed(self, current, _previous) -> None:
        if current is not None:
            self.layerSelected.emit(tuple(current.data(0, PATH_ROLE)))
