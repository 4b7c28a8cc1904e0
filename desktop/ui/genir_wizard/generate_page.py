"""Page 5, Generate: resolution and guidance, the disk and time it will take, then the job:
thumbnails appear as the images are written; Pause interrupts it and Resume (also after the
app was closed) goes on from the engine's journal."""

from __future__ import annotations

from PySide6.QtWidgets import QWidget

from desktop.state.genir_estimates import human_bytes, human_seconds, images_bytes
from desktop.ui.genir_wizard.page import Page
from desktop.ui.genir_wizard.settings_form import SettingsForm
from desktop.ui.genir_wizard.stage_controls import StageControls, TextLine
from desktop.ui.genir_wizard.thumbnails import ThumbnailGrid


class GeneratePage(Page):
    title = "5. Generate"
    explanation = (
        "One image per prompt from the fine-tuned model, the learned positive tokens before "
        "each scene and the negative ones as the negative prompt."
    )

    def __init__(self, wizard, parent: QWidget | None = None) -> None:
        super().__init__(wizard, parent)
        self.form = SettingsForm(wizard)
        self.resolution = self.form.spin("Resolution (px)", "generation", "resolution", 64, 4096)
        self.resolution.setSingleStep(64)
        self.form.real("Guidance (CFG)", "generation", "cfg", 1.0, 30.0, 0.5)
        self.form.spin("Steps", "generation", "steps", 1, 500)
        self.layout_.addWidget(self.form)
        self.resolution.valueChanged.connect(self.update_estimate)
        self.estimate = TextLine()
        self.layout_.addWidget(self.estimate)
        self.controls = StageControls(wizard, "generate", "Generate", self.form.save)
        self.layout_.addWidget(self.controls)
        self.grid = ThumbnailGrid(96)
        self.layout_.addWidget(self.grid, 1)
        wizard.imagesAppeared.connect(self.grid.add_paths)

    def load(self) -> None:
        self.form.load()
        self.refresh()

    def refresh(self) -> None:
        if self.grid.count() == 0 and self.wizard.state and self.wizard.state.generated:
            self.grid.add_paths(self.wizard.generated_images())
        self.update_estimate()

    def update_estimate(self) -> None:
        state = self.wizard.state
        if state is None:
            return
        count = state.prompts or state.prompts_wanted
        left = max(count - state.generated, 0)
        size = images_bytes(count, self.resolution.value(), self.grid.paths[:50])
        pace = self.wizard.paces.get("generate")
        time = f"about {human_seconds(pace * left)}" if pace else "measured after the first images"
        self.estimate.setText(
            f"{count} images (one per prompt), {state.generated} made. Output: "
            f"{self.wizard.run}/generate/images, about {human_bytes(size)}. Time left: {time}."
        )
