"""The log panel: the app's log lines as they come, bound to LogModel."""

from __future__ import annotations

import logging

from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import QPlainTextEdit, QWidget

from desktop.state import LogModel


class LogPanel(QPlainTextEdit):
    def __init__(self, model: LogModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setMaximumBlockCount(2000)
        self.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        for line in model.lines:
            self.appendPlainText(line)
        model.lineAdded.connect(self._add)

    def _add(self, text: str, level: int) -> None:
        if level >= logging.WARNING:
            colour = "#d23c3c" if level >= logging.ERROR else "#c88a00"
            escaped = text.replace("&", "&amp;").replace("<", "&lt;")
            self.appendHtml(f'<span style="color:{colour}">{escaped}</span>')
        else:
            self.appendPlainText(text)
