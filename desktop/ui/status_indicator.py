"""The engine status in the status bar: a coloured dot and a word, bound to ConnectionStatus."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QWidget

from desktop.state import ConnectionStatus

COLOURS = {
    "stopped": "#888888",
    "starting": "#d9a400",
    "ready": "#2e9d4b",
    "busy": "#2f7fd8",
    "lost": "#d23c3c",
    "restarting": "#d9a400",
}


class StatusIndicator(QWidget):
    def __init__(self, status: ConnectionStatus, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._status = status
        self.dot = QLabel("●")
        self.label = QLabel()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 0)
        layout.addWidget(self.dot)
        layout.addWidget(self.label)
        status.stateChanged.connect(self._update)
        status.detailChanged.connect(self._update)
        self._update()

    def _update(self, *_: object) -> None:
        self.label.setText(self._status.label)
        self.dot.setStyleSheet(f"color: {COLOURS[self._status.state]};")
        self.setToolTip(self._status.detail)
