"""`ModelManagerDialog`: the engine's models, and import, download, verify and remove.

Everything goes through the EngineClient's `model_action` request (docs/protocol.md,
"Models"): the engine owns the store, which may be on another machine. The store folder is
shown; changing it means restarting the engine with `--store`, so the dialog only emits
`store_changed(path)` and leaves that to the controller.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Protocol

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop.client.connection_state import EngineClientError
from desktop.ui.ask import ask
from engine.protocol import ModelActionKind, ModelDone, ModelProgress, ModelsReply

log = logging.getLogger(__name__)

COLUMNS = ("Name", "Title", "Status", "Size", "Licence", "Device fit", "Location")
COMFORT = 0.8
"""A model whose weights take at most this share of a device's memory fits with room to work."""
WEIGHT_FILTER = "Weights (*.safetensors *.pth *.ckpt *.pt *.bin);;All files (*)"


class ModelClient(Protocol):
    async def model_action(
        self,
        action: ModelActionKind,
        name: str | None = None,
        *,
        path: str | Path | None = None,
        link: bool = False,
        on_progress: Callable[[ModelProgress], None] | None = None,
    ) -> ModelsReply | ModelDone: ...


class ModelController(Protocol):
    """What the dialog needs of the AppController: its EngineClient. A `store_location`
    attribute (the `--store` the engine was started with), when present, is shown as is."""

    client: Any


def human_size(size: int | None) -> str:
    if not size:
        return "—"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def device_fit(size_bytes: int, devices: list[dict[str, Any]]) -> str:
    """How the weights compare with the memory of the best device: "fits", "tight" or "too
    large", naming the device; "" when the size is unknown (a model not on disk)."""
    if not size_bytes or not devices:
        return ""
    gpus = [d for d in devices if d.get("kind") == "cuda"]
    best = max(gpus or devices, key=lambda d: int(d.get("total_memory_bytes") or 0))
    total = int(best.get("total_memory_bytes") or 0)
    where = f"{best.get('name', '?')} ({human_size(total)})"
    if size_bytes <= COMFORT * total:
        return f"fits {where}"
    if size_bytes <= total:
        return f"tight on {where}"
    return f"too large for {where}"


def store_root_from(models: list[dict[str, Any]]) -> str:
    """The store folder read from the models' paths (`<store>/<name>/...`), by majority:
    the bundled starter model lives elsewhere. "" when no path shows it."""
    roots: Counter[str] = Counter()
    for model in models:
        path = Path(str(model.get("path", "")))
        for parent in path.parents:
            if parent.name == model.get("name"):
                root = parent.parent
                roots[str(root.parent if root.name == "local" else root)] += 1
                break
    return roots.most_common(1)[0][0] if roots else ""


