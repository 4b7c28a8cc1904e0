"""`CompareLoader`: decode a result's before and after files off the GUI thread.

A 16 MP JPEG takes a quarter of a second to decode, so the files are read (QImage only, never
QPixmap) in Qt's thread pool, their mip pyramids built and the level the first paint needs
prepared there, and the pyramids handed back by a queued signal. Requests are numbered: only
the latest one is answered, so clicking through results shows the last one clicked.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, QRunnable, QSize, QThreadPool, Signal, Slot
from PySide6.QtGui import QImage, QImageReader

from desktop.ui.compare_state import fit_zoom
from desktop.ui.image_pyramid import ImagePyramid, compare_pyramids

log = logging.getLogger(__name__)


def load_image(path: str) -> QImage:
    """Read an image file as stored (no EXIF rotation: the engine restores the stored pixels)."""
    reader = QImageReader(path)
    reader.setAutoTransform(False)
    image = reader.read()
    if image.isNull():
        raise ValueError(f"cannot open {path}: {reader.errorString()}; check that the file exists")
    return image


class _LoadSignals(QObject):
    """A worker's answers. Created on the GUI thread and connected to the loader there; Qt
    drops the connection (and any answer still queued) when the loader is destroyed."""

    loaded = Signal(int, object, object)  # generation, before and after ImagePyramid
    failed = Signal(int, str)  # generation, message


class _Generation:
    """The number of the loader's latest `load` (or `cancel`), shared with its workers (an int
    read or written under the GIL needs no lock)."""

    def __init__(self) -> None:
        self.value = 0


class _ImageLoad(QRunnable):
    """Decode a result's two files and build their pyramids off the GUI thread."""

    def __init__(self, generation: _Generation, before: str, after: str, pane: QSize):
        super().__init__()
        self.latest, self.generation = generation, generation.value
        self.before, self.after = before, after
        self.pane = pane  # where the images will be fitted: their first paint's level is built
        self.signals = _LoadSignals()

    def stale(self) -> bool:
        return self.latest.value != self.generation

    def run(self) -> None:
        try:
            if self.stale():  # a newer result was asked for while this one waited
                return
            after = load_image(self.after)
            if self.stale():
                return
            pyramids = compare_pyramids(load_image(self.before), after)
            if self.stale():
                return
            zoom = fit_zoom(pyramids[1].display_size, self.pane)
            for pyramid in pyramids:
                pyramid.prepare(zoom)
        except ValueError as error:  # a file that is missing or not an image
            self.signals.failed.emit(self.generation, str(error))
            return
        except Exception as error:  # the view waits for an answer, whatever went wrong
            log.exception("decoding %s and %s failed", self.before, self.after)
            self.signals.failed.emit(self.generation, f"cannot decode {self.after}: {error!r}")
            return
        self.signals.loaded.emit(self.generation, *pyramids)


class CompareLoader(QObject):
    """Loads one result at a time for a view; a newer `load` (or `cancel`) drops the one under
    way, whose answer then never comes. Destroying the loader (with its view) is safe while a
    worker still decodes: Qt drops the answer."""

    loaded = Signal(object, object)
    """The latest `load`'s before and after `ImagePyramid`."""
    failed = Signal(str)
    """The latest `load` could not be done: what went wrong and what to check."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._generation = _Generation()

    def load(self, before: str, after: str, pane: QSize) -> None:
        """Decode `before` and `after` in a worker; prepare the level that fits them in `pane`."""
        self._generation.value += 1
        load = _ImageLoad(self._generation, before, after, pane)
        load.signals.loaded.connect(self._loaded)
        load.signals.failed.connect(self._failed)
        QThreadPool.globalInstance().start(load)

    def cancel(self) -> None:
        """Drop the load under way, if any."""
        self._generation.value += 1

    @Slot(int, object, object)
    def _loaded(self, generation: int, before: ImagePyramid, after: ImagePyramid) -> None:
        if generation == self._generation.value:  # else superseded by a newer load or cancel
            self.loaded.emit(before, after)

    @Slot(int, str)
    def _failed(self, generation: int, message: str) -> None:
        if generation == self._generation.value:
            self.failed.emit(message)
