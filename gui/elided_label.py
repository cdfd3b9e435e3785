"""A one-line label that shortens its text with an ellipsis in the middle when it has less room than the
text needs: at 1280 wide the status bar's model and data labels cut each other off mid-word. text() stays
the whole text; the tooltip says it in full."""
from PyQt6.QtCore import QSize, Qt
from PyQt6.QtGui import QPainter
from PyQt6.QtWidgets import QLabel


class ElidedLabel(QLabel):
    def setText(self, text: str) -> None:
        super().setText(text)
        self.setToolTip(text)

    def minimumSizeHint(self) -> QSize:   # may shrink to a few letters; the status bar shares out the rest
        hint = super().minimumSizeHint()
        return QSize(min(hint.width(), self.fontMetrics().horizontalAdvance("x" * 12)), hint.height())

    def shown_text(self) -> str:
        """What is drawn: the text, or its two ends around an ellipsis where it does not fit."""
        room = self.contentsRect().width()
        return self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideMiddle, room)

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.drawText(self.contentsRect(), int(self.alignment() | Qt.AlignmentFlag.AlignVCenter),
                         self.shown_text())
