"""Page 2, Base model: the SDXL base (from the model store or a folder), the words that steer
img2img toward bad images and its strength, then the pairs stage, with one negative shown
beside its positive as soon as the first pair is made."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QLabel, QPushButton, QWidget

from desktop.state.engine_models import EngineModels
from desktop.ui.genir_wizard.page import Page
from desktop.ui.genir_wizard.settings_form import SettingsForm
from desktop.ui.genir_wizard.stage_controls import StageControls

PREVIEW = 200


class BasePage(Page):
    manageModels = Signal()
    """The user wants the model manager (to import an SDXL model into the store)."""
    title = "2. Base model and pairs"
    explanation = (
        "The SDXL model the dataset is made with. Each photo gets a bad twin: img2img "
        "(SDEdit) of it toward the negative words; the strength says how far (0..1)."
    )

    def __init__(self, wizard, models: EngineModels | None, parent: QWidget | None = None) -> None:
        super().__init__(wizard, parent)
        self.models = models
        row = QHBoxLayout()
        row.addWidget(QLabel("SDXL base"))
        self.base = QComboBox()
        self.base.activated.connect(self._base_chosen)
        row.addWidget(self.base, 1)
        choose = QPushButton("Folder…")
        choose.clicked.connect(self._choose_folder)
        row.addWidget(choose)
        manage = QPushButton("Models…")
        manage.setToolTip("Import or download a model into the model store")
        manage.clicked.connect(self.manageModels)
        row.addWidget(manage)
        self.layout_.addLayout(row)
        self.form = SettingsForm(wizard)
        self.words = self.form.words("Negative words", "pairs", "negative_words")
        self.strength = self.form.real(
            "SDEdit strength", "pairs", "sdedit_strength", 0.05, 1.0, 0.05
        )
        self.form.spin("img2img steps", "pairs", "steps", 1, 200)
        self.layout_.addWidget(self.form)
        self.controls = StageControls(wizard, "pairs", "Make the pairs", self.form.save)
        self.layout_.addWidget(self.controls)
        pictures = QHBoxLayout()
        self.positive, self.negative = QLabel(), QLabel()
        for label, caption in ((self.positive, "positive"), (self.negative, "negative")):
            label.setFixedSize(PREVIEW, PREVIEW)
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            label.setStyleSheet("border: 1px solid #888")
            label.setToolTip(caption)
            pictures.addWidget(label)
        pictures.addStretch(1)
        self.layout_.addLayout(pictures)
        self._shown: Path | None = None
        self.preview_caption = QLabel()
        self.layout_.addWidget(self.preview_caption)
        self.layout_.addStretch(1)
        if models is not None:
            models.changed.connect(self.load)

    def load(self) -> None:
        self.form.load()
        current = str(self.wizard.setting("", "base_model") or "")
        self.base.clear()
        folders = self.models.installed_folders() if self.models is not None else []
        for name, path in folders:
            if (Path(path) / "model_index.json").is_file():
                self.base.addItem(f"{name} ({path})", path)
        if current and self.base.findData(current) < 0:
            self.base.addItem(current, current)
        self.base.setCurrentIndex(max(self.base.findData(current), 0))
        self.refresh()

    def refresh(self) -> None:
        self._show_pair()

    def _base_chosen(self, index: int) -> None:
        path = self.base.itemData(index)
        if path:
            self.form.message.setText(
                self.wizard.save_settings({("", "base_model"): path}) or "Saved."
            )

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose an SDXL folder (diffusers layout)")
        if folder:
            why = self.wizard.save_settings({("", "base_model"): folder})
            self.form.message.setText(why or "Saved.")
            self.load()

    def _show_pair(self) -> None:
        run = self.wizard.run
        negatives = sorted((run / "pairs" / "negative").glob("*.png")) if run else []
        if not negatives:
            self._shown = None
            self.positive.setText("positive")
            self.negative.setText("negative")
            self.preview_caption.setText("One pair is shown here once it is made.")
            return
        negative = negatives[0]
        if negative == self._shown:
            return
        self._shown = negative
        positive = negative.parent.parent / "positive" / negative.name
        caption = negative.parent.parent / "caption" / f"{negative.stem}.txt"
        for label, path in ((self.positive, positive), (self.negative, negative)):
            pixmap = QPixmap(str(path))
            label.setPixmap(
                pixmap.scaled(PREVIEW, PREVIEW, Qt.AspectRatioMode.KeepAspectRatio)
                if not pixmap.isNull()
                else QPixmap()
            )
        text = caption.read_text(encoding="utf-8").strip() if caption.is_file() else ""
        self.preview_caption.setText(f"Positive and its negative: “{text}”")
