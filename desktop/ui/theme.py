"""Light/dark: follow the system colour scheme with Fusion's palette (kept in step)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QStyleFactory


def is_dark() -> bool:
    hints = QGuiApplication.styleHints()
    if hints.colorScheme() != Qt.ColorScheme.Unknown:
        return hints.colorScheme() == Qt.ColorScheme.Dark
    window = QGuiApplication.palette().color(QPalette.ColorRole.Window)
    return window.lightness() < 128


def follow_system(app: QApplication) -> None:
    """Use Fusion (which honours the system scheme) and re-apply when the scheme changes."""
    app.setStyle(QStyleFactory.create("Fusion"))
    app.styleHints().colorSchemeChanged.connect(
        lambda _scheme: app.setPalette(app.style().standardPalette())
    )
