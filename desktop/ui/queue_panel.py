"""The queue: a drop zone and one row per job (thumbnail, name, settings, state, progress)."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QSize, Qt, Signal
from PySide6.QtGui import QPainter, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QLabel,
    QListView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionProgressBar,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from desktop.state import JobsModel, JobView

ROW_HEIGHT = 76
THUMB = 64
STATE_COLOURS = {"failed": "#d23c3c", "done": "#2e9d4b", "cancelled": "#888888"}


class JobDelegate(QStyledItemDelegate):
    """Paints a `JobView`: thumbnail, name, settings, status line and progress bar."""

    def sizeHint(
        self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> QSize:
        return QSize(option.rect.width(), ROW_HEIGHT)

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
        rect = option.rect.adjusted(6, 6, -6, -6)
        painter.save()
        if job.thumbnail is not None:
            thumb = job.thumbnail
            x = rect.left() + (THUMB - thumb.width()) // 2
            y = rect.top() + (THUMB - thumb.height()) // 2
            painter.drawImage(x, y, thumb)
        text = rect.adjusted(THUMB + 8, 0, 0, 0)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        painter.setPen(option.palette.color(role))
        font = painter.font()
        font.setBold(True)
        painter.setFont(font)
        line = painter.fontMetrics().height()
        painter.drawText(
            QRect(text.left(), text.top(), text.width(), line), Qt.AlignmentFlag.AlignLeft, job.name
        )
        font.setBold(False)
        painter.setFont(font)
        if job.state in STATE_COLOURS and not selected:
            painter.setPen(STATE_COLOURS[job.state])
        status = painter.fontMetrics().elidedText(
            job.status_text, Qt.TextElideMode.ElideRight, text.width()
        )
        painter.drawText(
            QRect(text.left(), text.top() + line, text.width(), line),
            Qt.AlignmentFlag.AlignLeft,
            status,
        )
        painter.setPen(option.palette.color(role))
        settings = painter.fontMetrics().elidedText(
            index.model().settings_text(job), Qt.TextElideMode.ElideRight, text.width()
        )
        painter.drawText(
            QRect(text.left(), text.top() + 2 * line, text.width(), line),
            Qt.AlignmentFlag.AlignLeft,
            settings,
        )
        painter.restore()
        if job.state == "running":
            bar = QStyleOptionProgressBar()
            bar.rect = QRect(text.left(), rect.bottom() - 6, text.width(), 6)
            bar.minimum, bar.maximum = 0, 1000
            bar.progress = int(job.fraction * 1000)
            bar.state = QStyle.StateFlag.State_Enabled
            style.drawControl(QStyle.ControlElement.CE_ProgressBar, bar, painter)


class QueuePanel(QWidget):
    """The drop zone over the job list; `selectedJob(id)` when a row is chosen ("" for none)."""

    selectedJob = Signal(str)

    def __init__(self, model: JobsModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.drop_hint = QLabel(
            "Drop photos or folders here\nor use File › Open (Ctrl+O), paste (Ctrl+V)"
        )
        self.drop_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.drop_hint.setObjectName("dropZone")
        self.drop_hint.setStyleSheet(
            "#dropZone { border: 2px dashed palette(mid); border-radius: 8px; padding: 16px; }"
        )
        self.list = QListView()
        self.list.setModel(model)
        self.list.setItemDelegate(JobDelegate(self.list))
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.list.setUniformItemSizes(True)
        self.list.selectionModel().currentChanged.connect(self._current_changed)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.drop_hint)
        layout.addWidget(self.list, 1)
        model.rowsInserted.connect(self._update_hint)
        model.rowsRemoved.connect(self._update_hint)

    def _update_hint(self, *_: object) -> None:
        self.drop_hint.setVisible(self.model.rowCount() == 0)
        self.list.setVisible(self.model.rowCount() > 0)

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        job = current.data(JobsModel.JobRole) if current.isValid() else None
        self.selectedJob.emit(job.id if job else "")

    def selected_ids(self) -> list[str]:
        rows = sorted(index.row() for index in self.list.selectionModel().selectedRows())
        return [self.model.jobs[row].id for row in rows]

    def current_id(self) -> str:
        index = self.list.currentIndex()
        return index.data(JobsModel.JobRole).id if index.isValid() else ""

    def select(self, job_id: str) -> None:
        row = self.model.row_of(job_id)
        if row >= 0:
            self.list.setCurrentIndex(self.model.index(row))

    def clear_selection(self) -> None:
        """No row selected or current (`selectedJob("")`)."""
        self.list.selectionModel().clear()

    def showEvent(self, event) -> None:
        self._update_hint()
        super().showEvent(event)
