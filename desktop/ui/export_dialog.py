"""`ExportDialog`: save restored photos again in another format, name or folder.

The engine does the writing (`export` request, docs/protocol.md "Export"), so the EXIF, ICC
profile and XMP it wrote are kept, files appear whole or not at all, and a result is never
written onto. Nothing is overwritten without asking: each export is first a dry run, and a
name that is taken asks the user to overwrite, keep both or skip.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

from PySide6.QtCore import QSettings, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from desktop.client.connection_state import EngineClientError
from desktop.ui.ask import ask
from engine.protocol import Exported, ExportFormat, RestoreOptionsMessage

log = logging.getLogger(__name__)

FORMATS: tuple[ExportFormat, ...] = ("png", "jpg", "tiff", "webp")
LOSSY: frozenset[str] = frozenset({"jpg", "webp"})
SIXTEEN_BIT: frozenset[str] = frozenset({"png", "tiff"})
DEFAULT_PATTERN = "{stem}_x{scale}"
EXPORT_FOLDER = "exported"
"""The default destination: this folder beside the results (the results' own folder would
name each PNG export after its result, and a result is never written onto)."""
Conflict = Literal["overwrite", "keep_both", "skip", "stop"]


class ExportClient(Protocol):
    async def export(
        self,
        source: str | Path,
        destination: str | Path,
        *,
        format: ExportFormat = "png",
        quality: int = 95,
        bit_depth: int = 8,
        name_pattern: str = "{stem}",
        stem: str | None = None,
        scale: int | None = None,
        overwrite: bool = False,
        keep_both: bool = False,
        dry_run: bool = False,
    ) -> Exported: ...


class ResultRow(Protocol):
    """The part of a `JobView` an export needs."""

    id: str
    input: str
    output: str | None
    options: RestoreOptionsMessage


class ExportDialog(QDialog):
    exported = Signal(str)
    """A file was written (its path)."""
    finished_exporting = Signal(int, int)
    """A save ended: files written, results not written (skipped, stopped or failed)."""

    def __init__(
        self,
        results: Sequence[ResultRow],
        settings: QSettings | None = None,
        parent: QWidget | None = None,
        *,
        client: ExportClient,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export")
        self.client = client
        self.settings = settings
        self.results = [job for job in results if job.output]
        self.written: list[str] = []
        self._busy = False
        self._tasks: set[asyncio.Task[Any]] = set()

        # 1. which results
        self.list = QListWidget(self)
        self.list.setSelectionMode(QListWidget.SelectionMode.ExtendedSelection)
        for job in self.results:
            item = QListWidgetItem(Path(job.output or "").name)
            item.setToolTip(job.output or "")
            self.list.addItem(item)
        if self.results:
            self.list.setCurrentRow(0)

        # 2. how
        self.format = QComboBox(self)
        self.format.addItems([name.upper() for name in FORMATS])
        self.quality = QSpinBox(self)
        self.quality.setRange(1, 100)
        self.sixteen_bit = QCheckBox("16 bits per channel", self)
        self.pattern = QLineEdit(self)
        self.pattern.setToolTip("Fields: {stem} (the photo's name), {scale}, {width}, {height}")
        self.destination = QLineEdit(self)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._choose_destination)
        where = QHBoxLayout()
        where.addWidget(self.destination, 1)
        where.addWidget(browse)
        form = QFormLayout()
        form.addRow("Format", self.format)
        form.addRow("Quality", self.quality)
        form.addRow("", self.sixteen_bit)
        form.addRow("File name", self.pattern)
        form.addRow("Folder", where)
        self._load_choices()
        self.format.currentIndexChanged.connect(self._update_controls)

        # 3. go
        self.save_button = QPushButton("Save")
        self.save_all_button = QPushButton("Save all")
        self.open_folder_button = QPushButton("Open output folder")
        close = QPushButton("Close")
        self.save_button.clicked.connect(lambda: self.save(self.selected()))
        self.save_all_button.clicked.connect(lambda: self.save(self.results))
        self.open_folder_button.clicked.connect(self.open_folder)
        close.clicked.connect(self.accept)
        buttons = QHBoxLayout()
        for button in (self.save_button, self.save_all_button, self.open_folder_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(close)
        self.message = QLabel(self)
        self.message.setWordWrap(True)

        layout = QVBoxLayout(self)
        layout.addWidget(self.list, 1)
        layout.addLayout(form)
        layout.addWidget(self.message)
        layout.addLayout(buttons)
        self._update_controls()

    # --- choices ----------------------------------------------------------------------------

    def chosen_format(self) -> ExportFormat:
        return FORMATS[self.format.currentIndex()]

    def bit_depth(self) -> int:
        return 16 if self.sixteen_bit.isChecked() and self.chosen_format() in SIXTEEN_BIT else 8

    def selected(self) -> list[ResultRow]:
        return [self.results[index.row()] for index in self.list.selectedIndexes()]

    def _load_choices(self) -> None:
        def value(key: str, default: Any) -> Any:
            return self.settings.value(f"export/{key}", default) if self.settings else default

        fmt = str(value("format", "png"))
        self.format.setCurrentIndex(FORMATS.index(fmt) if fmt in FORMATS else 0)
        self.quality.setValue(int(value("quality", 95)))
        self.sixteen_bit.setChecked(str(value("sixteen_bit", "false")).lower() == "true")
        self.pattern.setText(str(value("pattern", DEFAULT_PATTERN)))
        first = Path(self.results[0].output or "").parent if self.results else Path.home()
        self.destination.setText(str(value("destination", str(first / EXPORT_FOLDER))))

    def _save_choices(self) -> None:
        if self.settings is None:
            return
        self.settings.setValue("export/format", self.chosen_format())
        self.settings.setValue("export/quality", self.quality.value())
        self.settings.setValue("export/sixteen_bit", self.sixteen_bit.isChecked())
        self.settings.setValue("export/pattern", self.pattern.text())
        self.settings.setValue("export/destination", self.destination.text())

    def _update_controls(self) -> None:
        fmt = self.chosen_format()
        self.quality.setEnabled(fmt in LOSSY)
        self.sixteen_bit.setEnabled(fmt in SIXTEEN_BIT)
        idle = not self._busy and bool(self.results)
        self.save_button.setEnabled(idle)
        self.save_all_button.setEnabled(idle)
        self.open_folder_button.setEnabled(bool(self.destination.text()))

    # --- saving -----------------------------------------------------------------------------

    def save(self, results: Sequence[ResultRow]) -> asyncio.Task[Any]:
        """Export `results` with the current choices; the task ends when all are done."""
        task = asyncio.ensure_future(self._save(list(results)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _save(self, results: list[ResultRow]) -> None:
        if not results:
            self._say("Choose the photos to save first.")
            return
        if not self._make_default_folder():
            return
        self._busy = True
        self._update_controls()
        self._save_choices()
        written, failures = 0, []
        try:
            for number, job in enumerate(results, 1):
                self._say(f"Saving {number} of {len(results)}: {Path(job.input).name}…")
                try:
                    outcome = await self._export_one(job)
                except EngineClientError as error:
                    log.warning("export of %s failed: %s", job.output, error)
                    failure = f"{Path(job.input).name}: {error.message}"
                    failures.append(f"{failure} ({error.hint})" if error.hint else failure)
                    continue
                if outcome == "stop":
                    break
                if outcome != "skip":
                    written += 1
                    self.written.append(outcome)
                    self.exported.emit(outcome)
        finally:
            self._busy = False
            self._update_controls()
        summary = f"Saved {written} of {len(results)} file{'s' if len(results) != 1 else ''}."
        self._say("\n".join([summary, *failures]), error=bool(failures))
        self.finished_exporting.emit(written, len(results) - written)

    def _make_default_folder(self) -> bool:
        """Create the "exported" folder when it is the destination; False (and said) if that fails."""
        folder = Path(self.destination.text())
        if folder.name != EXPORT_FOLDER or folder.exists() or not folder.parent.is_dir():
            return True  # another folder must exist already: the engine says so if it does not
        try:
            folder.mkdir()
        except OSError as error:
            self._say(
                f"Cannot create {folder}: {error.strerror}. Choose another folder.", error=True
            )
            return False
        return True

    async def _export_one(self, job: ResultRow) -> str:
        """The path written, or "skip" / "stop" as the user chose about a taken name."""
        request: dict[str, Any] = {
            "format": self.chosen_format(),
            "quality": self.quality.value(),
            "bit_depth": self.bit_depth(),
            "name_pattern": self.pattern.text(),
            "stem": Path(job.input).stem,
            "scale": job.options.upscale,
        }
        source, folder = job.output or "", self.destination.text()
        plan = await self.client.export(source, folder, dry_run=True, **request)
        choice: Conflict | None = None
        if plan.exists:
            choice = await self.ask_conflict(plan.path)
            if choice in ("skip", "stop"):
                return choice
        reply = await self.client.export(
            source,
            folder,
            overwrite=choice == "overwrite",
            keep_both=choice == "keep_both",
            **request,
        )
        return reply.path

    async def ask_conflict(self, path: str) -> Conflict:
        """Ask what to do about a file of that name; window-modal, the loop keeps running."""
        box = QMessageBox(QMessageBox.Icon.Question, "File exists", "", parent=self)
        box.setText(f"{Path(path).name} already exists in {Path(path).parent}.")
        box.setInformativeText("Replace it, keep both (the new one gets a number), or skip it?")
        choices = {
            box.addButton("Overwrite", QMessageBox.ButtonRole.DestructiveRole): "overwrite",
            box.addButton("Keep both", QMessageBox.ButtonRole.AcceptRole): "keep_both",
            box.addButton("Skip", QMessageBox.ButtonRole.RejectRole): "skip",
            box.addButton("Stop", QMessageBox.ButtonRole.RejectRole): "stop",
        }
        box.setDefaultButton(next(b for b, c in choices.items() if c == "keep_both"))
        clicked = await ask(box)
        return next((choice for button, choice in choices.items() if button is clicked), "stop")

    # --- elsewhere --------------------------------------------------------------------------

    def open_folder(self) -> bool:
        folder = self.destination.text()
        return bool(folder) and QDesktopServices.openUrl(QUrl.fromLocalFile(folder))

    def _choose_destination(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export to", self.destination.text())
        if folder:
            self.destination.setText(folder)
            self._update_controls()

    def _say(self, text: str, *, error: bool = False) -> None:
        self.message.setText(text)
        self.message.setStyleSheet("color: #c0392b;" if error else "")
