"""Page 7, Export: the dataset folder and its manifest (optionally with LQ pairs), and a
button that trains the starter restorer on it, as an engine job with progress."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QPushButton, QWidget

from desktop.state.genir_wizard import TRAIN_CONFIG
from desktop.ui.genir_wizard.page import Page
from desktop.ui.genir_wizard.settings_form import SettingsForm
from desktop.ui.genir_wizard.stage_controls import StageControls


class ExportPage(Page):
    title = "7. Export"
    explanation = (
        "The kept images (your overrides applied) go into RUN/export with a manifest that "
        "`dreamclear train` reads, and a starter training config beside it."
    )

    def __init__(self, wizard, parent: QWidget | None = None) -> None:
        super().__init__(wizard, parent)
        self.form = SettingsForm(wizard)
        self.form.flag("Also write LQ pairs (degraded copies)", "export", "lq_pairs")
        self.layout_.addWidget(self.form)
        self.controls = StageControls(wizard, "export", "Export the dataset", self.form.save)
        self.layout_.addWidget(self.controls)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.layout_.addWidget(self.summary)
        row = QHBoxLayout()
        row.addWidget(QLabel("<b>Train on it</b>"))
        self.config_label = QLabel()
        row.addWidget(self.config_label, 1)
        other = QPushButton("Another trainer config…")
        other.clicked.connect(self._choose_config)
        row.addWidget(other)
        self.layout_.addLayout(row)
        self.train = StageControls(wizard, "train", "Train the starter on it")
        self.layout_.addWidget(self.train)
        self.layout_.addStretch(1)

    def load(self) -> None:
        self.form.load()
        self.refresh()

    def refresh(self) -> None:
        run, state = self.wizard.run, self.wizard.state
        if run is None or state is None:
            return
        summary = run / "export" / "dataset.json"
        try:
            data = json.loads(summary.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = None
        if not isinstance(data, dict):
            self.summary.setText(f"Not exported yet: {state.accepted} images are kept.")
        else:
            count = data.get("images", 0)
            lq = "with LQ pairs" if data.get("lq_pairs") else "without LQ pairs"
            manifest = run / "export" / "manifest.jsonl"
            self.summary.setText(
                f"Exported to {run / 'export'}: {count} images, {lq}. Manifest: {manifest}"
            )
        config = self.wizard.train_config or run / TRAIN_CONFIG
        self.config_label.setText(f"with {config}")
        has_config = config.is_file()
        self.train.button.setEnabled(self.train.button.isEnabled() and has_config)
        if not has_config:
            self.train.status.setText(f"Export first: training uses {config}.")

    def _choose_config(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "A trainer config (TOML) whose data is this export", filter="TOML (*.toml)"
        )
        if path:
            self.wizard.train_config = Path(path)
            self.train.start_text = "Train on it"
            self.refresh()
