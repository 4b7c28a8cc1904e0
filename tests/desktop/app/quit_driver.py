"""Runs `dreamclear-studio ARGS...` (desktop.app.main) against the fake engine and, once the
engine is ready, prints the queue and quits the way a person does: `ctrl-q` or `close`.

    python quit_driver.py ctrl-q|close [ARGS...]
"""

from __future__ import annotations

import sys

from PySide6.QtCore import Qt, QTimer
from PySide6.QtTest import QTest

from desktop import app
from desktop.state import AppController
from desktop.testing.fake_engine import fake_engine_argv
from desktop.ui.main_window import MainWindow

how, args = sys.argv[1], sys.argv[2:]
start, show = AppController.start, MainWindow.show


def start_fake(self, argv=None, **options):
    return start(self, fake_engine_argv(), **options)


def show_then_quit(window: MainWindow) -> None:
    show(window)
    window.activateWindow()

    def quit_when_ready() -> None:
        if window.controller.status.state != "ready" or not window.isActiveWindow():
            QTimer.singleShot(50, quit_when_ready)
            return
        print("queue:", [(job.name, job.state) for job in window.controller.jobs.jobs], flush=True)
        if how == "ctrl-q":
            QTest.keyClick(window, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)
        else:
            window.close()

    quit_when_ready()


AppController.start = start_fake
MainWindow.show = show_then_quit
sys.exit(app.main(args))
