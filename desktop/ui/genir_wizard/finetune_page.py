"""Page 3, Fine-tune: the settings that matter, the disk and time it will take, then the job
with its progress, ETA and loss curve."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QPointF, QSize, Qt
from PySide6.QtGui import QImageReader, QPainter, QPen, QPixmap, QPolygonF
from PySide6.QtWidgets import QGridLayout, QLabel, QWidget

from desktop.state.genir_estimates import finetune_bytes, human_bytes, human_seconds
from desktop.state.genir_run import finetune_samples
from desktop.ui.genir_wizard.page import Page
from desktop.ui.genir_wizard.settings_form import SettingsForm
from desktop.ui.genir_wizard.stage_controls import StageControls


class LossCurve(QWidget):
    """The losses so far as a line, scaled to fit."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.losses: list[float] = []
        self.setMinimumHeight(120)

    def set_losses(self, losses: list[float]) -> None:
        self.losses = list(losses)
        self.update()

    def paintEvent(self, _event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), self.palette().base())
        painter.setPen(self.palette().text().color())
        if len(self.losses) < 2:
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "The loss shows here")
            return
        low, high = min(self.losses), max(self.losses)
        span = (high - low) or 1.0
        w, h = self.width() - 8, self.height() - 8
        points = [
            QPointF(4 + w * i / (len(self.losses) - 1), 4 + h * (1 - (v - low) / span))
            for i, v in enumerate(self.losses)
        ]
        painter.setPen(QPen(self.palette().highlight().color(), 2))
        painter.drawPolyline(QPolygonF(points))
        painter.setPen(self.palette().text().color())
        painter.drawText(8, 16, f"loss {self.losses[-1]:.4f}")


class SampleGrid(QWidget):
    """The fine-tuning's same-seed samples: per caption the base model's image beside the one
    under the learned prompts (what the tokens changed)."""

    SIDE = 160

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.shown: list[tuple[Path, Path]] = []

    def show_samples(self, pairs: list[tuple[Path, Path]]) -> None:
        if pairs == self.shown:
            return
        self.shown = list(pairs)
        while self.grid.count():
            self.grid.takeAt(0).widget().deleteLater()
        if not pairs:
            return
        for column, title in enumerate(("Base model (caption only)", "Learned prompts")):
            self.grid.addWidget(QLabel(title), 0, column)
        for row, images in enumerate(pairs, start=1):
            for column, path in enumerate(images):
                label = QLabel()
                label.setPixmap(self._thumbnail(path))
                label.setToolTip(str(path))
                self.grid.addWidget(label, row, column)

    def _thumbnail(self, path: Path) -> QPixmap:
        reader = QImageReader(str(path))
        size = reader.size()
        if size.isValid():
            reader.setScaledSize(
                size.scaled(QSize(self.SIDE, self.SIDE), Qt.AspectRatioMode.KeepAspectRatio)
            )
        return QPixmap.fromImage(reader.read())


class FinetunePage(Page):
    title = "3. Fine-tune"
    explanation = (
        "New positive and negative prompt tokens are learned from your pairs, together with "
        "the cross-attention layers (LoRA by default)."
    )

    def __init__(self, wizard, parent: QWidget | None = None) -> None:
        super().__init__(wizard, parent)
        self.form = SettingsForm(wizard)
        self.steps = self.form.spin("Steps", "finetune", "steps", 1, 100_000)
        self.mode = self.form.choice(
            "Cross-attention", "finetune", "cross_attention", ["lora", "full", "none"]
        )
        self.rank = self.form.spin("LoRA rank", "finetune", "lora_rank", 1, 256)
        self.vectors = self.form.spin("Vectors per token", "finetune", "vectors_per_token", 1, 16)
        self.layout_.addWidget(self.form)
        for box in (self.steps, self.rank, self.vectors):
            box.valueChanged.connect(self.update_estimate)
        self.mode.currentTextChanged.connect(self.update_estimate)
        self.mode.currentTextChanged.connect(self._mode_changed)
        self.estimate = QLabel()
        self.estimate.setWordWrap(True)
        self.layout_.addWidget(self.estimate)
        self.controls = StageControls(wizard, "finetune", "Start fine-tuning", self.form.save)
        self.layout_.addWidget(self.controls)
        self.curve = LossCurve()
        self.layout_.addWidget(self.curve, 1)
        self.samples = SampleGrid()
        self.layout_.addWidget(self.samples)
        wizard.stageChanged.connect(self._stage_changed)

    def load(self) -> None:
        self.form.load()
        self._mode_changed()
        self.refresh()

    def _mode_changed(self) -> None:
        """The rank is a LoRA's only."""
        lora = self.mode.currentText() == "lora"
        self.rank.setEnabled(lora and self.wizard.has_setting("finetune", "lora_rank"))

    def refresh(self) -> None:
        self.update_estimate()
        self.curve.set_losses(self.wizard.stage_run("finetune").losses)
        self._show_samples()

    def _stage_changed(self, stage: str) -> None:
        if stage == "finetune":
            self.curve.set_losses(self.wizard.stage_run("finetune").losses)
            if self.wizard.stage_run("finetune").status == "done":
                self._show_samples()

    def _show_samples(self) -> None:
        run = self.wizard.run
        self.samples.show_samples(finetune_samples(run) if run is not None else [])

    def update_estimate(self) -> None:
        base = Path(str(self.wizard.setting("", "base_model") or ""))
        tokens = 2 * self.vectors.value()
        size = finetune_bytes(base, self.mode.currentText(), self.rank.value(), tokens)
        pace = self.wizard.paces.get("finetune")
        time = (
            f"about {human_seconds(pace * self.steps.value())} at this run's last pace"
            if pace
            else "measured after the first steps"
        )
        self.estimate.setText(f"Disk: about {human_bytes(size)}. Time: {time}.")
