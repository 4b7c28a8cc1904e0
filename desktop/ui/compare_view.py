"""Before/after comparison of one result: split, side by side or toggle, with shared zoom and pan,
the job's tile grid and the degradation heatmap on top.

`CompareCanvas` paints and takes the mouse and keys; `CompareView` adds the controls, the map
legend and the hover read-out around it. Both bind to one `CompareState`.

Mouse: wheel zooms around the cursor, drag pans (or moves the split line when grabbed near it).
Keys: Left/Right move the split (Shift: further), Space flips before/after in toggle mode,
F or 0 fits, 1 is 100 %, 2 is 200 %, +/- zoom in and out.

`CompareView.set_images` decodes the files in a worker thread (a 16 MP JPEG takes a quarter of
a second) and shows them when they arrive; until then the previous images stay on screen.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from PySide6.QtCore import (
    QObject,
    QPoint,
    QPointF,
    QRect,
    QRectF,
    QRunnable,
    QSize,
    Qt,
    QThreadPool,
    QTimer,
    Signal,
    Slot,
)
from PySide6.QtGui import (
    QColor,
    QImage,
    QImageReader,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop.ui.compare_state import MODES, CompareState
from desktop.ui.degradation_overlay import AVERAGE, DegradationMap
from desktop.ui.image_pyramid import ImagePyramid
from desktop.ui.map_legend import MapLegend

log = logging.getLogger(__name__)

PANE_GAP = 2
"""Pixels between the two panes side by side."""
SPLIT_GRAB = 6
"""How near the split line (pixels) a press grabs it rather than panning."""
WHEEL_STEP = 1.25
"""Zoom factor per wheel notch (and per + / - key)."""
BACKGROUND = QColor(40, 40, 43)
TILE_PEN = QColor(255, 210, 0, 200)
LOADING_BADGE_DELAY_MS = 200
"""A load that takes longer than this shows "Loading…" over the previous images; quicker ones
swap the images without it, so clicking through small results does not flicker."""

TileBox = tuple[int, int, int, int]
"""(top, left, height, width) in output pixels."""


def load_image(path: str) -> QImage:
    """Read an image file as stored (no EXIF rotation: the engine restores the stored pixels)."""
    reader = QImageReader(path)
    reader.setAutoTransform(False)
    image = reader.read()
    if image.isNull():
        raise ValueError(f"cannot open {path}: {reader.errorString()}; check that the file exists")
    return image


def fit_zoom(image: QSize, pane: QSize) -> float:
    """The zoom at which `image` just fits in `pane`."""
    if image.isEmpty():
        return 1.0
    return min(pane.width() / image.width(), pane.height() / image.height())


def compare_pyramids(before: QImage, after: QImage) -> tuple[ImagePyramid, ImagePyramid]:
    """The (before, after) pyramids of one result. Only QImage work: safe off the GUI thread."""
    # Drawn at the after's size, so the same output pixel is the same place in both.
    return ImagePyramid(before, display_size=after.size()), ImagePyramid(after)


class _LoadSignals(QObject):
    """A worker's answers. Created on the GUI thread and connected to the view there; Qt drops
    the connection (and any answer still queued) when the view is destroyed."""

    loaded = Signal(int, object, object)  # generation, before and after ImagePyramid
    failed = Signal(int, str)  # generation, message


class _Generation:
    """The number of the view's latest `set_images`, shared with its workers (an int read or
    written under the GIL needs no lock)."""

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


@dataclass(frozen=True)
class Pane:
    """Where one picture goes: `rect` in widget pixels; `side` is "before", "after" or "split"."""

    rect: QRect
    side: str


class CompareCanvas(QWidget):
    """Paints the panes of one `CompareState`; all image coordinates are output pixels."""

    hoverToken = Signal(dict)

    def __init__(self, state: CompareState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.before: ImagePyramid | None = None
        self.after: ImagePyramid | None = None
        self.tile_grid: list[TileBox] = []
        self.map: DegradationMap | None = None
        self._map_image: QImage | None = None
        self.loading = False
        """New images are on their way: the ones shown are the previous result's, drawn without
        overlays (those belong to the new images)."""
        self.message = ""
        """Shown instead of images when there are none (why a result could not be shown)."""
        self._badge_delay = QTimer(self)
        self._badge_delay.setSingleShot(True)
        self._badge_delay.setInterval(LOADING_BADGE_DELAY_MS)
        self._badge_delay.timeout.connect(self.update)
        self._drag: str | None = None  # "pan" | "split" while a button is down
        self._last_pos = QPointF()
        self._hovered: tuple[int, int] | None = None
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.setMinimumSize(200, 150)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        state.changed.connect(self.update)

    def sizeHint(self) -> QSize:
        return QSize(960, 640)

    # 1. content --------------------------------------------------------------------------
    def set_images(self, before: QImage, after: QImage) -> None:
        """Show decoded images now (`CompareView.set_images` decodes files off the GUI thread)."""
        self.show_pyramids(*compare_pyramids(before, after))

    def show_pyramids(self, before: ImagePyramid, after: ImagePyramid) -> None:
        self.before, self.after = before, after
        self._set_loading(False, "")
        self.fit()

    def start_loading(self) -> None:
        """Keep the shown images until new ones come; the overlays set from now on are theirs."""
        self.tile_grid = []
        self.set_map(None)
        self._set_loading(True, "")

    def show_failure(self, message: str) -> None:
        self.before = self.after = None
        self._set_loading(False, message)

    def clear(self) -> None:
        self.before = self.after = None
        self.tile_grid = []
        self.set_map(None)
        self._set_loading(False, "")

    def _set_loading(self, loading: bool, message: str) -> None:
        self.loading, self.message = loading, message
        if loading:
            self._badge_delay.start()
        else:
            self._badge_delay.stop()
        self.update()

    def image_size(self) -> QSize:
        return self.after.display_size if self.after else QSize(0, 0)

    def set_map(self, degradation_map: DegradationMap | None) -> None:
        self.map = degradation_map
        self._hovered = None
        self.refresh_map()

    def refresh_map(self) -> None:
        """Re-colour the heatmap after the block or layer changed."""
        self._map_image = (
            self.map.image(self.state.map_block, self.state.map_layer or None)
            if self.map is not None
            else None
        )
        self.update()

    # 2. geometry -------------------------------------------------------------------------
    def panes(self) -> list[Pane]:
        rect = self.rect()
        mode = self.state.mode
        if mode == "side_by_side":
            width = (rect.width() - PANE_GAP) // 2
            return [
                Pane(QRect(0, 0, width, rect.height()), "before"),
                Pane(QRect(rect.width() - width, 0, width, rect.height()), "after"),
            ]
        if mode == "toggle":
            return [Pane(rect, "after" if self.state.showing_after else "before")]
        return [Pane(rect, "split")]

    def split_x(self) -> int:
        return round(self.width() * self.state.split)

    def origin(self, pane: Pane) -> QPointF:
        """Device position of output pixel (0, 0) in `pane`; whole pixels, so 100 % is 1:1."""
        zoom, centre, middle = self.state.zoom, self.state.centre, self.middle(pane)
        # floor(v + 0.5), not round(): banker's rounding would shift equal panes differently.
        return QPointF(
            math.floor(middle.x() - centre.x() * zoom + 0.5),
            math.floor(middle.y() - centre.y() * zoom + 0.5),
        )

    @staticmethod
    def middle(pane: Pane) -> QPointF:
        """The point of `pane` that shows the state's centre."""
        rect = pane.rect
        return QPointF(rect.x() + rect.width() / 2, rect.y() + rect.height() / 2)

    def to_image(self, pane: Pane, pos: QPointF) -> QPointF:
        origin, zoom = self.origin(pane), self.state.zoom
        return QPointF((pos.x() - origin.x()) / zoom, (pos.y() - origin.y()) / zoom)

    def visible_image_rect(self, pane: Pane) -> QRectF:
        """The part of the output image (pixels) that `pane` shows."""
        top_left = self.to_image(pane, QPointF(pane.rect.topLeft()))
        size = self.image_size()
        zoom = self.state.zoom
        shown = QRectF(
            top_left.x(), top_left.y(), pane.rect.width() / zoom, pane.rect.height() / zoom
        )
        return shown.intersected(QRectF(0, 0, size.width(), size.height()))

    def pane_at(self, pos: QPointF) -> Pane | None:
        for pane in self.panes():
            if pane.rect.contains(pos.toPoint()):
                return pane
        return None

    # 3. zoom and pan -----------------------------------------------------------------------
    def fit_zoom(self) -> float:
        return fit_zoom(self.image_size(), self.panes()[0].rect.size())

    def fit(self) -> None:
        size = self.image_size()
        self.state.set_view(
            self.fit_zoom(), QPointF(size.width() / 2, size.height() / 2), fitted=True
        )

    def zoom_to(self, factor: float, anchor: QPointF | None = None) -> None:
        """Zoom to `factor` keeping the image point under widget point `anchor` (default: the
        middle of the first pane) where it is."""
        pane = self.pane_at(anchor) if anchor is not None else None
        if pane is None:
            self.state.set_view(factor, self.state.centre)
            return
        fixed = self.to_image(pane, anchor)
        self.state.set_view(factor, self.state.centre)
        zoom = self.state.zoom  # after clamping
        centre = fixed - (anchor - self.middle(pane)) / zoom
        self.state.set_view(zoom, self._clamped(centre))

    def pan_by(self, dx: float, dy: float) -> None:
        """Move the picture by (dx, dy) screen pixels."""
        zoom = self.state.zoom
        centre = self.state.centre - QPointF(dx / zoom, dy / zoom)
        self.state.set_view(zoom, self._clamped(centre))

    def _clamped(self, centre: QPointF) -> QPointF:
        size = self.image_size()
        return QPointF(
            min(max(centre.x(), 0.0), float(size.width())),
            min(max(centre.y(), 0.0), float(size.height())),
        )

    def resizeEvent(self, event: QResizeEvent) -> None:
        if self.state.fitted and self.after is not None:
            self.fit()

    # 4. painting ---------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), BACKGROUND)
        if self.after is None or self.before is None:
            self._paint_empty(painter)
            return
        for pane in self.panes():
            if pane.side == "split":
                split = self.split_x()
                left = QRect(pane.rect.left(), pane.rect.top(), split, pane.rect.height())
                right = QRect(split, pane.rect.top(), pane.rect.width() - split, pane.rect.height())
                self._paint_side(painter, pane, left, "before")
                self._paint_side(painter, pane, right, "after")
                self._paint_split_line(painter, split)
            else:
                self._paint_side(painter, pane, pane.rect, pane.side)
        if self.loading and not self._badge_delay.isActive():
            self._paint_badge(painter, "Loading…")
        painter.end()

    def _paint_empty(self, painter: QPainter) -> None:
        if self.loading:
            text = "Loading…"
        elif self.message:
            text = f"Cannot show this result\n\n{self.message}"
        else:
            text = "No result to compare"
        painter.setPen(QColor(230, 150, 120) if self.message else QColor(170, 170, 170))
        flags = Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap
        painter.drawText(self.rect().adjusted(24, 24, -24, -24), flags, text)

    def _paint_badge(self, painter: QPainter, text: str) -> None:
        metrics = painter.fontMetrics()
        box = QRect(0, 0, metrics.horizontalAdvance(text) + 24, metrics.height() + 12)
        box.moveTop(8)  # the top middle: clear of the split handle and the pane labels
        box.moveLeft((self.width() - box.width()) // 2)
        painter.fillRect(box, QColor(0, 0, 0, 210))
        painter.setPen(QColor(235, 235, 235))
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)

    def _paint_side(self, painter: QPainter, pane: Pane, clip: QRect, side: str) -> None:
        if clip.isEmpty():
            return
        painter.save()
        painter.setClipRect(clip)
        origin, zoom = self.origin(pane), self.state.zoom
        visible = self.visible_image_rect(pane)
        self.draw_image(painter, self.before if side == "before" else self.after, origin, visible)
        overlays = not self.loading
        if overlays and side == "after" and self.state.show_map and self._map_image is not None:
            self._paint_map(painter, origin, zoom, visible)
        if overlays and self.state.show_tiles and self.tile_grid:
            self._paint_tiles(painter, origin, zoom, visible)
        self._paint_label(painter, clip, "Before" if side == "before" else "After")
        painter.restore()

    def draw_image(
        self, painter: QPainter, pyramid: ImagePyramid, origin: QPointF, visible: QRectF
    ) -> None:
        pyramid.draw(painter, origin, self.state.zoom, visible)

    def _paint_map(self, painter: QPainter, origin: QPointF, zoom: float, visible: QRectF) -> None:
        """One flat block per token (nearest-neighbour), only the visible tokens scaled."""
        image, size = self._map_image, self.image_size()
        token_w = size.width() / image.width()
        token_h = size.height() / image.height()
        left = max(0, math.floor(visible.left() / token_w))
        top = max(0, math.floor(visible.top() / token_h))
        right = min(image.width(), math.ceil(visible.right() / token_w))
        bottom = min(image.height(), math.ceil(visible.bottom() / token_h))
        if right <= left or bottom <= top:
            return
        x0 = round(origin.x() + left * token_w * zoom)
        y0 = round(origin.y() + top * token_h * zoom)
        x1 = round(origin.x() + right * token_w * zoom)
        y1 = round(origin.y() + bottom * token_h * zoom)
        painter.setOpacity(self.state.map_opacity)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        painter.drawImage(
            QRect(x0, y0, x1 - x0, y1 - y0), image, QRect(left, top, right - left, bottom - top)
        )
        painter.setOpacity(1.0)

    def _paint_tiles(self, painter: QPainter, origin: QPointF, zoom: float, visible: QRectF):
        painter.setPen(QPen(TILE_PEN, 0))  # cosmetic: one pixel at any zoom
        painter.setBrush(Qt.BrushStyle.NoBrush)
        size = self.image_size()
        for top, left, height, width in self.tile_grid:
            box = QRectF(left, top, width, height).intersected(
                QRectF(0, 0, size.width(), size.height())
            )
            if not box.intersects(visible):
                continue
            x0 = round(origin.x() + box.left() * zoom)
            y0 = round(origin.y() + box.top() * zoom)
            x1 = round(origin.x() + box.right() * zoom)
            y1 = round(origin.y() + box.bottom() * zoom)
            painter.drawRect(x0, y0, x1 - x0 - 1, y1 - y0 - 1)

    def _paint_label(self, painter: QPainter, clip: QRect, text: str) -> None:
        metrics = painter.fontMetrics()
        box = QRect(0, 0, metrics.horizontalAdvance(text) + 12, metrics.height() + 6)
        if clip.width() < box.width() + 16:
            return
        if text == "After" and self.state.mode == "split":
            box.moveTopRight(clip.topRight() + QPoint(-8, 8))
        else:
            box.moveTopLeft(clip.topLeft() + QPoint(8, 8))
        painter.fillRect(box, QColor(0, 0, 0, 150))
        painter.setPen(QColor(235, 235, 235))
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)

    def _paint_split_line(self, painter: QPainter, x: int) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(QPen(QColor(255, 255, 255, 220), 1))
        painter.drawLine(x, 0, x, self.height())
        middle = QPointF(x + 0.5, self.height() / 2)
        painter.setBrush(QColor(255, 255, 255, 230))
        painter.setPen(QPen(QColor(0, 0, 0, 120), 1))
        painter.drawEllipse(middle, 11, 11)
        painter.setPen(QPen(QColor(40, 40, 40), 1.5))
        for direction in (-1, 1):
            tip = middle + QPointF(7 * direction, 0)
            painter.drawLine(tip, tip + QPointF(-4 * direction, -4))
            painter.drawLine(tip, tip + QPointF(-4 * direction, 4))
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)

    # 5. mouse and keys ---------------------------------------------------------------------
    def _near_split(self, pos: QPointF) -> bool:
        return self.state.mode == "split" and abs(pos.x() - self.split_x()) <= SPLIT_GRAB

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton or self.after is None:
            return super().mousePressEvent(event)
        self._drag = "split" if self._near_split(event.position()) else "pan"
        self._last_pos = event.position()
        if self._drag == "pan":
            self.setCursor(Qt.CursorShape.ClosedHandCursor)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        if self._drag == "split":
            self.state.split = pos.x() / max(1, self.width())
        elif self._drag == "pan":
            delta = pos - self._last_pos
            self._last_pos = pos
            self.pan_by(delta.x(), delta.y())
        elif self._near_split(pos):
            self.setCursor(Qt.CursorShape.SplitHCursor)
        else:
            self.unsetCursor()
        self._hover(pos)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self._drag = None
            self.unsetCursor()

    def leaveEvent(self, event) -> None:
        self._set_hovered(None, {})

    def wheelEvent(self, event: QWheelEvent) -> None:
        if self.after is None:
            return
        notches = event.angleDelta().y() / 120
        if notches:
            self.zoom_to(self.state.zoom * WHEEL_STEP**notches, event.position())
        event.accept()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key, shift = event.key(), bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        step = 0.1 if shift else 0.02
        if key in (Qt.Key.Key_Left, Qt.Key.Key_Right) and self.state.mode == "split":
            self.state.split += step if key == Qt.Key.Key_Right else -step
        elif key == Qt.Key.Key_Space and self.state.mode == "toggle":
            self.state.showing_after = not self.state.showing_after
        elif key in (Qt.Key.Key_F, Qt.Key.Key_0):
            self.fit()
        elif key == Qt.Key.Key_1:
            self.zoom_to(1.0)
        elif key == Qt.Key.Key_2:
            self.zoom_to(2.0)
        elif key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.zoom_to(self.state.zoom * WHEEL_STEP)
        elif key == Qt.Key.Key_Minus:
            self.zoom_to(self.state.zoom / WHEEL_STEP)
        else:
            return super().keyPressEvent(event)
        event.accept()

    def _hover(self, pos: QPointF) -> None:
        """Report the token under the cursor, once each time it changes."""
        pane = self.pane_at(pos)
        if self.map is None or pane is None or self.loading:  # a new map, the old images
            return self._set_hovered(None, {})
        point, size = self.to_image(pane, pos), self.image_size()
        if not (0 <= point.x() < size.width() and 0 <= point.y() < size.height()):
            return self._set_hovered(None, {})
        rows, cols = self.map.grid_shape
        row = min(rows - 1, int(point.y() * rows / size.height()))
        col = min(cols - 1, int(point.x() * cols / size.width()))
        if (row, col) != self._hovered:
            self._set_hovered((row, col), self.map.values_at(row, col, self.state.map_block))

    def _set_hovered(self, token: tuple[int, int] | None, values: dict) -> None:
        if token == self._hovered:
            return
        self._hovered = token
        self.hoverToken.emit(values)


