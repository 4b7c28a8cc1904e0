"""Page 1, Sources: the folder of high-quality photos (a new run is made here), how many are
usable and why the others are not, where captions come from, and a grid to review and edit
them (each caption is the image's sidecar NAME.txt, which the pairs stage reads first)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop.client import EngineClientError
from desktop.state.atomic_file import write_atomically
from desktop.state.controller import load_thumbnail
from desktop.state.genir_run import DEFAULT_MIN_SIDE, Sources, scan_sources
from desktop.ui.genir_wizard.page import Page

CAPTION_SOURCES = (
    "Sidecar .txt files next to each image (edit them below)",
    "A captions file (pairs.captions in genir.toml)",
    "A local captioner model for images without a caption (pairs.captioner)",
)
CAPTIONER_DEFAULT = "genir-captioner"
"""The manifest's optional captioner (`dreamclear models download genir-captioner`)."""
THUMB = 48


class SourcesPage(Page):
    title = "1. Sources"
    explanation = (
        "The high-quality photos the dataset learns from. Each needs a caption: a NAME.txt "
        "next to the image (typed here or made elsewhere) or a captions file."
    )
    opened = Signal(str)
    """A new run was made; the page it opens at."""

    def __init__(self, wizard, parent: QWidget | None = None) -> None:
        super().__init__(wizard, parent)
        self.sources: Sources | None = None
        self._pool = concurrent.futures.ThreadPoolExecutor(1, "genir-sources")
        self._scanning: asyncio.Task | None = None
        self._scanned: tuple | None = None
        """(images folder, minimum side) of the last scan."""
        # 1. a new run
        self.new_box = QWidget()
        form = QFormLayout(self.new_box)
        self.run_edit, run_row = self._path_row("Choose an empty folder for the run")
        self.images_edit, images_row = self._path_row("Choose the folder of photos")
        self.base_edit, base_row = self._path_row("Choose the SDXL base model folder")
        form.addRow("Run folder (new)", run_row)
        form.addRow("Photos folder", images_row)
        form.addRow("SDXL base model", base_row)
        self.create_button = QPushButton("Create the run")
        self.create_button.clicked.connect(self.create)
        form.addRow("", self.create_button)
        self.layout_.addWidget(self.new_box)
        # 2. the sources of an open run
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.layout_.addWidget(self.summary)
        self.run_box = QWidget()
        run_layout = QVBoxLayout(self.run_box)
        run_layout.setContentsMargins(0, 0, 0, 0)
        self.skipped = QListWidget()
        self.skipped.setMaximumHeight(90)
        run_layout.addWidget(self.skipped)
        source_row = QHBoxLayout()
        source_row.addWidget(QLabel("Captions from"))
        self.caption_source = QComboBox()
        self.caption_source.addItems(CAPTION_SOURCES)
        self.caption_source.activated.connect(self._caption_source_chosen)
        source_row.addWidget(self.caption_source, 1)
        run_layout.addLayout(source_row)
        self.grid = QTableWidget(0, 3)
        self.grid.setHorizontalHeaderLabels(["", "Image", "Caption (double-click to edit)"])
        self.grid.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.grid.verticalHeader().setDefaultSectionSize(THUMB + 6)
        self.grid.verticalHeader().hide()
        self.grid.setColumnWidth(0, THUMB + 8)
        self.grid.setColumnWidth(1, 220)
        self.grid.setIconSize(QPixmap(THUMB, THUMB).size())
        self.grid.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked
            | QAbstractItemView.EditTrigger.EditKeyPressed
        )
        self.grid.itemChanged.connect(self._caption_edited)
        run_layout.addWidget(self.grid, 1)
        self.layout_.addWidget(self.run_box, 100)
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #c0392b")
        self.layout_.addWidget(self.error)
        self.layout_.addStretch(1)  # keeps the new-run form at the top while run_box is hidden

    def _path_row(self, title: str) -> tuple[QLineEdit, QWidget]:
        edit = QLineEdit()
        browse = QPushButton("Browse…")
        browse.clicked.connect(
            lambda: edit.setText(QFileDialog.getExistingDirectory(self, title) or edit.text())
        )
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(edit, 1)
        layout.addWidget(browse)
        return edit, row

    def create(self) -> asyncio.Task:
        run, images, base = (
            e.text().strip() for e in (self.run_edit, self.images_edit, self.base_edit)
        )

        async def make() -> None:
            self.error.clear()
            if not (run and images and base):
                self.error.setText("Name the run folder, the photos folder and the base model.")
                return
            try:
                page = await self.wizard.create_run(Path(run), Path(images), Path(base))
            except EngineClientError as error:
                self.error.setText(f"Could not create the run: {error}")
                return
            self.opened.emit(page)

        return asyncio.ensure_future(make())

    # --- an open run ------------------------------------------------------------------------

    def refresh(self) -> None:
        state = self.wizard.state
        self.new_box.setVisible(state is None)
        self.run_box.setVisible(state is not None)
        if state is None:
            self.summary.setText("Start a new run, or open one with File › Open dataset run…")
            return
        if state.config_error:
            self.error.setText(state.config_error)
            return
        pairs = state.section("pairs")
        captioner = pairs.get("captioner", "")
        self.caption_source.setCurrentIndex(2 if captioner else 1 if pairs.get("captions") else 0)
        # An engine whose config has no captioner setting cannot use one.
        self.caption_source.model().item(2).setEnabled(  # type: ignore[attr-defined]
            self.wizard.has_setting("pairs", "captioner")
        )
        wanted = (state.images_folder, self._min_side())
        if wanted != self._scanned:
            self.rescan()

    def _min_side(self) -> int:
        state = self.wizard.state
        return int(state.section("pairs").get("min_side", DEFAULT_MIN_SIDE)) if state else 0

    def rescan(self) -> None:
        """Read the images again (another run, or another minimum side)."""
        if self._scanning is not None and not self._scanning.done():
            self._scanning.cancel()
        self.sources = None
        state = self.wizard.state
        self._scanned = (state.images_folder, self._min_side()) if state else None
        if state is not None and not state.config_error:
            self._scanning = asyncio.ensure_future(self.scan())

    async def scan(self) -> None:
        """Read the images' sizes off the GUI thread, then fill the lists."""
        with contextlib.suppress(RuntimeError):  # the window was closed meanwhile
            await self._scan()

    async def _scan(self) -> None:
        state = self.wizard.state
        if state is None or state.images_folder is None:
            return
        folder = state.images_folder
        min_side = self._min_side()
        self.summary.setText(f"Reading {folder}…")
        loop = asyncio.get_running_loop()
        self.sources = sources = await loop.run_in_executor(
            self._pool, scan_sources, folder, min_side
        )
        self.wizard.set_usable_sources(len(sources.usable))
        self.summary.setText(
            f"{folder}: {len(sources.images)} images, {len(sources.usable)} usable, "
            f"{sources.captioned} of them captioned; {len(sources.skipped)} skipped "
            f"(minimum side {min_side} px):"
        )
        self.skipped.clear()
        for image in sources.skipped:
            self.skipped.addItem(f"{image.key}: {image.problem}")
        self.skipped.setVisible(bool(sources.skipped))
        self.grid.blockSignals(True)
        self.grid.setRowCount(len(sources.usable))
        for row, image in enumerate(sources.usable):
            thumb = QTableWidgetItem()
            thumb.setFlags(Qt.ItemFlag.ItemIsEnabled)
            name = QTableWidgetItem(image.key)
            name.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
            caption_file = image.caption_path
            text = (
                caption_file.read_text(encoding="utf-8").strip() if caption_file.is_file() else ""
            )
            caption = QTableWidgetItem(text)
            caption.setData(Qt.ItemDataRole.UserRole, str(caption_file))
            for column, item in enumerate((thumb, name, caption)):
                self.grid.setItem(row, column, item)
        self.grid.blockSignals(False)
        await self._thumbnails(sources)

    async def _thumbnails(self, sources: Sources) -> None:
        loop = asyncio.get_running_loop()
        for row, image in enumerate(sources.usable):
            picture, _ = await loop.run_in_executor(
                self._pool, load_thumbnail, str(image.path), THUMB
            )
            item = self.grid.item(row, 0)
            if picture is not None and item is not None:
                item.setIcon(QIcon(QPixmap.fromImage(picture)))

    def _caption_source_chosen(self, index: int) -> None:
        """Sidecars need no setting; a captions file is named in pairs.captions; a captioner
        model in pairs.captioner (a folder, or a store name), asked only for the images that
        have no written caption (a sidecar or the file always wins)."""
        path, captioner = "", ""
        if index == 1:
            path, _ = QFileDialog.getOpenFileName(
                self, "Captions file (relative/path.png<TAB>caption lines)"
            )
            if not path:
                self.refresh()  # back to what the config says
                return
        if index == 2:
            captioner, ok = QInputDialog.getText(
                self,
                "Local captioner",
                "A captioning model: its folder, or its name in the model store",
                text=CAPTIONER_DEFAULT,
            )
            if not ok or not captioner.strip():
                self.refresh()
                return
        values = {("pairs", "captions"): path}
        if self.wizard.has_setting("pairs", "captioner"):
            values[("pairs", "captioner")] = captioner.strip()
        why = self.wizard.save_settings(values)
        self.error.setText(why)

    def _caption_edited(self, item: QTableWidgetItem) -> None:
        path = item.data(Qt.ItemDataRole.UserRole)
        if item.column() != 2 or not path:
            return
        write_atomically(Path(path), (item.text().strip() + "\n").encode("utf-8"))
