"""The Model setting as a list, never free text: "auto", the installed restorers, and those not
installed offered as "NAME (not installed) — Get it…", which asks for the model manager
(`getModel`) instead of being chosen."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QWidget

from desktop.state import EngineModels

MISSING_ROLE = Qt.ItemDataRole.UserRole + 1
"""True on an entry of a model that is not installed."""


def missing_text(title: str) -> str:
    return f"{title} (not installed) — Get it…"


class ModelBox(QComboBox):
    """`chosen(value)` when the user picks an installed model; `getModel(name)` when they pick
    one that is not installed (the box goes back to what it showed). `show_value` selects a
    value without signals; a value the list lacks (a model folder saved by an older version)
    is shown as it is, one that is not installed as "NAME (not installed)"."""

    chosen = Signal(str)
    getModel = Signal(str)

    def __init__(self, models: EngineModels, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.models = models
        self._value = "auto"
        self.activated.connect(self._activated)
        models.changed.connect(self._rebuild)
        self._rebuild()

    def show_value(self, value: Any) -> None:
        self._value = str(value or "auto")
        self._rebuild()

    def _rebuild(self) -> None:
        self.blockSignals(True)
        self.clear()
        missing = {}
        for choice in self.models.choices():
            if not choice.installed:
                missing[choice.value] = f"{choice.title} (not installed)"
            text = choice.title if choice.installed else missing_text(choice.title)
            self.addItem(text, choice.value)
            self.setItemData(self.count() - 1, not choice.installed, MISSING_ROLE)
        index = next(
            (i for i in range(self.count()) if self._is_current(i)),
            -1,
        )
        if index < 0:  # a model no longer installed, or a folder
            self.addItem(missing.get(self._value, self._value), self._value)
            index = self.count() - 1
        self.setCurrentIndex(index)
        self.blockSignals(False)

    def _is_current(self, index: int) -> bool:
        return self.itemData(index) == self._value and not self.itemData(index, MISSING_ROLE)

    def _activated(self, index: int) -> None:
        value = str(self.itemData(index))
        if self.itemData(index, MISSING_ROLE):
            self._rebuild()  # back to the model in use
            self.getModel.emit(value)
            return
        if value != self._value:
            self._value = value
            self.chosen.emit(value)
