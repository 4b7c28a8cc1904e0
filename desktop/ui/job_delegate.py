"""How the queue paints one job: thumbnail, name, status, settings and a progress bar.

A running job's status line is the engine's `label`, the percentage and the ETA, over a bar
filled from its `fraction`. A failed job's reason and hint are wrapped in full (the row grows
to hold them) rather than cut off.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFontMetrics, QPainter, QPalette
from PySide6.QtWidgets import QApplication, QStyle, QStyledItemDelegate, QStyleOptionViewItem

from desktop.state import JobsModel, JobView

MARGIN = 6
THUMB = 64
GAP = 8
BAR = 8
ROW_HEIGHT = THUMB + 2 * MARGIN + 4
STATE_COLOURS = {"failed": "#d23c3c", "done": "#2e9d4b", "cancelled": "#888888"}
WRAP = Qt.TextFlag.TextWordWrap | Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop


def failure_text(job: JobView) -> str:
    """A failed job's reason and what to do, in full."""
    return f"Failed: {job.error}" + (f"\n{job.hint}" if job.hint else "")


class JobDelegate(QStyledItemDelegate):
    """Paints a `JobView` (the model's `JobRole`)."""

    def sizeHint(
        self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> QSize:
        job: JobView = index.data(JobsModel.JobRole)
        width = option.widget.viewport().width() if option.widget else option.rect.width()
        if job is None or job.state != "failed":
            return QSize(width, ROW_HEIGHT)
        metrics = QFontMetrics(option.font)
        text_width = max(width - THUMB - GAP - 2 * MARGIN, 40)
        wrapped = metrics.boundingRect(QRect(0, 0, text_width, 10_000), WRAP, failure_text(job))
        height = 2 * metrics.height() + wrapped.height() + 2 * MARGIN + 4
        return QSize(width, max(ROW_HEIGHT, height))

    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> None:
        job: JobView = index.data(JobsModel.JobRole)
        style = option.widget.style() if option.widget else QApplication.style()
        style.drawPrimitive(
            QStyle.PrimitiveElement.PE_PanelItemViewItem, option, painter, option.widget
        )
        rect = option.rect.adjusted(MARGIN, MARGIN, -MARGIN, -MARGIN)
        painter.save()
        # 1. thumbnail
        if job.thumbnail is not None:
            thumb = job.thumbnail
            x = rect.left() + (THUMB - thumb.width()) // 2
            y = rect.top() + (THUMB - thumb.height()) // 2
            painter.drawImage(x, y, thumb)
        # 2. name
        text = rect.adjusted(THUMB + GAP, 0, 0, 0)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        ink = option.palette.color(role)
        painter.setPen(ink)
        font = painter.font()
        font.setBold(True)
        painter.setFont(font)
        line = painter.fontMetrics().height()
        top = text.top()
        name = f"{job.name}  (run again)" if job.rerun_of else job.name
        self._line(painter, text, top, name)
        font.setBold(False)
        painter.setFont(font)
        top += line
        # 3. status (in full for a failure), then settings
        if job.state in STATE_COLOURS and not selected:
            painter.setPen(QColor(STATE_COLOURS[job.state]))
        if job.state == "failed":
            box = QRect(text.left(), top, text.width(), text.bottom() - top - line)
            used = painter.boundingRect(box, WRAP, failure_text(job))
            painter.drawText(box, WRAP, failure_text(job))
            top += used.height()
        else:
            self._line(painter, text, top, job.status_text)
            top += line
        painter.setPen(ink)
        self._line(painter, text, top, index.model().settings_text(job))
        # 4. progress
        if job.state == "running":
            bar = QRectF(text.left(), rect.bottom() - BAR + 1, text.width(), BAR)
            fill = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Highlight
            self._bar(painter, option.palette, bar, job.fraction, option.palette.color(fill))
        painter.restore()

    @staticmethod
    def _line(painter: QPainter, text: QRect, top: int, words: str) -> None:
        metrics = painter.fontMetrics()
        elided = metrics.elidedText(words, Qt.TextElideMode.ElideRight, text.width())
        painter.drawText(
            QRect(text.left(), top, text.width(), metrics.height()),
            Qt.AlignmentFlag.AlignLeft,
            elided,
        )

    @staticmethod
    def _bar(
        painter: QPainter, palette: QPalette, bar: QRectF, fraction: float, fill: QColor
    ) -> None:
        """A groove and its fill, drawn here: styles draw no fill in a bar this thin."""
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(palette.color(QPalette.ColorRole.Mid))
        painter.drawRoundedRect(bar, BAR / 2, BAR / 2)
        if fraction > 0:
            filled = QRectF(bar.left(), bar.top(), max(bar.width() * fraction, BAR), BAR)
            painter.setBrush(fill)
            painter.drawRoundedRect(filled, BAR / 2, BAR / 2)