class CompareView(QWidget):
    """The compare widget the main window embeds (API: docs/contracts.md, "Desktop issue")."""

    viewChanged = Signal(float, QPointF)
    hoverToken = Signal(dict)
    imagesShown = Signal()
    """The images of the latest `set_images` are on screen (with the overlays set since)."""
    loadFailed = Signal(str)
    """The latest `set_images` could not be shown: what went wrong and what to check."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._generation = _Generation()
        self.state = CompareState(self)
        self.canvas = CompareCanvas(self.state, self)
        self.legend_widget = MapLegend(self)
        self.hover_label = QLabel(self)
        self.hover_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._build_controls()
        self._build_layout()
        self.state.viewChanged.connect(self.viewChanged)
        self.state.changed.connect(self._sync_controls)
        self.canvas.hoverToken.connect(self._show_hover)
        self.canvas.hoverToken.connect(self.hoverToken)
        self.setFocusProxy(self.canvas)
        self._sync_controls()

    # the contract's API --------------------------------------------------------------------
    def set_images(self, before: str, after: str) -> None:
        """Show `before` (the input, drawn at the after's size) against `after` (the result).

        Returns at once: a worker thread decodes the files. The previous images stay on screen
        (without overlays) until `imagesShown`; a file that cannot be read ends in `loadFailed`
        and a message in the view. The tile grid and map set after this call are the new
        images'; a newer call supersedes this one, whose images are then never shown.
        """
        self._generation.value += 1
        self.canvas.start_loading()
        self._fill_map_choices()
        self._sync_controls()
        load = _ImageLoad(self._generation, before, after, self.canvas.panes()[0].rect.size())
        load.signals.loaded.connect(self._images_loaded)
        load.signals.failed.connect(self._load_failed)
        QThreadPool.globalInstance().start(load)

    @property
    def loading(self) -> bool:
        """Whether the images of the latest `set_images` are still being decoded."""
        return self.canvas.loading

    def clear(self) -> None:
        self._generation.value += 1  # a load still under way is dropped
        self.canvas.clear()
        self._fill_map_choices()
        self._sync_controls()

    def set_mode(self, mode: str) -> None:
        """ "split", "side_by_side" or "toggle"."""
        self.state.mode = mode
        if self.state.fitted:
            self.canvas.fit()  # the panes' size changed

    def set_split(self, fraction: float) -> None:
        self.state.split = fraction

    def zoom_to(self, factor: float) -> None:
        """Screen pixels per output pixel (1 = 100 %), keeping the middle of the view still."""
        self.canvas.zoom_to(factor)

    def fit(self) -> None:
        self.canvas.fit()

    def zoom(self) -> float:
        return self.state.zoom

    def set_tile_grid(self, boxes: list[TileBox]) -> None:
        """The job's tiles, (top, left, height, width) in output pixels."""
        self.canvas.tile_grid = [tuple(int(v) for v in box) for box in boxes]
        self.canvas.update()

    def set_degradation_map(self, npz_path: str) -> None:
        """Load `<result>.map.npz`; raises ValueError (with what to do) when it cannot."""
        degradation_map = DegradationMap.load(npz_path)
        self.canvas.set_map(None)  # the old map cannot show the new map's layer
        self.state.map_block = AVERAGE
        self.state.map_layer = degradation_map.default_layer
        self.canvas.set_map(degradation_map)
        self._fill_map_choices()
        self._sync_controls()

    def set_overlay_visible(self, tiles: bool, map: bool) -> None:
        self.state.show_tiles = tiles
        self.state.show_map = map

    def set_map_opacity(self, opacity: float) -> None:
        self.state.map_opacity = opacity

    def set_map_view(self, block: str | int) -> None:
        """ "average" or a block index (DreamClear maps)."""
        degradation_map = self.canvas.map
        if degradation_map is not None:
            degradation_map.legend(block, self.state.map_layer)  # raises on a bad block
        self.state.map_block = block
        self.canvas.refresh_map()

    def legend(self) -> list[tuple[QColor, str]]:
        """[(colour, meaning)] of the heatmap as shown now; empty without a map."""
        legend = self._current_legend()
        return list(legend.entries) if legend else []

    # additions -----------------------------------------------------------------------------
    def set_map_layer(self, layer: str) -> None:
        """ "router" or "magnitude" (DreamClear maps); "rgb" or a channel name (starter maps)."""
        degradation_map = self.canvas.map
        if degradation_map is not None:
            degradation_map.legend(self.state.map_block, layer)  # raises on a bad layer
        self.state.map_layer = layer
        self.canvas.refresh_map()

    def _current_legend(self):
        degradation_map = self.canvas.map
        if degradation_map is None:
            return None
        return degradation_map.legend(self.state.map_block, self.state.map_layer or None)

    # controls ------------------------------------------------------------------------------
    def _build_controls(self) -> None:
        self.mode_box = QComboBox(self)
        for mode, label in zip(MODES, ("Split", "Side by side", "Toggle (Space)"), strict=True):
            self.mode_box.addItem(label, mode)
        self.mode_box.currentIndexChanged.connect(
            lambda: self.set_mode(self.mode_box.currentData())
        )
        self.zoom_buttons = []
        for text, tip, action in (
            ("Fit", "Fit the window (F)", self.fit),
            ("100%", "One screen pixel per image pixel (1)", lambda: self.zoom_to(1.0)),
            ("200%", "Two screen pixels per image pixel (2)", lambda: self.zoom_to(2.0)),
        ):
            button = QToolButton(self)
            button.setText(text)
            button.setToolTip(tip)
            button.clicked.connect(action)
            self.zoom_buttons.append(button)
        self.zoom_label = QLabel(self)
        self.zoom_label.setMinimumWidth(48)
        self.tiles_box = QCheckBox("Tiles", self)
        self.tiles_box.toggled.connect(lambda on: setattr(self.state, "show_tiles", on))
        self.map_box = QCheckBox("Map", self)
        self.map_box.toggled.connect(lambda on: setattr(self.state, "show_map", on))
        self.layer_box = QComboBox(self)
        self.layer_box.setToolTip("Which values the heatmap shows")
        self.layer_box.currentIndexChanged.connect(self._layer_chosen)
        self.block_box = QComboBox(self)
        self.block_box.setToolTip("The MoAM block whose map is shown, or their average")
        self.block_box.currentIndexChanged.connect(self._block_chosen)
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal, self)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setMaximumWidth(120)
        self.opacity_slider.setToolTip("Heatmap opacity")
        self.opacity_slider.valueChanged.connect(lambda v: self.set_map_opacity(v / 100))

    def _build_layout(self) -> None:
        bar = QHBoxLayout()
        bar.setContentsMargins(4, 2, 4, 2)
        bar.addWidget(self.mode_box)
        for button in self.zoom_buttons:
            bar.addWidget(button)
        bar.addWidget(self.zoom_label)
        bar.addStretch(1)
        bar.addWidget(self.tiles_box)
        bar.addWidget(self.map_box)
        bar.addWidget(self.layer_box)
        bar.addWidget(self.block_box)
        bar.addWidget(QLabel("Opacity", self))
        bar.addWidget(self.opacity_slider)
        footer = QHBoxLayout()
        footer.setContentsMargins(4, 2, 4, 2)
        footer.addWidget(self.legend_widget, 1)
        footer.addWidget(
            self.hover_label, 1, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop
        )
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addLayout(bar)
        column.addWidget(self.canvas, 1)
        column.addLayout(footer)

    def _fill_map_choices(self) -> None:
        degradation_map = self.canvas.map
        with _Blocked(self.layer_box, self.block_box):
            self.layer_box.clear()
            self.block_box.clear()
            if degradation_map is None:
                return
            for layer in degradation_map.layers:
                self.layer_box.addItem(layer.capitalize() if layer != "rgb" else "RGB", layer)
            if degradation_map.kind == "dreamclear":
                self.block_box.addItem("All blocks (average)", AVERAGE)
                for index in range(degradation_map.num_blocks):
                    self.block_box.addItem(f"Block {index}", index)

    def _layer_chosen(self) -> None:
        if self.layer_box.currentData() is not None:
            self.set_map_layer(self.layer_box.currentData())

    def _block_chosen(self) -> None:
        if self.block_box.currentData() is not None:
            self.set_map_view(self.block_box.currentData())

    def _sync_controls(self) -> None:
        state, has_map = self.state, self.canvas.map is not None
        with _Blocked(
            self.mode_box, self.tiles_box, self.map_box, self.layer_box, self.block_box,
            self.opacity_slider,
        ):  # fmt: skip
            self.mode_box.setCurrentIndex(MODES.index(state.mode))
            self.tiles_box.setChecked(state.show_tiles)
            self.map_box.setChecked(state.show_map)
            self.opacity_slider.setValue(round(state.map_opacity * 100))
            if has_map:
                self.layer_box.setCurrentIndex(max(0, self.layer_box.findData(state.map_layer)))
                self.block_box.setCurrentIndex(max(0, self.block_box.findData(state.map_block)))
        self.zoom_label.setText(f"{state.zoom * 100:.0f}%")
        self.tiles_box.setEnabled(bool(self.canvas.tile_grid))
        for widget in (self.map_box, self.layer_box, self.opacity_slider):
            widget.setEnabled(has_map)
        self.block_box.setVisible(has_map and self.canvas.map.kind == "dreamclear")
        legend = self._current_legend()
        self.legend_widget.set_legend(legend if state.show_map else None)
        self.legend_widget.setVisible(legend is not None and state.show_map)

    @Slot(int, object, object)
    def _images_loaded(self, generation: int, before: ImagePyramid, after: ImagePyramid) -> None:
        if generation != self._generation.value:
            return  # superseded by a newer set_images (or clear)
        self.canvas.show_pyramids(before, after)
        self._sync_controls()
        self.imagesShown.emit()

    @Slot(int, str)
    def _load_failed(self, generation: int, message: str) -> None:
        if generation != self._generation.value:
            return
        log.warning("The compare view cannot show this result: %s", message)
        self.canvas.show_failure(message)
        self._sync_controls()
        self.loadFailed.emit(message)

    def _show_hover(self, values: dict) -> None:
        degradation_map = self.canvas.map
        self.hover_label.setText(
            degradation_map.describe(values) if values and degradation_map else ""
        )


class _Blocked:
    """Silence widgets' signals while the state is copied into them."""

    def __init__(self, *widgets: QWidget):
        self.widgets = widgets

    def __enter__(self) -> None:
        self.previous = [widget.blockSignals(True) for widget in self.widgets]

    def __exit__(self, *exc) -> None:
        for widget, previous in zip(self.widgets, self.previous, strict=True):
            widget.blockSignals(previous)
