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

from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtGui import QColor, QIcon, QImage, QPixmap
from PySide6.QtWidgets import QListView, QListWidget, QListWidgetItem, QWidget

from desktop.state.controller import load_thumbnail

PATH_ROLE = Qt.ItemDataRole.UserRole
APPLY_MS = 100
"""Pictures read are put in their tiles together, at most this often."""
CACHE_SIZE = 4000
_cache: dict[tuple[str, int], QImage] = {}
"""Thumbnails read so far, by (path, size): a grid regrouped (the filter's threshold) does not
read its images again. Generated images are never rewritten under the same name."""


class ThumbnailGrid(QListWidget):
    def __init__(self, size: int = 96, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.size = size
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setUniformItemSizes(True)
        # laid out a batch per event: a full relayout of thousands of tiles would stall
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(64)
        self.setIconSize(QSize(size, size))
        self.setGridSize(QSize(size + 16, size + 28))
        self.setSpacing(4)
        self._placeholder = QPixmap(size, size)
        self._placeholder.fill(QColor("#888888"))
        self._pool = concurrent.futures.ThreadPoolExecutor(1, "genir-thumbnails")
        self._items: dict[str, QListWidgetItem] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._loaded: dict[str, QImage] = {}
        self._apply = QTimer(self, singleShot=True, interval=APPLY_MS)
        self._apply.timeout.connect(self._apply_loaded)
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

    @property
    def paths(self) -> list[Path]:
        """The images shown, in the order they were added."""
        return [Path(key) for key in self._items]

    def item_for(self, path: Path | str) -> QListWidgetItem | None:
        return self._items.get(str(path))

    def clear_all(self) -> None:
        self.clear()
        self._items.clear()

    async def _load(self, key: str) -> None:
        image = _cache.get((key, self.size))
        try:
            if image is None:
                loop = asyncio.get_running_loop()
                image, _ = await loop.run_in_executor(self._pool, load_thumbnail, key, self.size)
                if image is not None:
                    if len(_cache) >= CACHE_SIZE:
                        _cache.pop(next(iter(_cache)))
                    _cache[(key, self.size)] = image
        finally:
            self.pending -= 1
        if image is not None:
            self._loaded[key] = image
            if not self._apply.isActive():
                self._apply.start()

    def _apply_loaded(self) -> None:
        """Give the tiles read since the last time their pictures, in one repaint."""
        loaded, self._loaded = self._loaded, {}
        for key, image in loaded.items():
            item = self._items.get(key)
            if item is not None:
                item.setIcon(QIcon(QPixmap.fromImage(image)))
