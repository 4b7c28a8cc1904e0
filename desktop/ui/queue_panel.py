"""The queue: a drop zone and one row per job (painted by `JobDelegate`), over a footer (the
window's start bar)."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, Qt, Signal
from PySide6.QtWidgets import QAbstractItemView, QLabel, QListView, QVBoxLayout, QWidget

from desktop.state import JobsModel
from desktop.ui.job_delegate import JobDelegate


class QueuePanel(QWidget):
    """The drop zone over the job list; `selectedJob(id)` when a row is chosen ("" for none)."""

    selectedJob = Signal(str)

    def __init__(
        self, model: JobsModel, footer: QWidget | None = None, parent: QWidget | None = None
    ) -> None:
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
        self.delegate = JobDelegate(self.list)
        self.list.setItemDelegate(self.delegate)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.list.setResizeMode(QListView.ResizeMode.Adjust)  # failures re-wrap
        self.list.setWordWrap(True)
        self.list.selectionModel().currentChanged.connect(self._current_changed)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.drop_hint)
        layout.addWidget(self.list, 1)
        if footer is not None:
            layout.addWidget(footer)
        model.rowsInserted.connect(self._update_hint)
        model.rowsRemoved.connect(self._update_hint)
        model.dataChanged.connect(self._rows_changed)

    def _rows_changed(self, top: QModelIndex, bottom: QModelIndex, *_: object) -> None:
        """A row may change height (a failure's reason wraps)."""
        for row in range(top.row(), bottom.row() + 1):
            self.delegate.sizeHintChanged.emit(self.model.index(row))

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
