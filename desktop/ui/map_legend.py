"""A small key for the degradation heatmap: a swatch per colour, or a gradient bar."""

from __future__ import annotations

from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtGui import QColor, QLinearGradient, QPainter, QPaintEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from desktop.ui.degradation_overlay import VIRIDIS, Legend

SWATCH = 12
GAP = 6


class MapLegend(QWidget):
    """Shows a `Legend`; empty (and hidden by its owner) when there is no map."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._legend: Legend | None = None
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)

    def set_legend(self, legend: Legend | None) -> None:
        self._legend = legend
        self.updateGeometry()
        self.update()

    def legend(self) -> Legend | None:
        return self._legend

    def text(self) -> str:
        """Everything the legend says, for screen readers and tests."""
        if self._legend is None:
            return ""
        return "\n".join([self._legend.title, *(meaning for _, meaning in self._legend.entries)])

    def sizeHint(self) -> QSize:
        line = self.fontMetrics().height()
        if self._legend is None:
            return QSize(0, 0)
        rows = 2 if self._legend.colormap else 1 + len(self._legend.entries)
        return QSize(260, rows * (line + 2) + 4)

    def paintEvent(self, event: QPaintEvent) -> None:
        if self._legend is None:
            return
        painter = QPainter(self)
        metrics = self.fontMetrics()
        line = metrics.height() + 2
        width = self.width()
        painter.setPen(self.palette().windowText().color())
        painter.drawText(QRect(0, 0, width, line), Qt.AlignmentFlag.AlignLeft, self._legend.title)
        if self._legend.colormap:
            # low label | gradient | high label on one row
            low, high = self._legend.entries[0][1], self._legend.entries[-1][1]
            low_w, high_w = metrics.horizontalAdvance(low), metrics.horizontalAdvance(high)
            bar = QRect(low_w + GAP, line + (line - SWATCH) // 2, 0, SWATCH)
            bar.setRight(width - high_w - GAP - 1)
            gradient = QLinearGradient(bar.left(), 0, bar.right(), 0)
            for i in range(0, 256, 32):
                gradient.setColorAt(i / 255, QColor(*(int(c) for c in VIRIDIS[i])))
            gradient.setColorAt(1.0, QColor(*(int(c) for c in VIRIDIS[255])))
            painter.fillRect(bar, gradient)
            painter.drawText(QRect(0, line, low_w, line), Qt.AlignmentFlag.AlignLeft, low)
            painter.drawText(
                QRect(width - high_w, line, high_w, line), Qt.AlignmentFlag.AlignLeft, high
            )
            return
        for row, (colour, meaning) in enumerate(self._legend.entries, start=1):
            top = row * line
            painter.fillRect(QRect(0, top + (line - SWATCH) // 2, SWATCH, SWATCH), colour)
            painter.drawText(
                QRect(SWATCH + GAP, top, width - SWATCH - GAP, line),
                Qt.AlignmentFlag.AlignLeft,
                meaning,
            )
