"""`CompareCanvas`: paints the panes of one `CompareState` (before/after images from their mip
pyramids, the tile grid and the degradation heatmap on top) and takes the mouse and keys.

Mouse: wheel zooms around the cursor, drag pans (or moves the split line when grabbed near it).
Keys: Left/Right move the split (Shift: further), Space flips before/after in toggle mode,
F or 0 fits, 1 is 100 %, 2 is 200 %, +/- zoom in and out.

It shows images it is handed (`show_pyramids`, `set_images`); decoding files is
`compare_loader`'s job, and the controls around the canvas are `CompareView`'s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from PySide6.QtCore import QPoint, QPointF, QRect, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import QWidget

from desktop.ui.compare_state import CompareState, fit_zoom
from desktop.ui.degradation_overlay import DegradationMap
from desktop.ui.image_pyramid import ImagePyramid, compare_pyramids, visible_part

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
        self.after_label = "After"
        """What the after side is: the result, a preview, or the photo while there is neither."""
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
        self._paint_label(painter, clip, side)
        painter.restore()

    def draw_image(
        self, painter: QPainter, pyramid: ImagePyramid, origin: QPointF, visible: QRectF
    ) -> None:
        pyramid.draw(painter, origin, self.state.zoom, visible)

    def _paint_map(self, painter: QPainter, origin: QPointF, zoom: float, visible: QRectF) -> None:
        """One flat block per token (nearest-neighbour), only the visible tokens scaled."""
        image = self._map_image
        placed = visible_part(image.size(), self.image_size(), origin, zoom, visible)
        if placed is None:
            return
        target, source = placed
        painter.setOpacity(self.state.map_opacity)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        painter.drawImage(target, image, source)
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

    def _paint_label(self, painter: QPainter, clip: QRect, side: str) -> None:
        text = "Before" if side == "before" else self.after_label
        metrics = painter.fontMetrics()
        box = QRect(0, 0, metrics.horizontalAdvance(text) + 12, metrics.height() + 6)
        if clip.width() < box.width() + 16:
            return
        if side == "after" and self.state.mode == "split":
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
