"""`GenirWizardWindow`: the dataset-generation wizard, a step list beside the pages.

Any page may be visited (the step list marks the stages whose results are in the run folder);
a run opens at the stage it reached. Closing the window leaves a running stage running in the
engine; reopening the run shows it where the folder says it is."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from desktop.state.engine_models import EngineModels
from desktop.state.genir_wizard import PAGES, GenirWizard
from desktop.ui.genir_wizard.base_page import BasePage
from desktop.ui.genir_wizard.export_page import ExportPage
from desktop.ui.genir_wizard.filter_page import FilterPage
from desktop.ui.genir_wizard.finetune_page import FinetunePage
from desktop.ui.genir_wizard.generate_page import GeneratePage
from desktop.ui.genir_wizard.page import Page
from desktop.ui.genir_wizard.prompts_page import PromptsPage
from desktop.ui.genir_wizard.sources_page import SourcesPage

PAGE_STAGE = {
    "base": "pairs",
    "finetune": "finetune",
    "prompts": "prompts",
    "generate": "generate",
    "filter": "filter",
    "export": "export",
}


class GenirWizardWindow(QWidget):
    manageModels = Signal()
    """The base model page asks for the model manager."""

    def __init__(
        self, wizard: GenirWizard, models: EngineModels | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.wizard = wizard
        self.setWindowTitle("New dataset (GenIR) — DreamClear Studio")
        self.resize(1100, 760)
        self.sources = SourcesPage(wizard)
        self.pages: dict[str, Page] = {
            "sources": self.sources,
            "base": BasePage(wizard, models),
            "finetune": FinetunePage(wizard),
            "prompts": PromptsPage(wizard),
            "generate": GeneratePage(wizard),
            "filter": FilterPage(wizard),
            "export": ExportPage(wizard),
        }
        self.steps = QListWidget()
        self.steps.setFixedWidth(190)
        self.stack = QStackedWidget()
        for name in PAGES:
            self.steps.addItem(self.pages[name].title)
            self.stack.addWidget(self.pages[name])
        self.steps.currentRowChanged.connect(self.stack.setCurrentIndex)
        self.run_label = QLabel()
        self.run_label.setWordWrap(True)
        self.back = QPushButton("‹ Back")
        self.next = QPushButton("Next ›")
        self.back.clicked.connect(
            lambda: self.steps.setCurrentRow(max(self.steps.currentRow() - 1, 0))
        )
        self.next.clicked.connect(
            lambda: self.steps.setCurrentRow(min(self.steps.currentRow() + 1, len(PAGES) - 1))
        )
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_label, 1)
        buttons.addWidget(self.back)
        buttons.addWidget(self.next)
        right = QVBoxLayout()
        right.addWidget(self.stack, 1)
        right.addLayout(buttons)
        layout = QHBoxLayout(self)
        layout.addWidget(self.steps)
        layout.addLayout(right, 1)
        self.sources.opened.connect(self._opened)
        self.pages["base"].manageModels.connect(self.manageModels)
        self._redraw = QTimer(self, singleShot=True, interval=100)  # at most 10 a second
        self._redraw.timeout.connect(self.update_steps)
        wizard.runChanged.connect(self._schedule)
        wizard.stageChanged.connect(self._schedule)
        self.steps.setCurrentRow(0)
        self.update_steps()

    def _schedule(self, _stage: str = "") -> None:
        if not self._redraw.isActive():
            self._redraw.start()

    @property
    def page(self) -> str:
        return PAGES[self.steps.currentRow()]

    def go(self, page: str) -> None:
        self.steps.setCurrentRow(PAGES.index(page))

    def open_run(self, run: Path | str) -> str:
        """Show an existing run at the stage it reached."""
        page = self.wizard.open_run(run)
        self.sources.rescan()
        self._opened(page)
        return page

    def ask_open_run(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a dataset run folder (genir.toml)")
        if folder:
            self.open_run(folder)

    def _opened(self, page: str) -> None:
        self.setWindowTitle(f"Dataset {self.wizard.run} — DreamClear Studio")
        self.go(page)
        self.update_steps()

    def update_steps(self) -> None:
        state, running = self.wizard.state, self.wizard.running_stage()
        self.run_label.setText(f"Run: {self.wizard.run}" if self.wizard.run else "No run open")
        for row, name in enumerate(PAGES):
            stage = PAGE_STAGE.get(name)
            mark = "  "
            if stage is not None and state is not None and state.complete.get(stage):
                mark = "✓ "
            if stage is not None and (
                running == stage or (name == "export" and running == "train")
            ):
                mark = "▶ "
            self.steps.item(row).setText(mark + self.pages[name].title)
