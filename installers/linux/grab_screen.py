"""Save a screenshot of the X display (DISPLAY) as PNG: `python grab_screen.py OUT.png [WAIT_S]`.

Run by test-clean-root.sh with the installed environment's Python, whose PySide6 asks the X
server for the root window's pixels: what a person at that screen would see. It waits until
something is drawn (a screen of one colour is an empty one), up to WAIT_S seconds, then a few
seconds more for the window to finish painting.
"""

import sys
import time

from PySide6.QtGui import QGuiApplication


def grab(app: QGuiApplication):
    return app.primaryScreen().grabWindow(0).toImage()


def colours(image) -> int:
    """Distinct colours on a coarse grid: enough to tell an empty screen from a window."""
    step = 16
    return len(
        {
            image.pixel(x, y)
            for x in range(0, image.width(), step)
            for y in range(0, image.height(), step)
        }
    )


def main() -> int:
    out, wait_s = sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 60.0
    app = QGuiApplication(sys.argv[:1])
    deadline = time.monotonic() + wait_s
    while colours(grab(app)) < 8 and time.monotonic() < deadline:
        time.sleep(1)
    time.sleep(8)
    image = grab(app)
    image.save(out)
    print(f"{out}: {image.width()}x{image.height()}, {colours(image)} colours on the grid")
    return 0 if colours(image) >= 8 else 1


if __name__ == "__main__":
    sys.exit(main())
