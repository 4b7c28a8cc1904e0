"""The restore settings form, bound to SettingsModel (the defaults for new jobs) or to the
JobSettings of the waiting job selected in the queue. Settings the chosen model ignores (the
starter's, by EngineModels) are greyed out, their values kept."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from desktop.state import EngineModels, JobSettings, SettingsModel
from desktop.state.settings_model import DIFFUSION_ONLY, FIELDS
from desktop.ui.model_choice import ModelBox

STARTER_HINT = (
    "The starter model ignores steps, sampler, CFG, seed, prompt, tile size and precision."
)


class SettingsPanel(QWidget):
    """Edits write to the model; model changes (reset, another panel) update the widgets.

    The model is the defaults (`SettingsModel`) or one job's `JobSettings` (`set_model`).
    `applyToSelected` asks the window to give the selected jobs the defaults; `editDefaults`
    to show the defaults again (the queue's selection is cleared). The diffusion-only
    settings are disabled while the model setting runs the starter (by `engine_models`).
    `getModel(name)` asks for the model manager (a model was picked that is not installed)."""

    applyToSelected = Signal()
    editDefaults = Signal()
    getModel = Signal(str)

    def __init__(
        self,
        model: SettingsModel,
        engine_models: EngineModels,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.defaults = model
        self.model: SettingsModel | JobSettings = model
        self.engine_models = engine_models
        self.editors: dict[str, QWidget] = {}
        self.form = form = QFormLayout(self)
        self.title = QLabel()
        self.title.setWordWrap(True)
        self.defaults_button = QPushButton("Edit defaults")
        self.defaults_button.setToolTip("Show the settings new jobs get")
        self.defaults_button.clicked.connect(self.editDefaults)
        title_row = QHBoxLayout()
        title_row.addWidget(self.title, 1)
        title_row.addWidget(self.defaults_button)
        form.addRow(title_row)
        self.model_name = ModelBox(engine_models)
        self.model_name.getModel.connect(self.getModel)
        self._bind(
            self.model_name,
            "model",
            self.model_name.chosen,
            self.model_name.show_value,
        )
        form.addRow("Model", self.model_name)
        self.starter_hint = QLabel(STARTER_HINT)
        self.starter_hint.setWordWrap(True)
        form.addRow(self.starter_hint)
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
        self.seed_lock = lock
        seed_row = QHBoxLayout()
        seed_row.addWidget(seed, 1)
        seed_row.addWidget(lock)
        form.addRow("Seed", seed_row)
        form.addRow("Prompt", self._combo("prompt_mode", ["auto caption", "none", "my prompt"]))
        self.prompt = self._line("prompt", "describe the photo")
        form.addRow("", self.prompt)
        color_fix = self._combo("color_fix", ["wavelet", "AdaIN", "off"])
        color_fix.setToolTip(
            "Keep the original's colours: wavelet takes its broad colour and keeps the "
            "restored detail; AdaIN matches each channel's mean and spread. The "
            "starter leaves the colours alone where it removed heavy damage: there the "
            "original's colours are part of the damage"
        )
        form.addRow("Colour fix", color_fix)
        strength = self._percent("strength")
        strength.setToolTip(
            "How much of the restoration to keep: lower blends in the plain upscale of the "
            "original, bringing back fine texture (grain) that restoring smooths away"
        )
        form.addRow("Strength", strength)
        form.addRow(
            "Tile size", self._combo("tile", ["auto", *map(str, FIELDS["tile"].values[1:])])
        )
        form.addRow("Device", self._line("device", "auto, cpu, cuda:0 ..."))
        form.addRow("Precision", self._combo("dtype", ["auto", "bf16", "fp16", "fp32"]))
        offload = self._combo("offload", ["none", "per model", "per layer"])
        offload.setToolTip(
            "Where DreamClear's weights wait while they do not compute. none: all on the GPU "
            "(fastest). per model: each part moved onto the GPU only while it runs (the GPU "
            "holds the largest part; a little slower). per layer: least GPU memory, many "
            "times slower. Changing it reloads the model; on a CPU it changes nothing."
        )
        form.addRow("Offload", offload)
        form.addRow("Output folder", self._line("output_dir", ""))
        skip = QCheckBox("Skip photos already restored")
        skip.setToolTip(
            "When NAME_x4 is already in the output folder, leave the photo out instead of "
            "writing another copy: a re-run finishes what an interrupted one left"
        )
        self._bind(skip, "skip_existing", skip.toggled, skip.setChecked)
        form.addRow("", skip)
        buttons = QHBoxLayout()
        self.apply_button = QPushButton("Apply defaults to selected")
        self.apply_button.clicked.connect(self.applyToSelected)
        self.reset_button = QPushButton()
        self.reset_button.clicked.connect(lambda: self.model.reset())
        buttons.addWidget(self.apply_button)
        buttons.addWidget(self.reset_button)
        form.addRow(buttons)
        self._editable = True
        model.valueChanged.connect(self._model_changed)
        self.engine_models.changed.connect(self._update_enabled)
        self._show_model()

    def set_model(self, model: SettingsModel | JobSettings) -> None:
        """Edit `model`: the defaults, or a job's settings (edits apply to that job at once)."""
        if model is self.model:
            return
        self.model.valueChanged.disconnect(self._model_changed)
        if isinstance(self.model, JobSettings):
            self.model.editableChanged.disconnect(self._show_editable)
        self.model = model
        model.valueChanged.connect(self._model_changed)
        if isinstance(model, JobSettings):
            model.editableChanged.connect(self._show_editable)
        self._show_model()

    def _show_model(self) -> None:
        model = self.model
        for name in self.editors:
            self._model_changed(name, model.value(name))
        per_job = isinstance(model, JobSettings)
        self.title.setText(
            f"Settings of <b>{model.name}</b>" if per_job else "<b>Defaults</b> for new jobs"
        )
        self.defaults_button.setVisible(per_job)
        self.reset_button.setText("Use defaults" if per_job else "Reset")
        self.reset_button.setToolTip(
            "Give this job the default settings" if per_job else "Every default back to its own"
        )
        self._show_editable(model.editable if per_job else True)

    def _show_editable(self, editable: bool) -> None:
        """A job that has started shows its settings, greyed out."""
        self._editable = editable
        self._update_enabled()

    def _update_enabled(self) -> None:
        """An editor is enabled while the settings are editable and the model uses it."""
        editable = self._editable
        diffusion = not self.engine_models.runs_starter(self.model.value("model"))
        for name, editor in self.editors.items():
            editor.setEnabled(editable and (diffusion or name not in DIFFUSION_ONLY))
        self.seed_lock.setEnabled(
            editable and diffusion and self.model is self.defaults
        )  # a job's seed is its own
        self.prompt.setEnabled(
            editable and diffusion and self.model.value("prompt_mode") == "prompt"
        )
        self.form.setRowVisible(self.starter_hint, not diffusion)
        self.reset_button.setEnabled(editable)

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

    def _percent(self, name: str) -> QSpinBox:
        """A 0..1 setting edited in whole percent."""
        spin = QSpinBox()
        spin.setRange(0, 100)
        spin.setSuffix(" %")

        def show(value: float) -> None:
            spin.setValue(round(value * 100))

        show(self.model.value(name))
        spin.valueChanged.connect(lambda percent: self.model.set_value(name, percent / 100))
        self.editors[name] = spin
        spin._set = show  # type: ignore[attr-defined]
        return spin

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
        if name in ("model", "prompt_mode"):
            self._update_enabled()
