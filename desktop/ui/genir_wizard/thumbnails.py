"""`ThumbnailGrid`: a grid of image thumbnails decoded off the GUI thread.

Paths are added at once as grey tiles; a worker thread reads each file scaled down
(QImageReader with a scaled size: no full decode of a large image), and the tile gets its
picture when that is done. The GUI thread only turns small QImages into icons, so the event
loop stays responsive while thousands of images stream in.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Iterable
from pathlib import Path

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import QListView, QListWidget, QListWidgetItem, QWidget

from desktop.state.controller import load_thumbnail

PATH_ROLE = Qt.ItemDataRole.UserRole


class ThumbnailGrid(QListWidget):
    def __init__(self, size: int = 96, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.size = size
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setUniformItemSizes(True)
        self.setIconSize(QSize(size, size))
        self.setGridSize(QSize(size + 16, size + 28))
        self.setSpacing(4)
        self._placeholder = QPixmap(size, size)
        self._placeholder.fill(QColor("#888888"))
        self._pool = concurrent.futures.ThreadPoolExecutor(1, "genir-thumbnails")
        self._items: dict[str, QListWidgetItem] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.pending = 0
        """Thumbnails still being read."""

    def add_paths(self, paths: Iterable[Path], labels: Iterable[str] | None = None) -> None:
        paths = list(paths)
        names = list(labels) if labels is not None else [p.stem for p in paths]
        for path, label in zip(paths, names, strict=True):
            key = str(path)
            if key in self._items:
                continue
            item = QListWidgetItem(QIcon(self._placeholder), label)
            item.setData(PATH_ROLE, key)
            item.setToolTip(key)
            self.addItem(item)
            self._items[key] = item
            self.pending += 1
            task = asyncio.ensure_future(self._load(key))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def item_for(self, path: Path | str) -> QListWidgetItem | None:
        return self._items.get(str(path))

    def clear_all(self) -> None:
        self.clear()
        self._items.clear()

    async def _load(self, key: str) -> None:
        loop = asyncio.get_running_loop()
        try:
            image, _size = await loop.run_in_executor(self._pool, load_thumbnail, key, self.size)
        finally:
            self.pending -= 1
        item = self._items.get(key)
        if item is not None and image is not None:
            item.setIcon(QIcon(QPixmap.fromImage(image)))
