"""`dreamclear-studio [PATHS...]`: the desktop app's entry point.

The window opens at once; the engine starts in the background (the status indicator says
when it is ready) and the images given on the command line wait in the queue meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

import qasync

log = logging.getLogger(__name__)

NO_DISPLAY = (
    "dreamclear-studio needs a display and none was found (DISPLAY and WAYLAND_DISPLAY are "
    "unset).\n"
    "Run it in a desktop session, or without a screen with one of:\n"
    "    xvfb-run -a dreamclear-studio\n"
    "    QT_QPA_PLATFORM=offscreen dreamclear-studio\n"
    "To restore photos without a window: dreamclear restore PHOTO.jpg -o restored/\n"
)


def has_display() -> bool:
    """Whether Qt can open a window (asking Qt itself would abort the process instead)."""
    if os.environ.get("QT_QPA_PLATFORM") or sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="dreamclear-studio",
        description="DreamClear Studio, the desktop app: restore photos, compare, export.",
        epilog="For the command line (restore, models, engine, train, bench): dreamclear --help. "
        "Installed from a package: dreamclear-studio --help-setup for the first-run set-up "
        "(torch build, offline wheelhouse, repair).",
    )
    parser.add_argument(
        "images", nargs="*", metavar="PATHS", help="photos or folders to add to the queue"
    )
    parser.add_argument("--store", help="the model store folder (default: the engine's)")
    parser.add_argument("--verbose", "-v", action="store_true", help="log debug messages")
    return parser.parse_args(argv)


async def run_app(args: argparse.Namespace) -> int:
    from PySide6.QtWidgets import QApplication

    from desktop.client import EngineClient
    from desktop.state import AppController, SettingsModel
    from desktop.ui.main_window import MainWindow
    from desktop.ui.theme import follow_system

    app = QApplication.instance()
    assert app is not None
    quit_requested = asyncio.get_running_loop().create_future()

    def request_quit() -> None:
        if not quit_requested.done():
            quit_requested.set_result(None)

    # Qt's own quit stops the loop under qasync, so the engine could not be closed after it
    # ("no running event loop"): the window's closing ends this coroutine instead, and with it
    # the loop. aboutToQuit stays for a quit from elsewhere (the session ending), best effort.
    app.aboutToQuit.connect(request_quit)

    follow_system(app)
    controller = AppController(EngineClient, SettingsModel())
    controller.log.install()
    window = MainWindow(controller)
    window.closed.connect(request_quit)
    window.show()
    controller.start(store=args.store)
    if args.images:
        controller.add_paths(args.images)
    await quit_requested
    await controller.close()
    controller.log.uninstall()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not has_display():
        sys.stderr.write(NO_DISPLAY)
        return 2
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from PySide6.QtWidgets import QApplication

    app = QApplication(sys.argv[:1])
    app.setOrganizationName("DreamClear")
    app.setApplicationName("DreamClear Studio")
    app.setDesktopFileName("dreamclear-studio")
    app.setQuitOnLastWindowClosed(False)  # run_app ends when the window closes (see there)
    return qasync.run(run_app(args))  # asyncio.run on a QEventLoop for the app made above


if __name__ == "__main__":
    sys.exit(main())
