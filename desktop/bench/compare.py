"""Frame time of the compare view while panning a large result, against naive painting.

    python -m desktop.bench.compare [--width 4608 --height 3456] [--frames 40] [--photo PATH]

Engine-free: the "after" is a photo (or a pattern) stretched to the size asked for, the
"before" a quarter of it, as a 4x restore gives. Each frame pans by a few pixels and paints
the view offscreen into an image (QT_QPA_PLATFORM=offscreen works). Three ways to paint:
- pyramid: the compare view (visible part of one mip level per pane).
- naive scaled copy: scale the whole image to the zoom on every paint, then draw it.
- naive transform: draw the whole image through a QPainter scale (Qt clips to the pane,
  but shrinks from the full-size image with no mip levels).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QImage, QLinearGradient, QPainter, QTransform
from PySide6.QtWidgets import QApplication

from desktop.ui.compare_canvas import CompareCanvas
from desktop.ui.compare_loader import load_image
from desktop.ui.compare_state import CompareState
from desktop.ui.image_pyramid import ImagePyramid


class NaiveScaledCanvas(CompareCanvas):
    """Scales the whole image to the zoom on every paint (what the pyramid avoids)."""

    def draw_image(self, painter, pyramid: ImagePyramid, origin: QPointF, visible: QRectF):
        size, zoom = pyramid.display_size, self.state.zoom
        mode = (
            Qt.TransformationMode.SmoothTransformation
            if zoom < 1
            else Qt.TransformationMode.FastTransformation
        )
        scaled = pyramid.levels[0].scaled(
            round(size.width() * zoom),
            round(size.height() * zoom),
            Qt.AspectRatioMode.IgnoreAspectRatio,
            mode,
        )
        painter.drawImage(origin, scaled)


class NaiveTransformCanvas(CompareCanvas):
    """Draws the whole full-size image through a painter transform."""

    def draw_image(self, painter, pyramid: ImagePyramid, origin: QPointF, visible: QRectF):
        image, size, zoom = pyramid.levels[0], pyramid.display_size, self.state.zoom
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, zoom < 1)
        painter.setTransform(
            QTransform()
            .translate(origin.x(), origin.y())
            .scale(zoom * size.width() / image.width(), zoom * size.height() / image.height())
        )
        painter.drawImage(0, 0, image)
        painter.restore()


def pattern_image(size: QSize) -> QImage:
    image = QImage(size, QImage.Format.Format_RGB32)
    painter = QPainter(image)
    gradient = QLinearGradient(0, 0, size.width(), size.height())
    gradient.setColorAt(0, QColor(20, 60, 160))
    gradient.setColorAt(1, QColor(230, 190, 40))
    painter.fillRect(image.rect(), gradient)
    painter.setPen(QColor(255, 255, 255))
    for x in range(0, size.width(), 64):
        painter.drawLine(x, 0, x, size.height())
    painter.end()
    return image


def measure_pan(
    canvas: CompareCanvas, frames: int, step: tuple[float, float] = (7, 5)
) -> list[float]:
    """Seconds per frame: pan by `step` screen pixels and paint the whole canvas, `frames`
    times (after one unmeasured frame, which builds the pyramid level it needs)."""
    target = QImage(canvas.size(), QImage.Format.Format_RGB32)
    canvas.render(target)
    times = []
    for frame in range(frames):
        direction = 1 if (frame // 20) % 2 == 0 else -1  # back and forth, staying on the image
        started = time.perf_counter()
        canvas.pan_by(step[0] * direction, step[1] * direction)
        canvas.render(target)
        times.append(time.perf_counter() - started)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=4608)
    parser.add_argument("--height", type=int, default=3456)
    parser.add_argument("--view", default="1600x1000", help="canvas size, WxH")
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--photo", help="stretch this photo to the size (default: a pattern)")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    app = QApplication.instance() or QApplication([])

    size = QSize(args.width, args.height)
    if args.photo:
        after = load_image(args.photo).scaled(size, Qt.AspectRatioMode.IgnoreAspectRatio)
    else:
        after = pattern_image(size)
    before = after.scaled(size / 4, mode=Qt.TransformationMode.SmoothTransformation)
    view_w, view_h = (int(v) for v in args.view.split("x"))
    print(
        f"after {args.width}x{args.height} ({args.width * args.height / 1e6:.1f} MP), "
        f"before {before.width()}x{before.height()}, view {view_w}x{view_h}, split mode, "
        f"{args.frames} frames each; ms per frame, median / max"
    )
    kinds = (
        ("pyramid", CompareCanvas),
        ("naive scaled copy", NaiveScaledCanvas),
        ("naive transform", NaiveTransformCanvas),
    )
    print(f"{'zoom':>6} | " + " | ".join(f"{name:>19}" for name, _ in kinds))
    for zoom in ("fit", 0.5, 1.0, 2.0):
        cells = []
        for _, canvas_class in kinds:
            canvas = canvas_class(CompareState())
            canvas.resize(view_w, view_h)
            canvas.set_images(before, after)
            canvas.tile_grid = [(0, 0, 1024, 1024), (896, 896, 1024, 1024)]
            if zoom != "fit":
                canvas.zoom_to(zoom)
            times = measure_pan(canvas, args.frames)
            cells.append(f"{statistics.median(times) * 1e3:8.1f} / {max(times) * 1e3:6.1f}")
        label = "fit" if zoom == "fit" else f"{zoom * 100:.0f}%"
        print(f"{label:>6} | " + " | ".join(f"{cell:>19}" for cell in cells))
    del app
    return 0


if __name__ == "__main__":
    sys.exit(main())
