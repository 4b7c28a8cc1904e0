"""Draw a large image at any zoom without scaling all of it on each paint.

An `ImagePyramid` keeps the image and halved copies of it (built the first time a zoom needs
them: halving 16 MP takes ~25 ms once). A paint picks the level whose pixels are at most 2x
smaller than the screen's, and scales only the visible part of that level. 1:1 and zoomed-in
views draw nearest-neighbour pixels from the full image; zoomed-out views draw smooth.
QPainter.drawImage with a source rectangle reads only that rectangle, so the visible part is
all a paint touches: no tiles needed for the raster engine.

The pyramid is laid out in "display" pixels, which can differ from the image's own: the
before image is drawn at the after image's size so that their pixels line up.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QImage, QPainter

MIN_LEVEL_SIDE = 64
"""Stop halving when the image gets this small: nothing coarser is ever needed."""


class ImagePyramid:
    def __init__(self, image: QImage, display_size: QSize | None = None):
        if image.isNull():
            raise ValueError("cannot draw an empty image")
        # RGB32 (or premultiplied alpha) is what the raster engine blits without converting.
        wanted = (
            QImage.Format.Format_ARGB32_Premultiplied
            if image.hasAlphaChannel()
            else QImage.Format.Format_RGB32
        )
        self.levels: list[QImage] = [image.convertToFormat(wanted)]
        self.display_size = QSize(display_size or image.size())

    @property
    def size(self) -> QSize:
        return self.levels[0].size()

    def max_level(self) -> int:
        side = min(self.size.width(), self.size.height())
        return max(0, int(math.log2(max(side, 1) / MIN_LEVEL_SIDE)))

    def level(self, index: int) -> QImage:
        """Level `index` (0 = the image; each next one half the size), built on first use."""
        while len(self.levels) <= index:
            previous = self.levels[-1]
            self.levels.append(
                previous.scaled(
                    max(1, previous.width() // 2),
                    max(1, previous.height() // 2),
                    Qt.AspectRatioMode.IgnoreAspectRatio,
                    Qt.TransformationMode.SmoothTransformation,
                )
            )
        return self.levels[index]

    def prepare(self, zoom: float) -> None:
        """Build the level a paint at `zoom` draws from. Only QImage work: a worker thread can
        do it, so that the first paint on the GUI thread does not."""
        self.level(self.level_for(zoom))

    def level_for(self, zoom: float) -> int:
        """The coarsest level still at least as detailed as the screen at `zoom` (screen pixels
        per display pixel)."""
        screen_per_pixel = zoom * self.display_size.width() / self.size.width()
        if screen_per_pixel >= 1:
            return 0
        return min(int(math.log2(1 / screen_per_pixel) + 1e-9), self.max_level())

    def draw(self, painter: QPainter, origin: QPointF, zoom: float, visible: QRectF) -> None:
        """Draw the part of the image inside `visible` (display pixels) with display pixel (0, 0)
        at device point `origin` and `zoom` device pixels per display pixel. The painter has no
        world transform; its clip says where this pane is."""
        image = self.level(self.level_for(zoom))
        placed = visible_part(image.size(), self.display_size, origin, zoom, visible)
        if placed is None:
            return
        target, source = placed
        # Smooth when shrinking, or when the image itself is stretched to the display size (the
        # before image: resized like the engine's bicubic resize, not as blocks of input pixels).
        sx = self.display_size.width() / image.width()  # display pixels per level pixel
        smooth = zoom * sx < 1 - 1e-6 or self.size.width() < self.display_size.width()
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth)
        painter.drawImage(target, image, source)


def visible_part(
    image: QSize, display: QSize, origin: QPointF, zoom: float, visible: QRectF
) -> tuple[QRect, QRect] | None:
    """Where to draw an image of size `image` laid over `display` display pixels, with display
    pixel (0, 0) at device point `origin` and `zoom` device pixels per display pixel, so that
    `visible` (display pixels) is covered: (device rectangle, image rectangle), whole image
    pixels only; None when nothing of it is visible."""
    # Display pixels per image pixel along each axis (pyramid levels are rounded down).
    sx = display.width() / image.width()
    sy = display.height() / image.height()
    left = max(0, math.floor(visible.left() / sx))
    top = max(0, math.floor(visible.top() / sy))
    right = min(image.width(), math.ceil(visible.right() / sx))
    bottom = min(image.height(), math.ceil(visible.bottom() / sy))
    if right <= left or bottom <= top:
        return None
    # Round the device edges (not the size) so 100% is an exact blit and nothing shimmers.
    x0 = round(origin.x() + left * sx * zoom)
    y0 = round(origin.y() + top * sy * zoom)
    x1 = round(origin.x() + right * sx * zoom)
    y1 = round(origin.y() + bottom * sy * zoom)
    return QRect(x0, y0, x1 - x0, y1 - y0), QRect(left, top, right - left, bottom - top)


def compare_pyramids(before: QImage, after: QImage) -> tuple[ImagePyramid, ImagePyramid]:
    """The (before, after) pyramids of one result. Only QImage work: safe off the GUI thread."""
    # Drawn at the after's size, so the same output pixel is the same place in both.
    return ImagePyramid(before, display_size=after.size()), ImagePyramid(after)
