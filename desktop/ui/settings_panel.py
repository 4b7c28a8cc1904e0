"""The restore settings form, bound to SettingsModel (the defaults for new jobs)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from desktop.state import SettingsModel
from desktop.state.settings_model import FIELDS


class SettingsPanel(QWidget):
    """Edits write to the model; model changes (reset, another panel) update the widgets.
    `applyToSelected` asks the window to give the selected jobs these settings."""

    applyToSelected = Signal()

    def __init__(self, model: SettingsModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.editors: dict[str, QWidget] = {}
        form = QFormLayout(self)
        self.model_name = self._line("model", "auto, a model name, or a model folder")
        form.addRow("Model", self.model_name)
        form.addRow("Upscale", self._combo("upscale", [f"x{v}" for v in FIELDS["upscale"].values]))
        steps = QSpinBox()
        steps.setRange(1, 1000)
        self._bind(steps, "steps", steps.valueChanged, steps.setValue)
        form.addRow("Steps", steps)
        form.addRow("Sampler", self._combo("sampler", ["iDDPM", "DPM-Solver++"]))
        cfg = QDoubleSpinBox()
        cfg.setRange(0.0, 30.0)
        cfg.setSingleStep(0.5)
        self._bind(cfg, "cfg", cfg.valueChanged, cfg.setValue)
        form.addRow("CFG", cfg)
        seed = QSpinBox()
        seed.setRange(0, 2**31 - 1)
        self._bind(seed, "seed", seed.valueChanged, seed.setValue)
        lock = QCheckBox("lock")
        lock.setToolTip("Keep this seed for every job (otherwise each job draws its own)")
        self._bind(lock, "seed_locked", lock.toggled, lock.setChecked)
        seed_row = QHBoxLayout()
        seed_row.addWidget(seed, 1)
        seed_row.addWidget(lock)
        form.addRow("Seed", seed_row)
        form.addRow("Prompt", self._combo("prompt_mode", ["auto caption", "none", "my prompt"]))
        self.prompt = self._line("prompt", "describe the photo")
        form.addRow("", self.prompt)
        form.addRow("Colour fix", self._combo("color_fix", ["wavelet", "AdaIN", "off"]))
        form.addRow(
            "Tile size", self._combo("tile", ["auto", *map(str, FIELDS["tile"].values[1:])])
        )
        form.addRow("Device", self._line("device", "auto, cpu, cuda:0 ..."))
        form.addRow("Precision", self._combo("dtype", ["auto", "bf16", "fp16", "fp32"]))
        form.addRow("Output folder", self._line("output_dir", ""))
        buttons = QHBoxLayout()
        self.apply_button = QPushButton("Apply to selected")
        self.apply_button.clicked.connect(self.applyToSelected)
        self.reset_button = QPushButton("Reset")
        self.reset_button.clicked.connect(model.reset)
        buttons.addWidget(self.apply_button)
        buttons.addWidget(self.reset_button)
        form.addRow(buttons)
        model.valueChanged.connect(self._model_changed)
        self._model_changed("prompt_mode", model.value("prompt_mode"))

    def _bind(self, widget: QWidget, name: str, changed: Any, setter: Any) -> None:
        setter(self.model.value(name))
        changed.connect(lambda value: self.model.set_value(name, value))
        self.editors[name] = widget
        widget._set = setter  # type: ignore[attr-defined]

    def _line(self, name: str, placeholder: str) -> QLineEdit:
        edit = QLineEdit()
        edit.setPlaceholderText(placeholder)
        edit.setText(str(self.model.value(name) or ""))
        edit.editingFinished.connect(
            lambda: self.model.set_value(name, edit.text().strip() or FIELDS[name].default or "")
        )
        self.editors[name] = edit
        edit._set = lambda value: edit.setText(str(value or ""))  # type: ignore[attr-defined]
        return edit

    def _combo(self, name: str, labels: list[str]) -> QComboBox:
        values = FIELDS[name].values or ()
        combo = QComboBox()
        for label, value in zip(labels, values, strict=True):
            combo.addItem(label, value)

        def select(value: Any) -> None:
            combo.setCurrentIndex(max(combo.findData(value), 0))

        select(self.model.value(name))
        combo.currentIndexChanged.connect(lambda i: self.model.set_value(name, combo.itemData(i)))
        self.editors[name] = combo
        combo._set = select  # type: ignore[attr-defined]
        return combo

    def _model_changed(self, name: str, value: Any) -> None:
        editor = self.editors.get(name)
        if editor is not None:
            editor.blockSignals(True)
            editor._set(value)  # type: ignore[attr-defined]
            editor.blockSignals(False)
        if name == "prompt_mode":
            self.prompt.setEnabled(value == "prompt")
