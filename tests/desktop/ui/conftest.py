"""The shared desktop fixtures (tests/desktop/state/app_fixtures.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "state"))

import pytest
from app_fixtures import *  # noqa: F403
from genir_fixtures import *  # noqa: F403
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication


@pytest.fixture
def open_window(qtbot, tmp_path):
    """`open_window(controller, ui_settings=None)`: a shown main window, the active one (its
    shortcuts, of window context, only fire then)."""
    from desktop.ui.main_window import MainWindow

    def open_(controller, ui_settings: QSettings | None = None) -> MainWindow:
        ui = ui_settings or QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat)
        window = MainWindow(controller, ui)
        qtbot.addWidget(window)
        window.show()
        window.activateWindow()
        qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
        return window

    return open_
