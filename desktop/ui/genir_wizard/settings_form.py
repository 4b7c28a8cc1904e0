"""`SettingsForm`: a few genir.toml settings as widgets, saved together into the file.

Each row names its (section, key). A key the run's genir.toml does not have (an engine that
does not take that setting) is shown disabled with a note instead of being written."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from desktop.state.genir_wizard import GenirWizard


@dataclass
class Field:
    section: str
    key: str
    widget: QWidget
    get: Callable[[], Any]
    put: Callable[[Any], None]


class SettingsForm(QWidget):
    def __init__(self, wizard: GenirWizard, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.wizard = wizard
        self.fields: list[Field] = []
        self.form = QFormLayout()
        self.save_button = QPushButton("Save settings")
        self.save_button.clicked.connect(self.save)
        self.message = QLabel()
        self.message.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self.form)
        layout.addWidget(self.save_button)
        layout.addWidget(self.message)

    def spin(self, label: str, section: str, key: str, low: int, high: int) -> QSpinBox:
        box = QSpinBox()
        box.setRange(low, high)
        self._add(label, Field(section, key, box, box.value, lambda v: box.setValue(int(v))))
        return box

    def real(
        self, label: str, section: str, key: str, low: float, high: float, step: float
    ) -> QDoubleSpinBox:
        box = QDoubleSpinBox()
        box.setRange(low, high)
        box.setSingleStep(step)
        box.setDecimals(2)
        self._add(label, Field(section, key, box, box.value, lambda v: box.setValue(float(v))))
        return box

    def choice(self, label: str, section: str, key: str, options: list[str]) -> QComboBox:
        box = QComboBox()
        box.addItems(options)
        self._add(label, Field(section, key, box, box.currentText, box.setCurrentText))
        return box

    def words(self, label: str, section: str, key: str) -> QLineEdit:
        edit = QLineEdit()

        def get() -> list[str]:
            return [w.strip() for w in edit.text().split(",") if w.strip()]

        self._add(label, Field(section, key, edit, get, lambda v: edit.setText(", ".join(v))))
        return edit

    def text(self, label: str, section: str, key: str) -> QLineEdit:
        edit = QLineEdit()
        self._add(label, Field(section, key, edit, edit.text, lambda v: edit.setText(str(v))))
        return edit

    def flag(self, label: str, section: str, key: str) -> QCheckBox:
        box = QCheckBox()
        self._add(label, Field(section, key, box, box.isChecked, box.setChecked))
        return box

    def _add(self, label: str, field: Field) -> None:
        self.fields.append(field)
        self.form.addRow(label, field.widget)

    def load(self) -> None:
        """Show the file's values; disable the settings it does not have."""
        missing = []
        for field in self.fields:
            present = self.wizard.has_setting(field.section, field.key)
            field.widget.setEnabled(present)
            value = self.wizard.setting(field.section, field.key)
            if present and value is not None:
                field.put(value)
            if not present:
                missing.append(f"{field.section}.{field.key}")
        self.message.setText(
            f"Not in this run's genir.toml (this engine does not take them): {', '.join(missing)}"
            if missing
            else ""
        )

    def save(self) -> bool:
        """Write the shown values (those the file has); False, with why, if that failed."""
        if not any(f.widget.isEnabled() for f in self.fields):
            return True
        values = {(f.section, f.key): f.get() for f in self.fields if f.widget.isEnabled()}
        why = self.wizard.save_settings(values)
        self.message.setText(why or "Saved to genir.toml.")
        return not why
