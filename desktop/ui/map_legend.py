"""A small key for the degradation heatmap: a gradient bar with values marked along it, or a
row per colour (a plain swatch, or a ramp from value 0 to 1 when the colour fades in)."""

from __future__ import annotations

from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtGui import QColor, QLinearGradient, QPainter, QPaintEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from desktop.ui.degradation_overlay import Legend
from desktop.ui.map_colours import VIRIDIS

SWATCH = 12
RAMP = 56
"""Width of a colour's ramp (value 0 to 1)."""
GAP = 6
MAX_BAR = 420
"""Widest the gradient is drawn (pixels)."""


class MapLegend(QWidget):
    """Shows a `Legend`; empty (and hidden by its owner) when there is no map."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._legend: Legend | None = None
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)

    def set_legend(self, legend: Legend | None) -> None:
        self._legend = legend
        self.setToolTip(legend.note if legend is not None else "")
        self.updateGeometry()
        self.update()

    def legend(self) -> Legend | None:
        return self._legend

    def text(self) -> str:
        """Everything the legend says, for screen readers and tests."""
        if self._legend is None:
            return ""
        lines = [self._legend.title, *(meaning for _, meaning in self._legend.entries)]
        if self._legend.ticks:
            lines.append("scale: " + ", ".join(label for _, label in self._legend.ticks))
        if self._legend.note:
            lines.append(self._legend.note)
        return "\n".join(lines)

    def sizeHint(self) -> QSize:
        line = self.fontMetrics().height()
        if self._legend is None:
            return QSize(0, 0)
        rows = 4 if self._legend.colormap else 1 + len(self._legend.entries)
        return QSize(300, rows * (line + 2) + 4)

    def paintEvent(self, event: QPaintEvent) -> None:
        if self._legend is None:
            return
        painter = QPainter(self)
        line = self.fontMetrics().height() + 2
        painter.setPen(self.palette().windowText().color())
        painter.drawText(
            QRect(0, 0, self.width(), line), Qt.AlignmentFlag.AlignLeft, self._legend.title
        )
        if self._legend.colormap:
            self._paint_scale(painter, line)
        else:
            self._paint_entries(painter, line)

    def _paint_scale(self, painter: QPainter, line: int) -> None:
        """The gradient, the values marked under it, and what its two ends mean."""
        assert self._legend is not None
        metrics = self.fontMetrics()
        bar = QRect(0, line + (line - SWATCH) // 2, min(self.width(), MAX_BAR) - 1, SWATCH)
        gradient = QLinearGradient(bar.left(), 0, bar.right(), 0)
        for i in range(0, 256, 32):
            gradient.setColorAt(i / 255, QColor(*(int(c) for c in VIRIDIS[i])))
        gradient.setColorAt(1.0, QColor(*(int(c) for c in VIRIDIS[255])))
        painter.fillRect(bar, gradient)
        for fraction, label in self._legend.ticks:
            x = bar.left() + round(fraction * bar.width())
            painter.drawLine(x, bar.bottom() + 1, x, bar.bottom() + 3)
            label_w = metrics.horizontalAdvance(label)
            left = min(max(x - label_w // 2, bar.left()), bar.right() - label_w)
            painter.drawText(
                QRect(left, 2 * line, label_w, line), Qt.AlignmentFlag.AlignLeft, label
            )
        low, high = self._legend.entries[0][1], self._legend.entries[-1][1]
        ends = QRect(bar.left(), 3 * line, bar.width(), line)
        painter.drawText(ends, Qt.AlignmentFlag.AlignLeft, low)
        painter.drawText(ends, Qt.AlignmentFlag.AlignRight, high)

    def _paint_entries(self, painter: QPainter, line: int) -> None:
        assert self._legend is not None
        ramp_from = self._legend.ramp_from
        key_w = SWATCH if ramp_from is None else RAMP
        for row, (colour, meaning) in enumerate(self._legend.entries, start=1):
            top = row * line
            key = QRect(0, top + (line - SWATCH) // 2, key_w, SWATCH)
            if ramp_from is None:
                painter.fillRect(key, colour)
            else:
                gradient = QLinearGradient(key.left(), 0, key.right(), 0)
                gradient.setColorAt(0.0, ramp_from)
                gradient.setColorAt(1.0, colour)
                painter.fillRect(key, gradient)
                painter.drawRect(key.adjusted(0, 0, -1, -1))  # a clear start still has an edge
            painter.drawText(
                QRect(key_w + GAP, top, self.width() - key_w - GAP, line),
                Qt.AlignmentFlag.AlignLeft,
                meaning,
            )
