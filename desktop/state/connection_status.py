"""`ConnectionStatus`: the engine connection as the status indicator shows it."""

from __future__ import annotations

from PySide6.QtCore import Property, QObject, Signal

from desktop.client import ConnectionState

LABELS = {
    ConnectionState.STOPPED: "Engine stopped",
    ConnectionState.STARTING: "Engine starting…",
    ConnectionState.READY: "Engine ready",
    ConnectionState.BUSY: "Engine busy",
    ConnectionState.LOST: "Engine lost",
    ConnectionState.RESTARTING: "Engine restarting…",
}


class ConnectionStatus(QObject):
    """`state` is a `ConnectionState` value ("starting", "ready", "busy", "lost", ...);
    `detail` says more (the device, or why the engine was lost)."""

    stateChanged = Signal(str)
    detailChanged = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._state = ConnectionState.STOPPED.value
        self._detail = ""

    def _get_state(self) -> str:
        return self._state

    def _get_detail(self) -> str:
        return self._detail

    state = Property(str, _get_state, notify=stateChanged)
    detail = Property(str, _get_detail, notify=detailChanged)

    @property
    def label(self) -> str:
        return LABELS[ConnectionState(self._state)]

    def set_state(self, state: ConnectionState) -> None:
        if state.value != self._state:
            self._state = state.value
            self.stateChanged.emit(self._state)

    def set_detail(self, detail: str) -> None:
        if detail != self._detail:
            self._detail = detail
            self.detailChanged.emit(detail)