class ModelManagerDialog(QDialog):
    store_changed = Signal(str)
    """The user chose another store folder: restart the engine with `--store PATH`."""
    models_changed = Signal()
    """A model was imported, downloaded or removed: model choices may need refreshing."""

    def __init__(self, controller: ModelController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Models")
        self.resize(900, 420)
        self.client: ModelClient = controller.client
        self._store_location: str | None = getattr(controller, "store_location", None)
        self.models: list[dict[str, Any]] = []
        self.devices: list[dict[str, Any]] = []
        self.downloading: str | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

        # 1. the table
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.itemSelectionChanged.connect(self._update_buttons)

        # 2. actions
        self.refresh_button = QPushButton("Refresh")
        self.import_file_button = QPushButton("Import file…")
        self.import_folder_button = QPushButton("Import folder…")
        self.download_button = QPushButton("Download")
        self.cancel_button = QPushButton("Cancel download")
        self.verify_button = QPushButton("Verify")
        self.remove_button = QPushButton("Remove…")
        self.refresh_button.clicked.connect(self.refresh)
        self.import_file_button.clicked.connect(self._choose_file)
        self.import_folder_button.clicked.connect(self._choose_folder)
        self.download_button.clicked.connect(lambda: self.download(self.selected_name() or ""))
        self.cancel_button.clicked.connect(self.cancel_download)
        self.verify_button.clicked.connect(lambda: self.verify(self.selected_name() or ""))
        self.remove_button.clicked.connect(lambda: self.remove(self.selected_name() or ""))
        actions = QHBoxLayout()
        for button in (
            self.refresh_button,
            self.import_file_button,
            self.import_folder_button,
            self.download_button,
            self.cancel_button,
            self.verify_button,
            self.remove_button,
        ):
            actions.addWidget(button)
        actions.addStretch(1)

        # 3. download progress, messages, store location
        self.progress = QProgressBar(self)
        self.progress.setVisible(False)
        self.message = QLabel(self)
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.store_label = QLabel(self)
        self.store_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        change_store = QPushButton("Change…")
        change_store.clicked.connect(self._choose_store)
        close = QPushButton("Close")
        close.clicked.connect(self.accept)
        bottom = QHBoxLayout()
        bottom.addWidget(QLabel("Store:"))
        bottom.addWidget(self.store_label, 1)
        bottom.addWidget(change_store)
        bottom.addWidget(close)

        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        layout.addLayout(actions)
        layout.addWidget(self.progress)
        layout.addWidget(self.message)
        layout.addLayout(bottom)
        self._update_buttons()
        self.refresh()

    # --- what the buttons do (each returns its task, for the caller to await if it wants) ---

    def refresh(self) -> asyncio.Task[Any]:
        return self._run(self._refresh())

    def import_path(self, path: str, name: str | None = None) -> asyncio.Task[Any]:
        async def work() -> None:
            self._say(f"Importing {path}…")
            done = await self._action("import", name, path=path)
            if done is not None:
                self._say(f"Imported {done.name}.")
                await self._changed()

        return self._run(work())

    def download(self, name: str) -> asyncio.Task[Any]:
        async def work() -> None:
            self.downloading = name
            self.progress.setRange(0, 0)  # busy until the first progress event
            self.progress.setVisible(True)
            self._update_buttons()
            self._say(f"Downloading {name}…")
            try:
                done = await self._action("download", name, on_progress=self._on_progress)
            finally:
                self.downloading = None
                self.progress.setVisible(False)
                self._update_buttons()
            if done is None:
                return
            self._say(
                f"Download of {name} cancelled; downloading again resumes it."
                if done.cancelled
                else f"Downloaded {name}."
            )
            await self._changed()

        return self._run(work())

    def cancel_download(self) -> asyncio.Task[Any] | None:
        if self.downloading is None:
            return None
        return self._run(self._action("cancel", self.downloading))

    def verify(self, name: str) -> asyncio.Task[Any]:
        async def work() -> None:
            self._say(f"Verifying {name}…")
            done = await self._action("verify", name)
            if done is None:
                return
            if done.problems:
                self._say(f"{name} has problems:\n" + "\n".join(done.problems), error=True)
            else:
                self._say(f"{name} is sound ({len(done.checked)} files checked).")

        return self._run(work())

    def remove(self, name: str) -> asyncio.Task[Any]:
        async def work() -> None:
            if not await self.confirm_remove(name):
                return
            done = await self._action("remove", name)
            if done is not None:
                self._say(f"Removed {name}; {human_size(done.freed_bytes)} freed.")
                await self._changed()

        return self._run(work())

    async def confirm_remove(self, name: str) -> bool:
        """Ask before deleting; a window-modal box that does not block the event loop."""
        box = QMessageBox(
            QMessageBox.Icon.Warning,
            "Remove model",
            f"Delete {name} from the model store? It has to be downloaded or imported again "
            "to be used.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            self,
        )
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        yes = box.button(QMessageBox.StandardButton.Yes)
        return await ask(box) is yes

    # --- view -------------------------------------------------------------------------------

    def selected_name(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        return self.models[rows[0].row()]["name"] if rows else None

    def select(self, name: str) -> None:
        for row, model in enumerate(self.models):
            if model["name"] == name:
                self.table.selectRow(row)

    def show_models(self, reply: ModelsReply) -> None:
        selected = self.selected_name()
        self.models, self.devices = list(reply.models), list(reply.devices)
        self.table.setRowCount(len(self.models))
        for row, model in enumerate(self.models):
            size = int(model.get("size_bytes") or 0)
            cells = (
                model.get("name", ""),
                model.get("title", ""),
                model.get("status", ""),
                human_size(size),
                model.get("licence", ""),
                device_fit(size, self.devices),
                model.get("path", ""),
            )
            for column, text in enumerate(cells):
                item = QTableWidgetItem(str(text))
                item.setToolTip(str(text))
                self.table.setItem(row, column, item)
        self.store_label.setText(self._store_location or store_root_from(self.models))
        if selected:
            self.select(selected)
        self._update_buttons()

    def _update_buttons(self) -> None:
        name = self.selected_name()
        model = next((m for m in self.models if m["name"] == name), None)
        status = model.get("status") if model else None
        idle = self.downloading is None
        self.download_button.setEnabled(idle and status in ("missing", "partial"))
        self.cancel_button.setEnabled(not idle)
        self.verify_button.setEnabled(status in ("installed", "partial"))
        self.remove_button.setEnabled(
            status in ("installed", "partial") and name != self.downloading
        )

    def _on_progress(self, event: ModelProgress) -> None:
        if event.total_bytes:
            self.progress.setRange(0, 1000)
            self.progress.setValue(round(1000 * event.done_bytes / event.total_bytes))
            self.progress.setFormat(
                f"{event.file}: {human_size(event.done_bytes)} of {human_size(event.total_bytes)}"
            )
        else:
            self.progress.setRange(0, 0)

    def _say(self, text: str, *, error: bool = False) -> None:
        self.message.setText(text)
        self.message.setStyleSheet("color: #c0392b;" if error else "")

    # --- helpers ----------------------------------------------------------------------------

    async def _refresh(self) -> None:
        try:
            reply = await self.client.model_action("list")
        except EngineClientError as error:
            self._fail(error)
            return
        assert isinstance(reply, ModelsReply)
        self.show_models(reply)

    async def _action(
        self, action: ModelActionKind, name: str | None, **fields: Any
    ) -> ModelDone | None:
        """The engine's answer, or None when it refused (the message says why)."""
        try:
            reply = await self.client.model_action(action, name, **fields)
        except EngineClientError as error:
            self._fail(error)
            return None
        except Exception as error:  # a bug on our side: said here, not only in the log
            log.exception("model action %s %s failed", action, name)
            self._say(
                f"The {action} of {name or 'the model'} failed: {error}\n"
                "Please report this (Help > Copy diagnostic report).",
                error=True,
            )
            return None
        assert isinstance(reply, ModelDone)
        return reply

    async def _changed(self) -> None:
        self.models_changed.emit()
        await self._refresh()

    def _fail(self, error: EngineClientError) -> None:
        log.warning("model action failed: %s", error)
        self._say(f"{error.message}\n{error.hint}" if error.hint else error.message, error=True)

    def _run(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import a model file", "", WEIGHT_FILTER)
        if path:
            self.import_path(path)

    def _choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Import a model folder")
        if path:
            self.import_path(path)

    def _choose_store(self) -> None:
        path = QFileDialog.getExistingDirectory(
            self, "Choose the model store folder", self.store_label.text()
        )
        if path and path != self.store_label.text():
            self._store_location = path
            self.store_label.setText(path)
            self._say("The engine restarts with the new store; models there are listed then.")
            self.store_changed.emit(path)
