"""The window as a new user meets it: the compare view has the room (the log closed, its
warnings in the status bar), no tile grid over the photo, Space toggles after choosing Toggle,
Help explains the app, the open dialog takes GIF and HEIC."""

from __future__ import annotations

import logging

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from desktop.ui.compare_state import CompareState
from desktop.ui.help_pages import HelpPage
from desktop.ui.main_window import IMAGE_FILTER, MainWindow


@pytest.fixture
def window(make_controller, qtbot, tmp_path):
    ui = QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat)
    window = MainWindow(make_controller(), ui)
    qtbot.addWidget(window)
    window.show()
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    return window


def test_the_log_is_closed_and_its_warnings_show_in_the_status_bar(window):
    assert not window.log_dock.isVisible()
    assert window.compare.height() > 0.9 * window.centralWidget().height() > 600
    log = logging.getLogger("desktop.test")
    window.controller.log.install(log)
    try:
        log.warning("aqua.jpg failed: the file is not an image")
        assert window.statusBar().currentMessage().startswith("aqua.jpg failed: the file is not")
        log.info("nothing to see")
        assert "nothing to see" not in window.statusBar().currentMessage()
    finally:
        window.controller.log.uninstall(log)


def test_the_tile_grid_is_off_until_asked_for():
    assert not CompareState().show_tiles


def test_choosing_toggle_gives_the_keys_back_to_the_view(window, qtbot):
    box = window.compare.mode_box
    box.setFocus()
    box.setCurrentIndex(box.findData("toggle"))
    box.activated.emit(box.currentIndex())  # what choosing it with the mouse or keys sends
    qtbot.waitUntil(window.compare.canvas.hasFocus)
    assert window.compare.state.mode == "toggle"


@pytest.mark.parametrize(
    ("text", "says"),
    [("&Getting started", "press\n   Restore"), ("&README", "scripts/run"), ("&About", "0.1.0")],
)
def test_help_has_getting_started_the_readme_and_about(window, qtbot, text, says):
    (help_menu,) = [a.menu() for a in window.menuBar().actions() if a.text() == "&Help"]
    (action,) = [a for a in help_menu.actions() if a.text() == text]
    action.trigger()
    (page,) = window.findChildren(HelpPage)
    assert page.isVisible() and says.replace("\n   ", " ") in page.browser.toPlainText()


def test_the_open_dialog_takes_gif_and_heic():
    assert "*.gif" in IMAGE_FILTER and "*.heic" in IMAGE_FILTER
